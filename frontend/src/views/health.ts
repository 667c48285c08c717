// Data health: what arrived (deliveries), what the integrity check found
// (gaps) and what the resync did (jobs), per repository.

import { ApiError, get } from '../api';
import { barChart, doughnutChart } from '../charts';
import { ago, bytes, dateTime, num } from '../format';
import type { DataHealth, Delivery, Gap, Integrity, Job, Page, CheckRun } from '../types';
import { badge, grid, h, noDataYet, panel, table, tile, tiles, type Column } from '../ui';
import type { ViewContext } from './context';

const STATUS_COLORS: Record<string, string> = { stored: '#10b981', ignored: '#94a3b8', failed: '#ef4444', pending: '#f59e0b' };

const target = (g: { target: { type: string; name: string } }) => `${g.target.type}:${g.target.name}`;

export async function health(ctx: ViewContext): Promise<HTMLElement[]> {
  const s = ctx.signal;
  const repo = ctx.params.get('repo') ?? '';
  const [deliveries, integrity, perRepo] = await Promise.all([
    get<Page<Delivery>>('/api/deliveries', { status: ctx.params.get('status'), event: ctx.params.get('event'), repo, limit: 100 }, s),
    get<Integrity>('/api/integrity', { limit: 20 }, s),
    get<DataHealth>('/api/metrics/health', { repo }, s).catch((e) => {
      if (e instanceof ApiError && e.status === 404 && e.url.includes('/api/metrics/health')) return null; // older server
      throw e;
    }),
  ]);
  const st = ctx.health.stats;
  const statuses = Object.entries(st.deliveries).filter(([, n]) => n > 0);
  const total = statuses.reduce((a, [, n]) => a + n, 0);
  const out: HTMLElement[] = [];
  if (ctx.noData) out.push(noDataYet());

  const byEvent = new Map<string, number>();
  for (const d of deliveries.items) byEvent.set(d.event, (byEvent.get(d.event) ?? 0) + 1);
  const events = [...byEvent].sort((a, b) => b[1] - a[1]).slice(0, 12);

  out.push(
    panel('Deliveries', [
      tiles(
        tile('Deliveries', num(total), { id: 'deliveries', value: total, sub: `last ${ago(st.last_delivery_at)}` }),
        tile('Failed', num(st.deliveries.failed ?? 0), { id: 'deliveries-failed', value: st.deliveries.failed ?? 0, sub: 'shape not understood; retried by replay' }),
        tile('Repositories', num(st.repositories), { id: 'repositories', value: st.repositories }),
        tile('Pull requests', num(st.pull_requests), { id: 'pull-requests', value: st.pull_requests }),
        tile('Workflow runs', num(st.workflow_runs), { id: 'workflow-runs', value: st.workflow_runs }),
        tile('Teams', num(st.teams), { id: 'teams', value: st.teams }),
      ),
      total
        ? grid(
            h(
              'div',
              null,
              h('h3', null, 'All deliveries by status'),
              doughnutChart(statuses.map(([k]) => k), statuses.map(([, n]) => n), {
                id: 'deliveries-by-status',
                label: 'Deliveries by status',
                colors: statuses.map(([k]) => STATUS_COLORS[k] ?? '#64748b'),
                height: 200,
              }),
            ),
            h(
              'div',
              null,
              h('h3', null, `Latest ${deliveries.items.length} shown, by event`),
              events.length
                ? barChart(events.map(([e]) => e), [{ label: 'Deliveries', data: events.map(([, n]) => n) }], {
                    id: 'deliveries-by-event',
                    label: 'Recent deliveries by event',
                    horizontal: true,
                    height: Math.max(160, events.length * 26),
                  })
                : h('p', { class: 'empty-inline' }, 'No deliveries match these filters.'),
            ),
          )
        : null,
      Object.keys(st.ignored_events).length
        ? h('p', { class: 'hint' }, 'Ignored (archived, not tracked): ', Object.entries(st.ignored_events).map(([e, n]) => `${e} ${n}`).join(', '))
        : null,
    ], { wide: true }),
  );

  // The integrity check and the resync.
  const last: CheckRun | undefined = integrity.items[0];
  const openGaps: Gap[] = last?.gaps ?? [];
  const jobStates = countBy(integrity.jobs, (j) => j.state);
  out.push(
    panel('Integrity check', [
      integrity.items.length
        ? tiles(
            tile('Last check', ago(integrity.last_check_at), { id: 'last-check', sub: last ? `${num(last.repos_compared)} repos, ${num(last.orgs_compared)} orgs compared` : undefined }),
            tile('Open gaps', num(integrity.open_gaps), { id: 'open-gaps', value: integrity.open_gaps, sub: 'found by the last check' }),
            tile('Redelivered', num(last?.redelivered), { id: 'redelivered', value: last?.redelivered, sub: 'failed deliveries asked again' }),
            tile('Resync jobs', num(integrity.jobs.length), { id: 'jobs', value: integrity.jobs.length, sub: Object.entries(jobStates).map(([k, n]) => `${n} ${k}`).join(', ') || 'none' }),
          )
        : h(
            'div',
            { class: 'state empty small', 'data-state': 'no-checks' },
            h('h3', null, 'No integrity check has run yet'),
            h('p', null, 'Webhooks get lost; the integrity check compares the store with GitHub and repairs what differs. Set ', h('code', null, 'GITHUB_TOKEN'), ' (or a GitHub App) for ', h('code', null, 'octoscope serve'), ' — it then checks every 15 minutes — or run ', h('code', null, 'octoscope check'), ' once.'),
          ),
      last?.error ? h('p', { class: 'warn' }, `The last check failed: ${last.error}`) : null,
      openGaps.length
        ? table(
            [
              { label: 'Target', cell: (g) => target(g) },
              { label: 'Kind', cell: (g) => g.kind },
              { label: 'Since', cell: (g) => (g.watermark ? dateTime(g.watermark) : 'everything') },
              { label: 'What differed', cell: (g) => g.reason },
            ] as Column<Gap>[],
            openGaps,
            { id: 'gaps-table' },
          )
        : null,
      integrity.items.length
        ? h('details', null, h('summary', null, `Recent checks (${integrity.items.length})`), table(
            [
              { label: 'Finished', cell: (c) => dateTime(c.finished_at) },
              { label: 'Compared', cell: (c) => `${c.repos_compared} repos, ${c.orgs_compared} orgs` },
              { label: 'Gaps', num: true, cell: (c) => num(c.gaps.length) },
              { label: 'Redelivered', num: true, cell: (c) => num(c.redelivered) },
              { label: 'Requests', num: true, cell: (c) => num(c.requests) },
              { label: 'Per installation', cell: (c) => perInstallation(c.requests_by_installation) },
              { label: '', cell: (c) => [c.dry_run ? badge('dry run', 'muted') : null, c.error ? badge('failed') : null] },
            ] as Column<CheckRun>[],
            integrity.items,
            { id: 'checks-table' },
          ))
        : null,
      integrity.jobs.length
        ? h('details', { open: true }, h('summary', null, `Resync jobs (${integrity.jobs.length})`), table(
            [
              { label: 'Target', cell: (j) => target(j) },
              { label: 'Kinds', cell: (j) => j.kinds.join(', ') },
              { label: 'State', cell: (j) => [badge(j.state), j.error ? h('div', { class: 'muted small' }, j.error) : null] },
              { label: 'Created', cell: (j) => ago(j.created_at) },
              { label: 'Written', num: true, cell: (j) => num(j.written) },
              { label: 'Requests', num: true, cell: (j) => num(j.requests) },
              { label: 'Per installation', cell: (j) => perInstallation(j.requests_by_installation) },
            ] as Column<Job>[],
            integrity.jobs,
            { id: 'jobs-table' },
          ))
        : null,
    ], { wide: true }),
  );

  if (perRepo) {
    out.push(
      panel('Per repository', [
        table(
          [
            { label: 'Repository', cell: (r) => r.repo },
            { label: 'Last webhook', cell: (r) => h('span', { title: r.last_webhook_at ?? '' }, ago(r.last_webhook_at)) },
            { label: 'Verified', cell: (r) => (r.verified_at ? h('span', { title: r.verified_at }, ago(r.verified_at)) : h('span', { class: 'muted' }, 'not yet')) },
            { label: 'Open gaps', num: true, cell: (r) => (r.open_gaps.length ? h('span', { class: 'warn', title: r.open_gaps.map((g) => `${g.kind}: ${g.reason}`).join('\n') }, num(r.open_gaps.length)) : '0') },
            { label: 'Jobs', cell: (r) => [r.jobs.queued ? `${r.jobs.queued} queued ` : '', r.jobs.running ? `${r.jobs.running} running ` : '', `${r.jobs.succeeded} ok`, r.jobs.failed ? h('span', { class: 'warn' }, ` ${r.jobs.failed} failed`) : ''] },
            { label: 'Last job', cell: (r) => (r.last_job ? [badge(r.last_job.state), ' ', ago(r.last_job.finished_at ?? r.last_job.created_at)] : '—') },
          ] as Column<DataHealth['repos'][number]>[],
          perRepo.repos,
          { id: 'repo-health-table', empty: 'No repository has delivered a webhook yet.' },
        ),
      ], { wide: true, hint: '“Verified” is when the integrity check last found the repository matching GitHub.' }),
    );
  }
  out.push(
    panel('Latest deliveries', [
      table(
        [
          { label: 'Received', cell: (d) => h('span', { title: d.received_at }, ago(d.received_at)) },
          { label: 'Event', cell: (d) => [d.event, d.action ? h('span', { class: 'muted' }, `.${d.action}`) : null] },
          { label: 'Repository', cell: (d) => d.repo ?? d.org ?? '—' },
          { label: 'Status', cell: (d) => [badge(d.status), d.reason ? h('div', { class: 'muted small' }, d.reason) : null] },
          { label: 'Changes', num: true, cell: (d) => num(d.changes) },
          { label: 'Size', num: true, cell: (d) => bytes(d.body_bytes) },
          { label: 'Delivery', cell: (d) => h('code', { class: 'small' }, d.delivery_id.slice(0, 13)) },
        ] as Column<Delivery>[],
        deliveries.items,
        { id: 'deliveries-table', scroll: true, empty: 'No deliveries match these filters.' },
      ),
    ], {
      wide: true,
      hint: deliveries.next_cursor
        ? 'The newest 100; narrow them with the filters above (status, event, repository), or page through GET /api/deliveries.'
        : 'Newest first; filter by status, event and repository above.',
    }),
  );
  return out;
}

function countBy<T>(items: T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[key(i)] = (out[key(i)] ?? 0) + 1;
  return out;
}

/** GitHub requests per installation (account login, or `token`): `octo-org 12 · other-org 3`. */
function perInstallation(counts: Record<string, number> | undefined): string {
  const parts = Object.entries(counts ?? {}).map(([login, n]) => `${login} ${num(n)}`);
  return parts.length ? parts.join(' · ') : '—';
}
