// The dashboard shell: navigation, filters, settings, and one view at a time.
// The page's state is its URL (#/view?filters); every render starts from it.

import './style.css';
import { get, getAll, loadSettings, saveSettings } from './api';
import { destroyCharts, flushCharts } from './charts';
import { DAY_CHOICES, parseRoute, routeHash, setParams, VIEW_TITLES, VIEWS, windowOf, type ViewName } from './route';
import type { Health, Repo, Team } from './types';
import { initSearchBox, syncSearchBox } from './searchbox';
import { errorState, h, loading, noDataYet } from './ui';
import type { ViewContext, ViewFn } from './views/context';
import { overview } from './views/overview';
import { pulls } from './views/pulls';
import { teams } from './views/teams';
import { ci } from './views/ci';
import { health } from './views/health';
import { search } from './views/search';
import { notifications } from './views/notifications';

const RENDER: Record<ViewName, ViewFn> = { overview, pulls, teams, ci, health, notifications, search };

type Filter = 'days' | 'repo' | 'team' | 'state' | 'author' | 'status' | 'event';
const FILTERS: Record<ViewName, Filter[]> = {
  overview: ['days', 'repo', 'team'],
  pulls: ['days', 'repo', 'state', 'author'],
  teams: ['days', 'repo'],
  ci: ['days', 'repo', 'team'],
  health: ['repo', 'status', 'event'],
  notifications: [],
  search: [],
};
/** Filters that follow you from view to view. */
const SHARED: Filter[] = ['days', 'repo', 'team'];

const nav = document.getElementById('nav')!;
const filters = document.getElementById('filters') as HTMLFormElement;
const main = document.getElementById('view')!;
const dialog = document.getElementById('settings') as HTMLDialogElement;

// Lists for the filter menus, loaded once per page (and after the settings change).
let options: Promise<{ repos: string[]; teams: Team[] }> | null = null;
function loadOptions(signal: AbortSignal) {
  options ??= Promise.all([
    getAll<Repo>('/api/repos', {}, 1000, signal),
    getAll<Team>('/api/teams', {}, 1000, signal),
  ]).then(
    ([repos, teams]) => ({ repos: repos.map((r) => r.full_name).sort(), teams }),
    (e) => {
      options = null;
      throw e;
    },
  );
  return options;
}

let healthCache: { at: number; value: Promise<Health> } | null = null;
function loadHealth(signal: AbortSignal): Promise<Health> {
  if (!healthCache || Date.now() - healthCache.at > 10_000) {
    const value = get<Health>('/api/health', {}, signal);
    healthCache = { at: Date.now(), value };
    value.catch(() => (healthCache = null));
  }
  return healthCache.value;
}

function renderNav(view: ViewName, params: URLSearchParams) {
  const shared = new URLSearchParams();
  for (const k of SHARED) {
    const v = params.get(k);
    if (v) shared.set(k, v);
  }
  nav.replaceChildren(
    ...VIEWS.map((v) => {
      const keep = new URLSearchParams([...shared].filter(([k]) => FILTERS[v].includes(k as Filter)));
      return h(
        'a',
        { href: routeHash(v, keep), 'aria-current': v === view ? 'page' : null, 'data-view': v },
        VIEW_TITLES[v],
      );
    }),
  );
}

function select(name: Filter, label: string, choices: [string, string][], value: string) {
  return h(
    'label',
    { class: 'filter' },
    h('span', null, label),
    h(
      'select',
      { name, 'data-filter': name, onchange: (e: Event) => setParams({ [name]: (e.target as HTMLSelectElement).value }) },
      choices.map(([v, text]) => h('option', { value: v, selected: v === value }, text)),
    ),
  );
}

function renderFilters(view: ViewName, params: URLSearchParams, repos: string[], teamList: Team[]) {
  const want = FILTERS[view];
  const parts: HTMLElement[] = [];
  const p = (k: string) => params.get(k) ?? '';
  if (want.includes('days')) {
    const days = String(windowOf(params).days);
    const choices: [string, string][] = DAY_CHOICES.map((d) => [String(d), `Last ${d} days`]);
    if (!DAY_CHOICES.includes(Number(days))) choices.push([days, `Last ${days} days`]);
    parts.push(select('days', 'Period', choices, days));
  }
  if (want.includes('repo')) {
    const cur = p('repo');
    const list = cur && !repos.includes(cur) ? [...repos, cur] : repos;
    parts.push(select('repo', 'Repository', [['', 'All repositories'], ...list.map((r): [string, string] => [r, r])], cur));
  }
  if (want.includes('team')) {
    const cur = p('team');
    const names = teamList.map((t) => `${t.org}/${t.slug}`).sort();
    if (cur && !names.includes(cur)) names.push(cur);
    parts.push(select('team', 'Team', [['', 'All teams'], ...names.map((t): [string, string] => [t, t])], cur));
  }
  if (want.includes('state')) {
    parts.push(
      select(
        'state',
        'State',
        [['', 'Any state'], ['open', 'Open'], ['merged', 'Merged'], ['closed', 'Closed (not merged)']],
        p('state'),
      ),
    );
  }
  if (want.includes('author')) {
    const input = h('input', {
      type: 'search',
      name: 'author',
      'data-filter': 'author',
      placeholder: 'GitHub login',
      value: p('author'),
      autocomplete: 'off',
      spellcheck: 'false',
    });
    input.addEventListener('change', () => setParams({ author: input.value.trim() }));
    parts.push(h('label', { class: 'filter' }, h('span', null, 'Author'), input));
  }
  if (want.includes('status')) {
    parts.push(
      select(
        'status',
        'Delivery status',
        [['', 'Any status'], ['stored', 'Stored'], ['ignored', 'Ignored'], ['failed', 'Failed'], ['pending', 'Pending']],
        p('status'),
      ),
    );
  }
  if (want.includes('event')) {
    const events = ['pull_request', 'pull_request_review', 'pull_request_review_comment', 'push', 'workflow_run', 'workflow_job', 'deployment', 'deployment_status', 'membership', 'team', 'repository', 'ping'];
    const cur = p('event');
    if (cur && !events.includes(cur)) events.push(cur);
    parts.push(select('event', 'Event', [['', 'Any event'], ...events.map((e): [string, string] => [e, e])], cur));
  }
  const active = want.some((k) => k !== 'days' && params.get(k));
  if (active) {
    const clear = Object.fromEntries(want.filter((k) => k !== 'days').map((k) => [k, null]));
    parts.push(h('button', { type: 'button', class: 'link-button', 'data-action': 'clear-filters', onclick: () => setParams(clear) }, 'Clear filters'));
  }
  filters.replaceChildren(...parts);
  filters.hidden = parts.length === 0;
}

