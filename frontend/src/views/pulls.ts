// Pull requests: the filterable list, the slowest reviews, and the stale (oldest open) ones.
// Four requests: the totals with both lists (top=10), the totals by repository or
// author, the list's first page, and one page of open pull requests (titles and
// last updates for the two lists, which the metrics answer names by number).

import { get } from '../api';
import { barChart } from '../charts';
import { ago, duration, hours, num, secondsBetween, shortDate } from '../format';
import type { Page, Pull, PullFlowMetrics, PullWait } from '../types';
import { badge, grid, h, panel, prLink, table, tile, tiles, type Column } from '../ui';
import { metricParams, type ViewContext } from './context';

const PAGE = 50;
/** How many pull requests the slowest-review and stale lists show. */
const TOP = 10;

function stateBadge(p: Pull) {
  return badge(p.draft && p.state === 'open' ? 'draft' : p.state);
}

function size(p: Pull) {
  if (p.additions === null && p.deletions === null) return '—';
  return h('span', { class: 'size' }, h('span', { class: 'add' }, `+${p.additions ?? 0}`), ' ', h('span', { class: 'del' }, `−${p.deletions ?? 0}`));
}

const prCell = (p: { repo: string; number: number; title?: string }) => [
  prLink(p.repo, p.number, `#${p.number}`),
  ' ',
  p.title ? h('span', { class: 'title' }, p.title) : null,
  h('div', { class: 'muted small' }, p.repo),
];

