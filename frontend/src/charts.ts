// Charts with Chart.js. Every chart sits in a <figure class="chart"> that says
// how many points it has and their sum (data-points, data-sum): tests and
// screen readers both get the numbers, not only pixels.

import {
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  DoughnutController,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
  type ChartConfiguration,
  type TooltipItem,
} from 'chart.js';
import { h } from './ui';

Chart.register(
  ArcElement,
  BarController,
  BarElement,
  CategoryScale,
  DoughnutController,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
);

Chart.defaults.font.family = getComputedStyle(document.documentElement).fontFamily || 'system-ui, sans-serif';
Chart.defaults.color = '#475569';
Chart.defaults.borderColor = '#e2e8f0';
Chart.defaults.maintainAspectRatio = false;
// Automated browsers get still charts (stable screenshots); people get a short animation.
Chart.defaults.animation = navigator.webdriver ? false : { duration: 250 };

export const COLORS = ['#2563eb', '#f59e0b', '#10b981', '#ef4444', '#8b5cf6', '#06b6d4', '#ec4899', '#84cc16', '#64748b'];

const live = new Set<Chart>();
// Chart.js sizes a chart from its place in the page: charts are drawn once
// their view is in the document (flushCharts, called after each render).
let pending: { canvas: HTMLCanvasElement; config: ChartConfiguration }[] = [];

/** Drop every chart of the previous render. */
export function destroyCharts(): void {
  for (const c of live) c.destroy();
  live.clear();
}

export interface Series {
  label: string;
  data: (number | null)[];
  color?: string;
  /** For mixed charts: draw this series as a line over bars. */
  type?: 'bar' | 'line';
  /** A dashed line (e.g. p90 beside p50). */
  dashed?: boolean;
  axis?: 'y' | 'y1';
}

export interface ChartOpts {
  id: string;
  /** What the chart shows, for screen readers. */
  label: string;
  yTitle?: string;
  y1Title?: string;
  stacked?: boolean;
  horizontal?: boolean;
  /** Format a value for tooltips and ticks. */
  format?: (v: number) => string;
  height?: number;
  percent?: boolean;
}

function stats(series: Series[]) {
  let points = 0;
  let sum = 0;
  for (const s of series)
    for (const v of s.data)
      if (v !== null && Number.isFinite(v)) {
        points++;
        sum += v;
      }
  return { points, sum: Math.round(sum * 1000) / 1000 };
}

function figure(opts: ChartOpts, series: Series[] | number[], canvas: HTMLCanvasElement, extra?: HTMLElement) {
  const st = Array.isArray(series) && typeof series[0] === 'number'
    ? stats([{ label: '', data: series as number[] }])
    : stats(series as Series[]);
  return h(
    'figure',
    { class: 'chart', 'data-chart': opts.id, 'data-points': st.points, 'data-sum': st.sum },
    h('div', { class: 'chart-box', style: `height:${opts.height ?? 240}px` }, canvas),
    extra ?? null,
  );
}

export function barChart(labels: string[], series: Series[], opts: ChartOpts): HTMLElement {
  const canvas = h('canvas', { role: 'img', 'aria-label': opts.label });
  // Mixed bar/line charts: Chart.js types each dataset by its own `type`.
  const datasets = series.map((s, i) => {
    const color = s.color ?? COLORS[i % COLORS.length];
    const base = { label: s.label, data: s.data, yAxisID: s.axis ?? 'y' };
    if (s.type === 'line') {
      return {
        ...base,
        type: 'line' as const,
        borderColor: color,
        backgroundColor: color,
        borderDash: s.dashed ? [6, 4] : undefined,
        // A long window by week (two years: ~105 points) reads as a line, not beads.
        pointRadius: labels.length > 40 ? 0 : 2,
        cubicInterpolationMode: 'monotone' as const,
        spanGaps: true,
      };
    }
    return { ...base, type: 'bar' as const, backgroundColor: color, borderRadius: 3, maxBarThickness: 36 };
  });
  const fmt = opts.format ?? ((v: number) => v.toLocaleString('en'));
  const hasY1 = series.some((s) => s.axis === 'y1');
  const config = {
    type: 'bar',
    data: { labels, datasets },
    options: {
      indexAxis: opts.horizontal ? 'y' : 'x',
      interaction: { mode: 'index', intersect: false },
      plugins: {
        legend: {
          display: series.length > 1,
          position: 'bottom',
          labels: {
            boxWidth: 12,
            // Plain colour boxes (a dashed line's legend box would be drawn dashed).
            generateLabels: (chart: Chart) =>
              Chart.defaults.plugins.legend.labels.generateLabels(chart).map((l) => ({ ...l, lineDash: [], lineWidth: 0 })),
          },
        },
        tooltip: {
          callbacks: {
            label: (ctx: TooltipItem<'bar'>) => {
              const v = ctx.parsed[opts.horizontal ? 'x' : 'y'];
              const f = ctx.dataset.yAxisID === 'y1' && opts.percent ? (x: number) => `${x.toFixed(1)}%` : fmt;
              return `${ctx.dataset.label}: ${v === null || v === undefined ? '—' : f(v)}`;
            },
          },
        },
      },
      scales: {
        [opts.horizontal ? 'y' : 'x']: { stacked: opts.stacked, grid: { display: false }, ticks: { autoSkip: true, maxRotation: 0, maxTicksLimit: opts.horizontal ? undefined : 14 } },
        [opts.horizontal ? 'x' : 'y']: {
          stacked: opts.stacked,
          beginAtZero: true,
          title: { display: !!opts.yTitle, text: opts.yTitle ?? '' },
          ticks: { callback: (v: string | number) => fmt(Number(v)) },
        },
        ...(hasY1
          ? {
              y1: {
                position: 'right',
                beginAtZero: true,
                grid: { drawOnChartArea: false },
                title: { display: !!opts.y1Title, text: opts.y1Title ?? '' },
                ticks: opts.percent ? { callback: (v: string | number) => `${v}%` } : {},
              },
            }
          : {}),
      },
    },
  };
  const fig = figure(opts, series, canvas);
  pending.push({ canvas, config: config as unknown as ChartConfiguration });
  return fig;
}

export function doughnutChart(labels: string[], values: number[], opts: ChartOpts & { colors?: string[] }): HTMLElement {
  const canvas = h('canvas', { role: 'img', 'aria-label': opts.label });
  const config: ChartConfiguration<'doughnut', number[], string> = {
    type: 'doughnut',
    data: {
      labels,
      datasets: [{ data: values, backgroundColor: opts.colors ?? COLORS.slice(0, values.length), borderWidth: 1 }],
    },
    options: {
      cutout: '60%',
      plugins: { legend: { position: 'right', labels: { boxWidth: 12 } } },
    },
  };
  const fig = figure(opts, values, canvas);
  pending.push({ canvas, config: config as unknown as ChartConfiguration });
  return fig;
}


export function flushCharts(): void {
  const todo = pending;
  pending = [];
  for (const { canvas, config } of todo) {
    if (canvas.isConnected) live.add(new Chart(canvas, config));
  }
}
