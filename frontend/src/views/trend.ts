// Trends: the window cut into at most 13 buckets of whole ISO weeks, one
// metrics request per bucket (the API answers one distribution per window).

import { get, mapLimit } from '../api';
import { shortDate } from '../format';
import type { WeekCount } from '../types';

export interface Bucket {
  label: string;
  since: string;
  until: string;
  /** How many of the API's weeks it spans. */
  weeks: number;
}

/** Buckets over the API's own week list (which covers the window, partial weeks included). */
export function buckets(weeks: WeekCount[], since: string, until: string, max = 13): Bucket[] {
  if (!weeks.length) return [];
  const per = Math.ceil(weeks.length / max);
  const out: Bucket[] = [];
  for (let i = 0; i < weeks.length; i += per) {
    const start = i === 0 ? since : weeks[i].week_start;
    const end = i + per < weeks.length ? weeks[i + per].week_start : until;
    out.push({ label: shortDate(weeks[i].week_start), since: start, until: end, weeks: Math.min(per, weeks.length - i) });
  }
  return out;
}

export function perBucket<T>(path: string, bs: Bucket[], params: Record<string, string>, signal: AbortSignal) {
  return mapLimit(bs, 4, (b) => get<T>(path, { ...params, since: b.since, until: b.until }, signal));
}

/** Weekly counts regrouped into the buckets' sums (same week list as `buckets` got). */
export function sumInto(weeks: WeekCount[], bs: Bucket[]): number[] {
  let i = 0;
  return bs.map((b) => {
    const part = weeks.slice(i, i + b.weeks);
    i += b.weeks;
    return part.reduce((a, w) => a + w.count, 0);
  });
}
