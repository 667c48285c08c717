// CI: slowest and flakiest workflows, queue time by runner label and OS.
// Five requests: the totals, the totals by workflow, by runner label and by OS,
// and one page of the newest workflow runs (re-runs: the metrics do not count them).

import { get } from '../api';
import { barChart } from '../charts';
import { duration, minutes, num, pct, shortDate } from '../format';
import type { CiGroup, CiMetrics, Page, WorkflowRun } from '../types';
import { emptyHint, grid, h, panel, table, tile, tiles, type Column } from '../ui';
import { metricParams, type ViewContext } from './context';

/** Newest workflow runs read for the re-run column (one page). */
const RUNS = 500;

interface WorkflowRow {
  name: string;
  g: CiGroup;
  reruns: number;
  rerunPassed: number;
}

export async function ci(ctx: ViewContext): Promise<HTMLElement[]> {
  const s = ctx.signal;
  const mp = metricParams(ctx);
  const [all, byWorkflow, byRunner, byOs, runs] = await Promise.all([
    get<CiMetrics>('/api/metrics/ci', mp, s),
    get<CiMetrics>('/api/metrics/ci', { ...mp, group_by: 'workflow' }, s),
    get<CiMetrics>('/api/metrics/ci', { ...mp, group_by: 'runner' }, s),
    get<CiMetrics>('/api/metrics/ci', { ...mp, group_by: 'os' }, s),
    get<Page<WorkflowRun>>('/api/workflow-runs', { repo: ctx.params.get('repo') ?? '', limit: RUNS }, s),
  ]);
  const g = all.groups[0];
  if (!g || (!g.runs?.count && !g.jobs.count)) {
    return [
      panel('CI', [
        emptyHint(
          'No workflow runs in this window',
          'CI numbers come from the “Workflow runs” and “Workflow jobs” webhook events: enable them on the webhook (or send everything), or widen the period and clear the filters.',
        ),
      ], { wide: true }),
    ];
  }

  // Re-runs: a run whose latest attempt is > 1 was retried; one that then passed is a flake signal.
  const since = Date.parse(ctx.win.since);
  const until = Date.parse(ctx.win.until);
  const rerun = new Map<string, { reruns: number; passed: number }>();
  for (const r of runs.items) {
    const t = Date.parse(r.created_at);
    if (t < since || t >= until || (r.run_attempt ?? 1) <= 1) continue;
    const e = rerun.get(r.name ?? '') ?? { reruns: 0, passed: 0 };
    e.reruns++;
    if (r.conclusion === 'success') e.passed++;
    rerun.set(r.name ?? '', e);
  }
  // One page of runs, newest first: when it ends inside the window, the re-run column covers only its part.
  const oldest = runs.items[runs.items.length - 1]?.created_at;
  const cut = runs.next_cursor && oldest && Date.parse(oldest) > since ? oldest : null;
  const workflows: WorkflowRow[] = byWorkflow.groups
    .filter((w) => w.runs && w.runs.count > 0)
    .map((w) => ({ name: w.key ?? '(unnamed)', g: w, reruns: rerun.get(w.key ?? '')?.reruns ?? 0, rerunPassed: rerun.get(w.key ?? '')?.passed ?? 0 }));

  const slowest = [...workflows]
    .filter((w) => w.g.runs!.duration_seconds.count > 0)
    .sort((a, b) => (b.g.runs!.duration_seconds.p90 ?? 0) - (a.g.runs!.duration_seconds.p90 ?? 0))
    .slice(0, 10);
  const flakiest = [...workflows]
    .filter((w) => w.g.runs!.completed > 0)
    .sort((a, b) => (b.g.runs!.failure_rate ?? 0) - (a.g.runs!.failure_rate ?? 0) || b.reruns - a.reruns)
    .slice(0, 10);
  const runners = byRunner.groups.filter((r) => r.jobs.queue_seconds.count > 0).sort((a, b) => (b.jobs.queue_seconds.p90 ?? 0) - (a.jobs.queue_seconds.p90 ?? 0)).slice(0, 15);
  const oses = byOs.groups.filter((r) => r.jobs.queue_seconds.count > 0);

  const columns: Column<WorkflowRow>[] = [
    { label: 'Workflow', cell: (w) => w.name },
    { label: 'Runs', num: true, cell: (w) => num(w.g.runs?.count) },
    { label: 'Failed', num: true, cell: (w) => num(w.g.runs?.failed) },
    { label: 'Failure rate', num: true, cell: (w) => pct(w.g.runs?.failure_rate) },
    { label: 'Re-run', num: true, cell: (w) => (w.reruns ? `${w.reruns} (${w.rerunPassed} then passed)` : '0') },
    { label: 'Duration p50', num: true, cell: (w) => duration(w.g.runs?.duration_seconds.p50) },
    { label: 'Duration p90', num: true, cell: (w) => duration(w.g.runs?.duration_seconds.p90) },
    { label: 'Job queue p50', num: true, cell: (w) => duration(w.g.jobs.queue_seconds.p50) },
  ];
  const queueChart = (groups: CiGroup[], id: string, what: string) =>
    groups.length
      ? barChart(
          groups.map((r) => r.key ?? '(no label)'),
          [
            { label: 'p50', data: groups.map((r) => minutes(r.jobs.queue_seconds.p50)) },
            { label: 'p90', data: groups.map((r) => minutes(r.jobs.queue_seconds.p90)), color: '#93c5fd' },
          ],
          { id, label: `Job queue time by ${what}`, horizontal: true, format: (v) => `${v}m`, height: Math.max(160, groups.length * 34) },
        )
      : h('p', { class: 'empty-inline' }, 'No started jobs in this window (queue time comes from “Workflow jobs” events).');

  return [
    panel('CI', [
      tiles(
        tile('Runs', num(g.runs?.count), { id: 'ci-runs', value: g.runs?.count, sub: `${num(g.runs?.completed)} completed` }),
        tile('Failure rate', pct(g.runs?.failure_rate), { id: 'ci-failure', value: g.runs?.failure_rate, sub: `${num(g.runs?.failed)} failed` }),
        tile('Run duration p50', duration(g.runs?.duration_seconds.p50), { id: 'ci-duration', value: g.runs?.duration_seconds.p50, sub: `p90 ${duration(g.runs?.duration_seconds.p90)}` }),
        tile('Jobs', num(g.jobs.count), { id: 'ci-jobs', value: g.jobs.count, sub: `failure rate ${pct(g.jobs.failure_rate)}` }),
        tile('Job queue p50', duration(g.jobs.queue_seconds.p50), { id: 'ci-queue', value: g.jobs.queue_seconds.p50, sub: `p90 ${duration(g.jobs.queue_seconds.p90)}` }),
      ),
      grid(
        h(
          'div',
          null,
          h('h3', null, 'Slowest workflows: run duration (minutes)'),
          barChart(
            slowest.map((w) => w.name),
            [
              { label: 'p50', data: slowest.map((w) => minutes(w.g.runs!.duration_seconds.p50)) },
              { label: 'p90', data: slowest.map((w) => minutes(w.g.runs!.duration_seconds.p90)), color: '#93c5fd' },
            ],
            { id: 'slowest-workflows', label: 'Slowest workflows by run duration', horizontal: true, format: (v) => `${v}m`, height: Math.max(160, slowest.length * 40) },
          ),
        ),
        h(
          'div',
          null,
          h('h3', null, 'Flakiest workflows: failure rate (%)'),
          barChart(
            flakiest.map((w) => w.name),
            [{ label: 'Failure rate', color: '#ef4444', data: flakiest.map((w) => Math.round((w.g.runs!.failure_rate ?? 0) * 1000) / 10) }],
            { id: 'flakiest-workflows', label: 'Workflows by failure rate', horizontal: true, format: (v) => `${v}%`, height: Math.max(160, flakiest.length * 40) },
          ),
        ),
      ),
    ], { wide: true }),
    panel('Workflows', [table(columns, [...workflows].sort((a, b) => (b.g.runs?.count ?? 0) - (a.g.runs?.count ?? 0)), { id: 'workflows-table' })], {
      wide: true,
      hint:
        'Failure rate = failed ÷ completed runs (cancelled and timed out are not failures). A re-run replaces its run, so “re-run … then passed” counts runs whose latest attempt is > 1 and succeeded: the usual sign of a flaky workflow.' +
        (cut ? ` Re-runs are counted among the newest ${num(runs.items.length)} runs (created since ${shortDate(cut)}).` : ''),
    }),
    grid(
      panel('Queue time by runner label', [queueChart(runners, 'queue-by-runner', 'runner label')], { hint: 'From job creation to start. A job with labels self-hosted, linux counts under both.' }),
      panel('Queue time by OS', [queueChart(oses, 'queue-by-os', 'OS')], { hint: 'OS from the runner labels (linux, windows, macos).' }),
    ),
  ];
}
