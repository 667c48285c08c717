// The search query language as the dashboard needs it: enough of the server's
// reading (shared/src/domain/search.rs, `lex`) to find the qualifiers in a
// query, so that a facet can narrow it — replacing a qualifier of the same
// kind, since the server refuses one given twice — and show itself as chosen.

/** A facet of `SearchResults.facets` and the qualifier that selects one of its values. */
export type FacetName = 'type' | 'state' | 'repository' | 'author';

const QUALIFIERS = ['repo', 'author', 'is', 'type', 'created'];
const TYPES = ['pr', 'review', 'commit', 'repo', 'team', 'person'];
const STATES = ['open', 'closed', 'merged'];

interface Piece {
  /** The piece as typed, to put back unchanged. */
  raw: string;
  /** A qualifier `key:value` (key lowercased), when the piece is one. */
  key: string | null;
  value: string;
}

/** Whitespace and control characters separate words (as on the server). */
const separates = (c: string) => /[\s\p{Cc}]/u.test(c);

/** Split `q` into pieces: an optional `-`, then a bare token or a quoted phrase (open to the end). */
function lex(q: string): Piece[] {
  const chars = [...q];
  const out: Piece[] = [];
  let i = 0;
  while (i < chars.length) {
    while (i < chars.length && separates(chars[i])) i++;
    if (i >= chars.length) break;
    const start = i;
    const negated = chars[i] === '-';
    if (negated) i++;
    let text = '';
    let quoted = false;
    const phrase = () => {
      while (i < chars.length) {
        const c = chars[i++];
        if (c === '"') break;
        text += c;
      }
    };
    if (chars[i] === '"') {
      i++;
      quoted = true;
      phrase();
    } else {
      while (i < chars.length && !separates(chars[i])) {
        const c = chars[i++];
        if (c === '"' && text.endsWith(':')) phrase(); // a qualifier's quoted value: author:"x y"
        else text += c;
      }
    }
    const raw = chars.slice(start, i).join('');
    const colon = text.indexOf(':');
    const key = !quoted && !negated && colon > 0 ? text.slice(0, colon).toLowerCase() : '';
    out.push(QUALIFIERS.includes(key) ? { raw, key, value: text.slice(colon + 1) } : { raw, key: null, value: text });
  }
  return out;
}

/** Whether a piece is the qualifier that `facet` sets (any value). */
function selects(p: Piece, facet: FacetName): boolean {
  const v = p.value.toLowerCase();
  switch (facet) {
    case 'type':
      return p.key === 'type' || (p.key === 'is' && TYPES.includes(v));
    case 'state':
      return p.key === 'is' && STATES.includes(v);
    case 'repository':
      return p.key === 'repo';
    case 'author':
      return p.key === 'author';
  }
}

/**
 * The qualifier selecting `value` of `facet` (`type:pr`, `is:merged`,
 * `repo:acme/api`, `author:ada`), or null when the query language cannot say
 * it (a review's state, a value with a space or a quote).
 */
export function qualifier(facet: FacetName, value: string): string | null {
  if (!/^[A-Za-z0-9_.\-/[\]]+$/.test(value)) return null;
  switch (facet) {
    case 'type':
      return TYPES.includes(value) ? `type:${value}` : null;
    case 'state':
      return STATES.includes(value) ? `is:${value}` : null;
    case 'repository':
      return /^[^/]+\/[^/]+$/.test(value) ? `repo:${value}` : null;
    case 'author':
      return `author:${value}`;
  }
}

/** Whether `q` already selects `value` of `facet`. */
export function chosen(q: string, facet: FacetName, value: string): boolean {
  return lex(q).some((p) => selects(p, facet) && p.value.toLowerCase() === value.toLowerCase());
}

/**
 * `q` narrowed to `value` of `facet`: any qualifier of the same kind replaced
 * by the one for `value` (or, with `remove`, only taken out). Everything else
 * stays as typed. Null when the query language cannot say `value`.
 */
export function narrow(q: string, facet: FacetName, value: string, remove = false): string | null {
  const add = qualifier(facet, value);
  if (!add) return null;
  const kept = lex(q).filter((p) => !selects(p, facet)).map((p) => p.raw);
  if (!remove) kept.push(add);
  return kept.join(' ');
}