let current: AbortController | null = null;

async function render() {
  current?.abort();
  const ctl = new AbortController();
  current = ctl;
  const { view, params } = parseRoute();
  const q = view === 'search' ? (params.get('q') ?? '').trim() : null;
  document.title = `${q ? `${q} · ` : ''}${VIEW_TITLES[view]} · Octoscope`;
  syncSearchBox(q);
  document.body.dataset.view = view;
  document.body.dataset.state = 'loading';
  document.body.dataset.renders = String(Number(document.body.dataset.renders ?? 0) + 1);
  renderNav(view, params);
  // The same view with other filters keeps its content, dimmed, until the new one is ready.
  if (main.dataset.view === view && main.childElementCount && !main.querySelector('.state.loading')) {
    main.classList.add('busy');
    main.setAttribute('aria-busy', 'true');
  } else {
    destroyCharts();
    main.replaceChildren(loading(`Loading ${VIEW_TITLES[view].toLowerCase()}…`));
  }
  main.dataset.view = view;
  const done = (state: string, ...content: HTMLElement[]) => {
    if (ctl.signal.aborted) return;
    destroyCharts();
    main.classList.remove('busy');
    main.removeAttribute('aria-busy');
    main.replaceChildren(...content);
    flushCharts();
    document.body.dataset.state = state;
  };
  try {
    const [healthInfo, opts] = await Promise.all([loadHealth(ctl.signal), loadOptions(ctl.signal)]);
    if (ctl.signal.aborted) return;
    renderFilters(view, params, opts.repos, opts.teams);
    const delivered = Object.values(healthInfo.stats.deliveries).reduce((a, b) => a + b, 0);
    const noData = delivered === 0 && healthInfo.stats.pull_requests === 0 && healthInfo.stats.workflow_runs === 0;
    // Rules can be set up before any data arrives.
    if (noData && view !== 'health' && view !== 'notifications') {
      filters.hidden = true;
      done('empty', noDataYet());
      return;
    }
    const ctx: ViewContext = {
      params,
      win: windowOf(params),
      signal: ctl.signal,
      health: healthInfo,
      repos: opts.repos,
      teams: opts.teams,
      noData,
    };
    const content = await RENDER[view](ctx);
    const parts = Array.isArray(content) ? content : [content];
    // A view may answer with its own error (the search's refused query).
    const empty = noData && view !== 'notifications';
    done(empty ? 'empty' : parts.some((p) => p.dataset.state === 'error') ? 'error' : 'ready', ...parts);
  } catch (e) {
    if (ctl.signal.aborted) return;
    if (!filters.childElementCount) filters.hidden = true;
    done('error', errorState(e, () => void render(), openSettings));
  }
}

function openSettings() {
  const s = loadSettings();
  (document.getElementById('settings-base') as HTMLInputElement).value = s.base;
  (document.getElementById('settings-token') as HTMLInputElement).value = s.token;
  if (typeof dialog.showModal === 'function') dialog.showModal();
  else dialog.setAttribute('open', '');
}

document.getElementById('settings-open')!.addEventListener('click', openSettings);
document.getElementById('settings-cancel')!.addEventListener('click', () => dialog.close());
document.getElementById('settings-form')!.addEventListener('submit', () => {
  saveSettings({
    base: (document.getElementById('settings-base') as HTMLInputElement).value,
    token: (document.getElementById('settings-token') as HTMLInputElement).value,
  });
  options = null;
  healthCache = null;
  void render();
});
filters.addEventListener('submit', (e) => e.preventDefault());
initSearchBox(() => void render());
window.addEventListener('hashchange', () => void render());
if (!window.location.hash) history.replaceState(null, '', routeHash('overview', {}));
void render();