export async function pulls(ctx: ViewContext): Promise<HTMLElement[]> {
  const s = ctx.signal;
  const repo = ctx.params.get('repo') ?? '';
  const author = ctx.params.get('author') ?? '';
  const state = ctx.params.get('state') ?? '';
  const listParams = { repo, author, state: state || 'all' };
  const groupBy = repo ? 'author' : 'repo';
  const mp = metricParams(ctx, ['repo', 'author']);
  const [metrics, grouped, first, open] = await Promise.all([
    get<PullFlowMetrics>('/api/metrics/pulls', { ...mp, top: TOP }, s),
    get<PullFlowMetrics>('/api/metrics/pulls', { ...mp, group_by: groupBy }, s),
    get<Page<Pull>>('/api/pulls', { ...listParams, limit: PAGE }, s),
    get<Page<Pull>>('/api/pulls', { repo, author, state: 'open', limit: 500 }, s),
  ]);
  const g = metrics.groups[0];
  const now = Date.now();

  // The metrics lists name pull requests by repository and number; titles and last updates come from the lists loaded here.
  const known = new Map<string, Pull>();
  for (const p of [...first.items, ...open.items]) known.set(`${p.repo}#${p.number}`, p);
  const withPull = (w: PullWait) => ({ ...w, pull: known.get(`${w.repo}#${w.number}`) });
  type Listed = ReturnType<typeof withPull>;
  const waits = (metrics.slowest_first_reviews ?? []).map(withPull);
  const stale = (metrics.stale ?? []).map(withPull);
  const listedCell = (w: Listed) => prCell({ repo: w.repo, number: w.number, title: w.pull?.title });

  // The list, with "load more".
  const listColumns: Column<Pull>[] = [
    { label: 'Pull request', cell: prCell },
    { label: 'Author', cell: (p) => p.author ?? '—' },
    { label: 'State', cell: stateBadge },
    { label: 'Opened', cell: (p) => h('span', { title: p.created_at }, shortDate(p.created_at)) },
    { label: 'Cycle time', num: true, cell: (p) => (p.merged_at ? duration(secondsBetween(p.created_at, p.merged_at)) : '—') },
    { label: 'Size', num: true, cell: size },
  ];
  const listHolder = h('div', { id: 'pull-list' });
  const rows = [...first.items];
  let cursor = first.next_cursor;
  const drawList = () => {
    const more = cursor
      ? h('button', {
          type: 'button',
          class: 'secondary more',
          onclick: async (e: Event) => {
            const b = e.currentTarget as HTMLButtonElement;
            b.disabled = true;
            b.textContent = 'Loading…';
            try {
              const page = await get<Page<Pull>>('/api/pulls', { ...listParams, limit: PAGE, cursor }, s);
              rows.push(...page.items);
              cursor = page.next_cursor;
              drawList();
            } catch (err) {
              b.disabled = false;
              b.textContent = `Failed: ${(err as Error).message} — try again`;
            }
          },
        }, 'Load more')
      : null;
    listHolder.replaceChildren(
      table(listColumns, rows, {
        id: 'pulls-table',
        scroll: true,
        empty: 'No pull requests match these filters. Clear the filters, or check the author’s login.',
      }),
      more ?? '',
    );
  };
  drawList();

  const groups = grouped.groups.filter((x) => x.time_to_first_review_seconds.count > 0 || x.cycle_time_seconds.count > 0).slice(0, 15);
  const age = g?.open_by_age;

  return [
    panel('Pull requests', [
      tiles(
        tile('Merged', num(g?.merged), { id: 'merged', value: g?.merged ?? 0, sub: `in the last ${ctx.win.days} days` }),
        tile('Cycle time p50', duration(g?.cycle_time_seconds.p50), { id: 'cycle-p50', value: g?.cycle_time_seconds.p50, sub: `p90 ${duration(g?.cycle_time_seconds.p90)}` }),
        tile('First review p50', duration(g?.time_to_first_review_seconds.p50), { id: 'review-p50', value: g?.time_to_first_review_seconds.p50, sub: `p90 ${duration(g?.time_to_first_review_seconds.p90)}` }),
        tile('Open now', num(age?.total), { id: 'open', value: age?.total, sub: `${num(age?.gt_30d)} older than 30 days` }),
      ),
      grid(
        h(
          'div',
          null,
          h('h3', null, `Time to first review by ${groupBy} (hours)`),
          groups.length
            ? barChart(
                groups.map((x) => x.key ?? '(none)'),
                [
                  { label: 'p50', data: groups.map((x) => hours(x.time_to_first_review_seconds.p50)) },
                  { label: 'p90', data: groups.map((x) => hours(x.time_to_first_review_seconds.p90)), color: '#93c5fd' },
                ],
                { id: 'review-by-group', label: `Time to first review by ${groupBy}`, horizontal: true, format: (v) => `${v}h`, height: Math.max(180, groups.length * 34) },
              )
            : h('p', { class: 'empty-inline' }, 'No reviewed pull requests in this window.'),
        ),
        h(
          'div',
          null,
          h('h3', null, 'Open pull requests by age'),
          barChart(
            ['< 1 day', '1–3 days', '3–7 days', '7–30 days', '> 30 days'],
            [{ label: 'Open', data: age ? [age.lt_1d, age.d1_to_3, age.d3_to_7, age.d7_to_30, age.gt_30d] : [], color: '#f59e0b' }],
            { id: 'open-by-age', label: 'Open pull requests by age' },
          ),
        ),
      ),
    ], { wide: true }),
    grid(
      panel('Slowest first reviews', [
        table(
          [
            { label: 'Pull request', cell: listedCell },
            { label: 'Author', cell: (w) => w.author ?? '—' },
            { label: 'Waited', num: true, cell: (w) => (w.waiting ? h('span', { class: 'warn' }, `${duration(w.seconds)}, still waiting`) : duration(w.seconds)) },
          ] as Column<Listed>[],
          waits,
          { id: 'slowest-reviews', empty: 'No pull request opened in this window has waited for a review.' },
        ),
      ], { hint: `Opened in the last ${ctx.win.days} days: time from opening to the first review by someone else (still waiting: until now).` }),
      panel('Stale: oldest open', [
        table(
          [
            { label: 'Pull request', cell: listedCell },
            { label: 'Author', cell: (w) => w.author ?? '—' },
            { label: 'Age', num: true, cell: (w) => duration(w.seconds) },
            { label: 'Last update', num: true, cell: (w) => (w.pull ? ago(w.pull.updated_at, now) : '—') },
          ] as Column<Listed>[],
          stale,
          { id: 'stale-pulls', empty: 'No open pull requests. Nice.' },
        ),
      ], { hint: `${num(age?.total)} open in all; the ${TOP} opened longest ago.` }),
    ),
    panel('All pull requests', [listHolder], {
      wide: true,
      hint: 'Newest first by creation, as on GitHub. Filter by repository, state and author above; the link is shareable.',
    }),
  ];
}
