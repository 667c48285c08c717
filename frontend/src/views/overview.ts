// Overview: pull request flow, CI and DORA for the window, with trends
// (against the previous window of the same length, and per week). Three
// requests: each metric family once, with its weekly series (interval=week)
// and the previous period's figures (compare=previous) in the same answer.

import { get } from '../api';
import { barChart } from '../charts';
import { change, duration, hours, minutes, num, pct, shortDate } from '../format';
import type { CiMetrics, DoraGroup, DoraMetrics, PullFlowGroup, PullFlowMetrics } from '../types';
import { emptyHint, grid, h, panel, tile, tiles } from '../ui';
import { metricParams, type ViewContext } from './context';

export function flowGroup(m: PullFlowMetrics): PullFlowGroup | undefined {
  return m.groups[0];
}

export async function overview(ctx: ViewContext): Promise<HTMLElement[]> {
  const trend = { interval: 'week', compare: 'previous' };
  const cur = { ...metricParams(ctx), ...trend };
  const s = ctx.signal;
  const [pulls, ciM, dora] = await Promise.all([
    get<PullFlowMetrics>('/api/metrics/pulls', cur, s),
    get<CiMetrics>('/api/metrics/ci', cur, s),
    get<DoraMetrics>('/api/metrics/dora', { ...metricParams(ctx, ['repo']), compare: 'previous' }, s),
  ]);
  const p = flowGroup(pulls);
  const pp = p?.previous;
  const weeks = p?.throughput ?? [];
  const pullTrend = p?.series ?? [];
  const ciTrend = ciM.groups[0]?.series ?? [];
  const period = `previous ${ctx.win.days} days`;
  const out: HTMLElement[] = [];

  // Pull request flow.
  if (!p || (p.merged === 0 && p.open_by_age.total === 0 && p.time_to_first_review_seconds.count === 0 && p.unreviewed === 0)) {
    out.push(
      panel('Pull request flow', [
        emptyHint(
          'No pull requests in this window',
          'Nothing was opened or merged in the last ',
          String(ctx.win.days),
          ' days for these filters. Widen the period or clear the filters; make sure the webhook sends “Pull requests” and “Pull request reviews” events.',
        ),
      ], { wide: true }),
    );
  } else {
    out.push(
      panel('Pull request flow', [
        tiles(
          tile('Merged', num(p.merged), { id: 'merged', value: p.merged, change: change(p.merged, pp?.merged), higherIsBetter: true, sub: `vs ${period}` }),
          tile('Cycle time p50', duration(p.cycle_time_seconds.p50), {
            id: 'cycle-p50',
            value: p.cycle_time_seconds.p50,
            change: change(p.cycle_time_seconds.p50, pp?.cycle_time_seconds.p50),
            higherIsBetter: false,
            sub: `p90 ${duration(p.cycle_time_seconds.p90)}`,
          }),
          tile('First review p50', duration(p.time_to_first_review_seconds.p50), {
            id: 'review-p50',
            value: p.time_to_first_review_seconds.p50,
            change: change(p.time_to_first_review_seconds.p50, pp?.time_to_first_review_seconds.p50),
            higherIsBetter: false,
            sub: `p90 ${duration(p.time_to_first_review_seconds.p90)}`,
          }),
          tile('Unreviewed', num(p.unreviewed), { id: 'unreviewed', value: p.unreviewed, sub: 'opened, no review yet' }),
          tile('Open now', num(p.open_by_age.total), {
            id: 'open',
            value: p.open_by_age.total,
            sub: `${num(p.open_by_age.gt_30d)} older than 30 days`,
          }),
          tile('Review rounds p50', num(p.review_rounds.p50), { id: 'rounds', value: p.review_rounds.p50, sub: `size p50 ${num(p.size_lines.p50)} lines` }),
        ),
        grid(
          h(
            'div',
            null,
            h('h3', null, 'Throughput: merged per week'),
            barChart(
              weeks.map((w) => shortDate(w.week_start)),
              [{ label: 'Merged', data: weeks.map((w) => w.count) }],
              { id: 'throughput', label: 'Pull requests merged per week' },
            ),
          ),
          h(
            'div',
            null,
            h('h3', null, 'Cycle time and first review per week (hours)'),
            barChart(
              pullTrend.map((b) => shortDate(b.bucket.start)),
              [
                { label: 'Cycle time p50', type: 'line', data: pullTrend.map((b) => hours(b.figures.cycle_time_seconds.p50)) },
                { label: 'Cycle time p90', type: 'line', dashed: true, data: pullTrend.map((b) => hours(b.figures.cycle_time_seconds.p90)) },
                { label: 'First review p50', type: 'line', data: pullTrend.map((b) => hours(b.figures.time_to_first_review_seconds.p50)) },
              ],
              { id: 'cycle-trend', label: 'Cycle time p50 and p90, time to first review p50, per week', yTitle: 'hours', format: (v) => `${v}h` },
            ),
          ),
        ),
      ], { wide: true }),
    );
  }

  // CI.
  const c = ciM.groups[0];
  const cp = c?.previous;
  if (!c || (!c.runs?.count && !c.jobs.count)) {
    out.push(
      panel('CI', [
        emptyHint(
          'No workflow runs in this window',
          'Octoscope learns about CI from the “Workflow runs” and “Workflow jobs” webhook events: enable them on the webhook, or widen the period.',
        ),
      ], { wide: true }),
    );
  } else {
    out.push(
      panel('CI', [
        tiles(
          tile('Runs', num(c.runs?.count), { id: 'ci-runs', value: c.runs?.count, change: change(c.runs?.count, cp?.runs?.count), sub: `vs ${period}` }),
          tile('Failure rate', pct(c.runs?.failure_rate), {
            id: 'ci-failure',
            value: c.runs?.failure_rate,
            change: change(c.runs?.failure_rate, cp?.runs?.failure_rate),
            higherIsBetter: false,
            sub: `${num(c.runs?.failed)} of ${num(c.runs?.completed)} completed`,
          }),
          tile('Run duration p50', duration(c.runs?.duration_seconds.p50), {
            id: 'ci-duration',
            value: c.runs?.duration_seconds.p50,
            change: change(c.runs?.duration_seconds.p50, cp?.runs?.duration_seconds.p50),
            higherIsBetter: false,
            sub: `p90 ${duration(c.runs?.duration_seconds.p90)}`,
          }),
          tile('Job queue p50', duration(c.jobs.queue_seconds.p50), {
            id: 'ci-queue',
            value: c.jobs.queue_seconds.p50,
            change: change(c.jobs.queue_seconds.p50, cp?.jobs.queue_seconds.p50),
            higherIsBetter: false,
            sub: `p90 ${duration(c.jobs.queue_seconds.p90)}`,
          }),
        ),
        h('h3', null, 'Run duration (minutes) and failure rate per week'),
        barChart(
          ciTrend.map((b) => shortDate(b.bucket.start)),
          [
            { label: 'Duration p50', data: ciTrend.map((b) => minutes(b.figures.runs?.duration_seconds.p50)) },
            { label: 'Duration p90', data: ciTrend.map((b) => minutes(b.figures.runs?.duration_seconds.p90)), color: '#93c5fd' },
            {
              label: 'Failure rate',
              type: 'line',
              axis: 'y1',
              color: '#ef4444',
              data: ciTrend.map((b) => {
                const r = b.figures.runs?.failure_rate;
                return r === null || r === undefined ? null : Math.round(r * 1000) / 10;
              }),
            },
          ],
          { id: 'ci-trend', label: 'CI run duration and failure rate per week', yTitle: 'minutes', y1Title: 'failure rate', percent: true, format: (v) => `${v}m` },
        ),
      ], { wide: true }),
    );
  }

  out.push(doraPanel(dora.groups, period));
  return out;
}

