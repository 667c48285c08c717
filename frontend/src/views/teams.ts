// Teams: pull request flow and CI per team (authors who are members now), and the members.

import { get } from '../api';
import { barChart } from '../charts';
import { duration, hours, num, pct } from '../format';
import { routeHash } from '../route';
import type { CiGroup, CiMetrics, PullFlowGroup, PullFlowMetrics, Team } from '../types';
import { emptyHint, h, link, panel, table, type Column } from '../ui';
import { metricParams, type ViewContext } from './context';

interface Row {
  key: string;
  team: Team | undefined;
  flow: PullFlowGroup | undefined;
  ci: CiGroup | undefined;
}

export async function teams(ctx: ViewContext): Promise<HTMLElement[]> {
  if (!ctx.teams.length) {
    return [
      panel('Teams', [
        emptyHint(
          'No teams yet',
          'Teams and their members come from an organization webhook (“Teams”, “Memberships” events), or load them now with ',
          h('code', null, 'octoscope backfill --org YOUR_ORG'),
          ' (needs GITHUB_TOKEN with read:org).',
        ),
      ], { wide: true }),
    ];
  }
  const mp = { ...metricParams(ctx, ['repo']), group_by: 'team' };
  const [flow, ci] = await Promise.all([
    get<PullFlowMetrics>('/api/metrics/pulls', mp, ctx.signal),
    get<CiMetrics>('/api/metrics/ci', mp, ctx.signal),
  ]);
  const keys = new Set<string>(ctx.teams.map((t) => `${t.org}/${t.slug}`));
  const rows: Row[] = [...keys].sort().map((key) => ({
    key,
    team: ctx.teams.find((t) => `${t.org}/${t.slug}` === key),
    flow: flow.groups.find((g) => g.key === key),
    ci: ci.groups.find((g) => g.key === key),
  }));
  const outside = flow.groups.find((g) => g.key === null);
  const days = String(ctx.win.days);
  const teamLink = (key: string) => link(routeHash('overview', { team: key, days, repo: ctx.params.get('repo') ?? '' }), key);

  const columns: Column<Row>[] = [
    { label: 'Team', cell: (r) => [teamLink(r.key), r.team?.name && r.team.name !== r.team.slug ? h('div', { class: 'muted small' }, r.team.name) : null] },
    { label: 'Members', num: true, cell: (r) => num(r.team?.members.length) },
    { label: 'Merged', num: true, cell: (r) => num(r.flow?.merged ?? 0) },
    { label: 'Cycle p50', num: true, cell: (r) => duration(r.flow?.cycle_time_seconds.p50) },
    { label: 'Cycle p90', num: true, cell: (r) => duration(r.flow?.cycle_time_seconds.p90) },
    { label: 'First review p50', num: true, cell: (r) => duration(r.flow?.time_to_first_review_seconds.p50) },
    { label: 'Unreviewed', num: true, cell: (r) => num(r.flow?.unreviewed ?? 0) },
    { label: 'Open', num: true, cell: (r) => num(r.flow?.open_by_age.total ?? 0) },
    { label: 'CI runs', num: true, cell: (r) => num(r.ci?.runs?.count ?? 0) },
    { label: 'CI failure', num: true, cell: (r) => pct(r.ci?.runs?.failure_rate) },
  ];

  return [
    panel('Teams', [
      h('h3', null, 'Merged pull requests and cycle time p50 by team'),
      barChart(
        rows.map((r) => r.key),
        [
          { label: 'Merged', data: rows.map((r) => r.flow?.merged ?? 0) },
          { label: 'Cycle time p50 (hours)', type: 'line', axis: 'y1', color: '#f59e0b', data: rows.map((r) => hours(r.flow?.cycle_time_seconds.p50)) },
        ],
        { id: 'team-flow', label: 'Merged pull requests and cycle time by team', yTitle: 'merged', y1Title: 'hours' },
      ),
      table(columns, rows, { id: 'teams-table' }),
      outside && (outside.merged || outside.open_by_age.total)
        ? h('p', { class: 'hint' }, `Authors in no team: ${num(outside.merged)} merged, ${num(outside.open_by_age.total)} open. Team numbers use today’s membership; an author in two teams counts in both.`)
        : h('p', { class: 'hint' }, 'Team numbers use today’s membership; an author in two teams counts in both.'),
    ], { wide: true }),
    h(
      'div',
      { class: 'grid cards' },
      rows.map((r) =>
        h(
          'section',
          { class: 'panel team-card', 'data-team': r.key },
          h('h2', null, teamLink(r.key)),
          r.team?.description ? h('p', { class: 'hint' }, r.team.description) : null,
          h(
            'p',
            { class: 'small' },
            `${num(r.flow?.merged ?? 0)} merged · cycle p50 ${duration(r.flow?.cycle_time_seconds.p50)} · first review p50 ${duration(r.flow?.time_to_first_review_seconds.p50)}`,
          ),
          r.team?.members.length
            ? h('ul', { class: 'chips' }, r.team.members.map((m) => h('li', null, link(routeHash('pulls', { author: m, days }), m))))
            : h('p', { class: 'empty-inline' }, 'No members known.'),
        ),
      ),
    ),
  ];
}
