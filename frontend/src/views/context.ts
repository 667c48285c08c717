import type { TimeWindow } from '../route';
import type { Health, Team } from '../types';

/** What every view gets: the URL's filters, the window they choose, and shared lists. */
export interface ViewContext {
  params: URLSearchParams;
  win: TimeWindow;
  /** Aborted when the user moves on: pass it to every request. */
  signal: AbortSignal;
  health: Health;
  repos: string[];
  teams: Team[];
  /** Nothing delivered yet (only the data health view renders then). */
  noData: boolean;
}

export type ViewFn = (ctx: ViewContext) => Promise<HTMLElement | HTMLElement[]>;

/** The metric filters the URL holds, for /api/metrics/*. */
export function metricParams(ctx: ViewContext, keys: string[] = ['repo', 'team']): Record<string, string> {
  const out: Record<string, string> = { since: ctx.win.since, until: ctx.win.until };
  for (const k of keys) {
    const v = ctx.params.get(k);
    if (v) out[k] = v;
  }
  return out;
}