function doraPanel(groups: DoraGroup[], period: string): HTMLElement {
  const withData = groups.filter((g) => g.deployments > 0).sort((a, b) => b.deployments - a.deployments);
  if (!withData.length) {
    return panel('DORA', [
      emptyHint(
        'No deployments in this window',
        'Deployment frequency, lead time for changes and change failure rate come from GitHub deployments: enable the “Deployments” and “Deployment statuses” webhook events (GitHub Actions environments create them).',
      ),
    ], { wide: true });
  }
  const envTiles = withData.slice(0, 3).flatMap((g) => {
    const env = g.environment ?? '(no environment)';
    const before = g.previous;
    return [
      tile(`${env}: deploys / week`, num(g.deployments_per_week, 1), {
        id: `dora-frequency-${env}`,
        value: g.deployments_per_week,
        change: change(g.deployments_per_week, before?.deployments_per_week),
        sub: `${num(g.successful)} successful, vs ${period}`,
      }),
      tile(`${env}: lead time p50`, duration(g.lead_time_seconds.p50), {
        id: `dora-lead-${env}`,
        value: g.lead_time_seconds.p50,
        change: change(g.lead_time_seconds.p50, before?.lead_time_seconds.p50),
        higherIsBetter: false,
        sub: `p90 ${duration(g.lead_time_seconds.p90)}; ${num(g.undeployed)} not deployed yet`,
      }),
      tile(`${env}: change failure rate`, pct(g.change_failure_rate), {
        id: `dora-cfr-${env}`,
        value: g.change_failure_rate,
        change: change(g.change_failure_rate, before?.change_failure_rate),
        higherIsBetter: false,
        sub: `${num(g.failed)} of ${num(g.with_outcome)} with an outcome`,
      }),
    ];
  });
  const weeks = withData[0].deployment_frequency;
  return panel('DORA', [
    tiles(...envTiles),
    h('h3', null, 'Successful deployments per week'),
    barChart(
      weeks.map((w) => shortDate(w.week_start)),
      withData.slice(0, 6).map((g) => ({ label: g.environment ?? '(none)', data: g.deployment_frequency.map((w) => w.count) })),
      { id: 'deploy-frequency', label: 'Successful deployments per week by environment', stacked: true },
    ),
  ], { wide: true });
}
