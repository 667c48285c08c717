// The API client: base URL and bearer token from the settings panel
// (localStorage), errors carrying the HTTP status and the API's message.

import type { Page } from './types';

const BASE_KEY = 'octoscope.apiBase';
const TOKEN_KEY = 'octoscope.token';

export interface Settings {
  /** '' = the page's own origin. */
  base: string;
  token: string;
}

function storage(): Storage | null {
  try {
    return window.localStorage;
  } catch {
    return null; // blocked (private mode, sandboxed frame)
  }
}

export function loadSettings(): Settings {
  const s = storage();
  return { base: s?.getItem(BASE_KEY) ?? '', token: s?.getItem(TOKEN_KEY) ?? '' };
}

export function saveSettings(next: Settings): void {
  const s = storage();
  if (!s) return;
  const base = next.base.trim().replace(/\/+$/, '');
  const token = next.token.trim();
  if (base) s.setItem(BASE_KEY, base);
  else s.removeItem(BASE_KEY);
  if (token) s.setItem(TOKEN_KEY, token);
  else s.removeItem(TOKEN_KEY);
}

/** Where the API lives, as people should read it (for messages). */
export function apiOrigin(): string {
  return loadSettings().base || window.location.origin;
}

/** An answer that was not 2xx, or no answer at all (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly statusText: string,
    readonly apiMessage: string,
    readonly url: string,
  ) {
    super(status ? `HTTP ${status}${statusText ? ' ' + statusText : ''}: ${apiMessage}` : apiMessage);
  }
}

export type Params = Record<string, string | number | null | undefined>;

function query(params: Params | undefined): string {
  if (!params) return '';
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export async function get<T>(path: string, params?: Params, signal?: AbortSignal): Promise<T> {
  return request<T>('GET', path, params, undefined, signal);
}

/**
 * A write: JSON in (when there is a body) and out. A server without tokens
 * takes writes only as application/json and from its own origin.
 */
export async function send<T>(method: 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, signal?: AbortSignal): Promise<T | null> {
  return request<T | null>(method, path, undefined, body, signal);
}

async function request<T>(method: string, path: string, params: Params | undefined, body: unknown, signal?: AbortSignal): Promise<T> {
  const { base, token } = loadSettings();
  const url = `${base}${path}${query(params)}`;
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp: Response;
  try {
    resp = await fetch(url, { method, headers, signal, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    if (signal?.aborted) throw e;
    throw new ApiError(
      0,
      '',
      `Could not reach the API at ${base || window.location.origin} (${(e as Error).message}). Is octoscope serve running, and is the API base URL in Settings right?`,
      url,
    );
  }
  const text = await resp.text();
  if (!resp.ok) {
    let message = text.trim().slice(0, 300) || '(empty answer)';
    try {
      const body = JSON.parse(text) as { error?: unknown; status?: unknown };
      if (typeof body.error === 'string') message = body.error;
      else if (typeof body.status === 'string') message = body.status;
    } catch {
      /* not JSON: keep the text */
    }
    throw new ApiError(resp.status, resp.statusText, message, url);
  }
  // 204 No Content (a delete).
  if (method !== 'GET' && !text) return null as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(
      resp.status,
      resp.statusText,
      `the answer from ${path} is not JSON — is the API base URL in Settings pointing at Octoscope?`,
      url,
    );
  }
}

/** Every item of a paginated list, up to `max` items. */
export async function getAll<T>(path: string, params: Params = {}, max = 2000, signal?: AbortSignal): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | null = null;
  do {
    const limit = Math.min(500, max - out.length);
    const page: Page<T> = await get<Page<T>>(path, { ...params, limit, cursor }, signal);
    out.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}
