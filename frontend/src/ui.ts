// Small DOM helpers and the page's building blocks: panels, tiles, tables,
// and the loading / empty / error states.

import { ApiError, apiOrigin } from './api';

type Child = Node | string | number | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs | null = null,
  ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** A titled card. */
export function panel(title: string, body: (Child | Child[])[], opts: { wide?: boolean; hint?: string; id?: string } = {}) {
  return h(
    'section',
    { class: `panel${opts.wide ? ' wide' : ''}`, id: opts.id },
    h('h2', null, title),
    opts.hint ? h('p', { class: 'hint' }, opts.hint) : null,
    ...body,
  );
}

export function grid(...children: (Child | Child[])[]) {
  return h('div', { class: 'grid' }, ...children);
}

export interface TileOpts {
  /** Relative change against the previous window. */
  change?: number | null;
  /** Whether a rise is good (throughput) or bad (cycle time). */
  higherIsBetter?: boolean;
  sub?: string;
  /** A stable handle for tests and links. */
  id?: string;
  /** The raw number shown, for tests. */
  value?: number | null;
}

export function tile(label: string, shown: string, opts: TileOpts = {}) {
  let trend: HTMLElement | null = null;
  if (opts.change !== undefined && opts.change !== null && Number.isFinite(opts.change)) {
    const c = opts.change;
    const flat = Math.abs(c) < 0.005;
    const good = flat ? 'flat' : (c > 0) === (opts.higherIsBetter ?? true) ? 'good' : 'bad';
    const arrow = flat ? '→' : c > 0 ? '▲' : '▼';
    trend = h(
      'span',
      { class: `trend ${good}`, title: 'against the previous period of the same length' },
      `${arrow} ${Math.abs(c * 100).toFixed(0)}%`,
    );
  }
  return h(
    'div',
    { class: 'tile', 'data-tile': opts.id, 'data-value': opts.value ?? undefined },
    h('div', { class: 'tile-label' }, label),
    h('div', { class: 'tile-value' }, shown),
    h('div', { class: 'tile-sub' }, trend, opts.sub ? h('span', null, opts.sub) : null),
  );
}

export function tiles(...children: HTMLElement[]) {
  return h('div', { class: 'tiles' }, ...children);
}

export interface Column<T> {
  label: string;
  cell: (row: T) => Child | Child[];
  /** Right-aligned numbers. */
  num?: boolean;
}

export function table<T>(columns: Column<T>[], rows: T[], opts: { id?: string; empty?: string; scroll?: boolean } = {}) {
  if (!rows.length) return h('p', { class: 'empty-inline' }, opts.empty ?? 'Nothing here.');
  return h(
    'div',
    { class: opts.scroll ? 'table-wrap scroll' : 'table-wrap' },
    h(
      'table',
      { id: opts.id, 'data-rows': rows.length },
      h('thead', null, h('tr', null, columns.map((c) => h('th', { class: c.num ? 'num' : null }, c.label)))),
      h(
        'tbody',
        null,
        rows.map((r) => h('tr', null, columns.map((c) => h('td', { class: c.num ? 'num' : null }, c.cell(r))))),
      ),
    ),
  );
}

export function badge(text: string, kind = '') {
  return h('span', { class: `badge ${kind || text}` }, text);
}

export function loading(what = 'Loading…') {
  return h('div', { class: 'state loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), what);
}

/** No data at all: what to do next. */
export function noDataYet() {
  const origin = apiOrigin();
  return h(
    'div',
    { class: 'state empty', 'data-state': 'empty' },
    h('h2', null, 'No data yet'),
    h(
      'p',
      null,
      'Point a GitHub webhook at ',
      h('code', null, `${origin}/webhook`),
      ' (organization or repository → Settings → Webhooks; content type application/json; the secret from GITHUB_WEBHOOK_SECRET or octoscope-data/webhook-secret; “Send me everything”). ',
      'GitHub sends a ping at once; pull requests, reviews, CI runs and deployments appear here as they happen.',
    ),
    h(
      'p',
      null,
      'For history, run ',
      h('code', null, 'octoscope backfill --org YOUR_ORG'),
      ' with GITHUB_TOKEN set. Details: the README, section “Connect GitHub”. ',
      h('a', { href: '#/health' }, 'Data health'),
      ' shows every delivery as it arrives.',
    ),
  );
}

/** A view-specific "nothing in this selection" message. */
export function emptyHint(title: string, ...text: (Child | Child[])[]) {
  return h('div', { class: 'state empty small', 'data-state': 'empty' }, h('h3', null, title), h('p', null, ...text));
}

export function errorState(e: unknown, retry: () => void, openSettings: () => void) {
  const err = e instanceof ApiError ? e : null;
  const status = err?.status ?? 0;
  let hint: string;
  if (status === 401) {
    hint = 'The server requires an API token. Open Settings and enter one of its OCTOSCOPE_API_TOKENS.';
  } else if (status === 404 && err?.url.includes('/api/metrics')) {
    hint = 'This server has no metrics API: upgrade Octoscope.';
  } else if (status === 0 && err) {
    hint = 'Check that the server is running and the API base URL in Settings.';
  } else if (status === 400) {
    hint = 'The request was refused: try removing the filters (or report a bug).';
  } else if (status >= 500) {
    hint = 'The server had a problem; it is logged on the server. Try again in a moment.';
  } else {
    hint = '';
  }
  return h(
    'div',
    { class: 'state error', role: 'alert', 'data-state': 'error', 'data-status': status },
    h('h2', null, err ? (status ? `HTTP ${status}${err.statusText ? ' ' + err.statusText : ''}` : 'No answer') : 'Something went wrong'),
    h('p', { class: 'error-message' }, err ? err.apiMessage : String((e as Error)?.message ?? e)),
    err ? h('p', { class: 'hint' }, h('code', null, 'GET ', err.url)) : null,
    hint ? h('p', null, hint) : null,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', onclick: retry }, 'Try again'),
      h('button', { type: 'button', class: 'secondary', onclick: openSettings }, 'Settings'),
    ),
  );
}

export function link(href: string, text: string, external = false) {
  return h('a', { href, target: external ? '_blank' : null, rel: external ? 'noopener' : null }, text);
}

/** A link to the pull request on GitHub (same host as the API for Enterprise is unknown: github.com). */
export function prLink(repo: string, number: number, text?: string) {
  return link(`https://github.com/${repo}/pull/${number}`, text ?? `${repo}#${number}`, true);
}
