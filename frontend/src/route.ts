// The URL is the state: `#/<view>?<filters>`, so every view and filter is a shareable link.

/** The views the navigation lists. */
export const VIEWS = ['overview', 'pulls', 'teams', 'ci', 'health', 'notifications'] as const;
/** Every route: the views, and the search results (`#/search?q=…`, from the header's search box). */
export const ROUTES = [...VIEWS, 'search'] as const;
export type ViewName = (typeof ROUTES)[number];

export const VIEW_TITLES: Record<ViewName, string> = {
  overview: 'Overview',
  pulls: 'Pull requests',
  teams: 'Teams',
  ci: 'CI',
  health: 'Data health',
  notifications: 'Notifications',
  search: 'Search',
};

export interface Route {
  view: ViewName;
  params: URLSearchParams;
}

export function parseRoute(hash = window.location.hash): Route {
  const h = hash.replace(/^#\/?/, '');
  // Split at the first `?` only: a search typed into the URL may hold more.
  const at = h.indexOf('?');
  const path = at < 0 ? h : h.slice(0, at);
  const qs = at < 0 ? '' : h.slice(at + 1);
  const view = (ROUTES as readonly string[]).includes(path) ? (path as ViewName) : 'overview';
  return { view, params: new URLSearchParams(qs) };
}

export function routeHash(view: ViewName, params: URLSearchParams | Record<string, string>): string {
  const p = params instanceof URLSearchParams ? new URLSearchParams(params) : new URLSearchParams(params);
  for (const [k, v] of [...p.entries()]) if (!v) p.delete(k);
  p.sort();
  const qs = p.toString();
  return `#/${view}${qs ? `?${qs}` : ''}`;
}

/** Change some parameters of the current view (empty value = remove); a new history entry. */
export function setParams(changes: Record<string, string | null>): void {
  const { view, params } = parseRoute();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === '') params.delete(k);
    else params.set(k, v);
  }
  const next = routeHash(view, params);
  if (next !== window.location.hash) window.location.hash = next;
}

/** The window the filters choose: `days` (default 90) ending at the end of today (UTC). */
export const DAY_CHOICES = [7, 14, 30, 90, 180, 365];
export const DEFAULT_DAYS = 90;

export interface TimeWindow {
  days: number;
  since: string;
  until: string;
}

function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

export function windowOf(params: URLSearchParams, now = Date.now()): TimeWindow {
  const raw = Number(params.get('days'));
  const days = Number.isInteger(raw) && raw >= 1 && raw <= 3650 ? raw : DEFAULT_DAYS;
  const tomorrow = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate() + 1);
  const since = tomorrow - days * 86400_000;
  return {
    days,
    since: isoDate(since),
    until: isoDate(tomorrow),
  };
}
