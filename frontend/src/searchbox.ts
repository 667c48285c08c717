// The header's search box, on every view: `/` focuses it (unless another
// field has the keyboard), Enter opens the results at `#/search?q=…`, and a
// query the API refuses gets its message right under the box.

import { routeHash } from './route';

const form = document.getElementById('search-form') as HTMLFormElement;
const input = document.getElementById('search-input') as HTMLInputElement;
const error = document.getElementById('search-error')!;

/** Whether a key pressed in `target` is someone typing (or choosing) there. */
function typing(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || !!target.closest('input, textarea, select, [contenteditable=""], [contenteditable="true"]');
}

/** `run(q)` is called on Enter when the URL is already that search (no hashchange then). */
export function initSearchBox(run: () => void): void {
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const next = routeHash('search', { q: input.value.trim() });
    if (next === window.location.hash) run();
    else window.location.hash = next;
  });
  input.addEventListener('input', () => searchError(null));
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') input.blur();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key !== '/' || e.ctrlKey || e.metaKey || e.altKey || e.defaultPrevented || typing(e.target)) return;
    if (document.querySelector('dialog[open]')) return;
    e.preventDefault();
    input.focus();
    input.select();
  });
}

/** Show the route's query in the box (the search view's), or empty it elsewhere — never under the user's fingers. */
export function syncSearchBox(q: string | null): void {
  searchError(null);
  if (document.activeElement !== input) input.value = q ?? '';
}

/** The API's message for a refused query, under the box; null clears it. */
export function searchError(message: string | null): void {
  error.textContent = message ?? '';
  error.hidden = message === null;
  if (message === null) input.removeAttribute('aria-invalid');
  else input.setAttribute('aria-invalid', 'true');
}
