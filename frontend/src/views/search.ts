// Search results for the header's search box: `#/search?q=…` asks
// /api/search once (the shell's three requests besides), then "More results"
// by the answer's cursor. Facets narrow the query (and so the URL). Every
// string from the API goes into the page as text; highlights are <mark>.

import { ApiError, get } from '../api';
import { dateTime, longDate, num } from '../format';
import { routeHash } from '../route';
import { chosen, narrow, type FacetName } from '../search-query';
import { searchError } from '../searchbox';
import type { DocKind, Facets, SearchHit, SearchResults, Segment } from '../types';
import { badge, emptyHint, h, panel } from '../ui';
import type { ViewContext } from './context';

const PAGE = 25;

const KIND: Record<DocKind, [one: string, many: string]> = {
  pr: ['Pull request', 'Pull requests'],
  review: ['Review', 'Reviews'],
  commit: ['Commit', 'Commits'],
  repo: ['Repository', 'Repositories'],
  team: ['Team', 'Teams'],
  person: ['Person', 'People'],
};

const FACETS: [FacetName, string][] = [
  ['type', 'Type'],
  ['state', 'State'],
  ['repository', 'Repository'],
  ['author', 'Author'],
];

/** Segments as text nodes, the highlighted ones in <mark>. */
function segments(segs: Segment[]): (Node | string)[] {
  return segs.map((s) => (s.highlighted ? h('mark', null, s.text) : s.text));
}

/** The words of a text, to tell a snippet that only repeats the title. */
const words = (text: string) => text.toLowerCase().replace(/[^\p{L}\p{N}]+/gu, ' ').trim();

const NAME = '[A-Za-z0-9_.-]+';
const PR = new RegExp(`^pr:(${NAME}/${NAME})#(\\d+)$`);
const COMMIT = new RegExp(`^commit:(${NAME}/${NAME})@([0-9a-fA-F]{7,64})$`);
const REPO = new RegExp(`^repo:(${NAME}/${NAME})$`);
const TEAM = new RegExp(`^team:(${NAME})/(${NAME})$`);
const PERSON = /^person:([A-Za-z0-9-]+)$/;

/** Where a result lives on GitHub, when its key says (a review's key names no pull request). */
function githubUrl(hit: SearchHit): string | null {
  let m: RegExpExecArray | null;
  if ((m = PR.exec(hit.key))) return `https://github.com/${m[1]}/pull/${m[2]}`;
  if ((m = COMMIT.exec(hit.key))) return `https://github.com/${m[1]}/commit/${m[2]}`;
  if ((m = REPO.exec(hit.key))) return `https://github.com/${m[1]}`;
  if ((m = TEAM.exec(hit.key))) return `https://github.com/orgs/${m[1]}/teams/${m[2]}`;
  if ((m = PERSON.exec(hit.key))) return `https://github.com/${m[1]}`;
  return null;
}

/** The dashboard's own view of a repository, team or person. */
function dashboardLink(hit: SearchHit) {
  let m: RegExpExecArray | null;
  if ((m = REPO.exec(hit.key))) return h('a', { href: routeHash('overview', { repo: m[1] }) }, 'overview');
  if ((m = TEAM.exec(hit.key))) return h('a', { href: routeHash('overview', { team: `${m[1]}/${m[2]}` }) }, 'overview');
  if ((m = PERSON.exec(hit.key))) return h('a', { href: routeHash('pulls', { author: m[1] }) }, 'pull requests');
  return null;
}

function hitItem(hit: SearchHit) {
  const url = githubUrl(hit);
  const title = segments(hit.title_segments.length ? hit.title_segments : [{ text: hit.title, highlighted: false }]);
  const number = PR.exec(hit.key)?.[2];
  const short = COMMIT.exec(hit.key)?.[2].slice(0, 7);
  const snippetText = hit.snippet.map((s) => s.text).join('');
  const snippet = words(snippetText) && words(snippetText) !== words(hit.title) ? h('p', { class: 'hit-snippet' }, segments(hit.snippet)) : null;
  const meta: (Node | string)[] = [];
  const add = (...parts: (Node | string)[]) => {
    if (meta.length) meta.push(' · ');
    meta.push(...parts);
  };
  if (hit.repo && hit.type !== 'repo') add(h('span', { class: 'hit-repo' }, hit.repo));
  if (hit.author && hit.type !== 'person') add(h('span', { class: 'hit-author' }, hit.author));
  if (hit.state) {
    const known = ['open', 'merged', 'closed'].includes(hit.state);
    add(badge(hit.state.replace(/_/g, ' '), known ? hit.state : 'muted'));
  }
  if (hit.created_at) add(h('time', { datetime: hit.created_at, title: dateTime(hit.created_at) }, longDate(hit.created_at)));
  const own = dashboardLink(hit);
  if (own) add('see its ', own);
  return h(
    'li',
    { class: 'search-hit', 'data-type': hit.type, 'data-key': hit.key },
    h(
      'div',
      { class: 'hit-head' },
      badge(KIND[hit.type]?.[0] ?? hit.type, `kind ${hit.type}`),
      url
        ? h('a', { class: 'hit-title', href: url, target: '_blank', rel: 'noopener' }, title)
        : h('span', { class: 'hit-title' }, title),
      number ? h('span', { class: 'muted' }, ` #${number}`) : null,
      short ? h('code', { class: 'hit-sha' }, short) : null,
    ),
    snippet,
    meta.length ? h('div', { class: 'hit-meta muted small' }, meta) : null,
  );
}

/** One facet: its values with counts; a value links to the query narrowed to it (or, when chosen, without it). */
function facetList(q: string, name: FacetName, label: string, values: Facets[FacetName]) {
  if (!values.length) return null;
  return h(
    'section',
    { class: 'facet', 'data-facet': name },
    h('h3', null, label),
    h(
      'ul',
      null,
      values.map((f) => {
        const on = chosen(q, name, f.value);
        const next = narrow(q, name, f.value, on);
        const text = name === 'type' ? (KIND[f.value as DocKind]?.[1] ?? f.value) : f.value.replace(/_/g, ' ');
        const body = [h('span', { class: 'facet-value' }, text), h('span', { class: 'facet-count' }, num(f.count))];
        return h(
          'li',
          { class: on ? 'chosen' : null },
          next === null
            ? h('span', { class: 'facet-plain', 'data-value': f.value, 'data-count': f.count, title: 'The query language has no qualifier for this value' }, body)
            : h(
                'a',
                {
                  href: routeHash('search', { q: next }),
                  'data-value': f.value,
                  'data-count': f.count,
                  'aria-current': on ? 'true' : null,
                  title: on ? 'Remove this filter' : `Only ${text}`,
                  // The narrowed results start at the top (on a phone the facets come after them).
                  onclick: () => window.scrollTo({ top: 0 }),
                },
                body,
              ),
        );
      }),
    ),
  );
}

/** The query language, for an empty answer or a refused query. */
function syntaxHelp() {
  const rows: [string, string][] = [
    ['rate limiter', 'every word, in any field'],
    ['"token bucket"', 'the phrase'],
    ['-flaky', 'without this word'],
    ['repo:OWNER/NAME', 'in one repository'],
    ['author:LOGIN', 'by one person'],
    ['is:open, is:closed, is:merged', 'pull request state'],
    ['type:pr, review, commit, repo, team, person', 'one kind of result'],
    ['created:>2026-01-01', 'by creation day (also <, >=, <=, a day, or DAY..DAY)'],
  ];
  return h(
    'dl',
    { class: 'search-syntax' },
    rows.flatMap(([syntax, meaning]) => [h('dt', null, h('code', null, syntax)), h('dd', null, meaning)]),
  );
}

export async function search(ctx: ViewContext): Promise<HTMLElement[]> {
  const q = (ctx.params.get('q') ?? '').trim();
  let first: SearchResults;
  try {
    first = await get<SearchResults>('/api/search', { q, limit: PAGE }, ctx.signal);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 400) || ctx.signal.aborted) throw e;
    // A query the search does not understand: its message under the box, the language here.
    searchError(e.apiMessage);
    return [
      h(
        'div',
        { class: 'state error', role: 'alert', 'data-state': 'error', 'data-status': 400 },
        h('h2', null, 'This search could not run'),
        h('p', null, 'Change the query in the search box: the message under it says what is wrong. The search understands:'),
        syntaxHelp(),
      ),
    ];
  }

  const hits = [...first.items];
  let cursor = first.next_cursor;
  // Beyond what the search counts exactly, the total is a lower bound: "1,000+".
  const totalText = `${num(first.total)}${first.total_is_exact ? '' : '+'}`;
  const list = h('ol', { class: 'search-results', id: 'search-results' });
  const footer = h('div', { class: 'search-more' });
  const drawMore = () => {
    const shown = h('p', { class: 'hint', id: 'search-shown' }, `Showing ${num(hits.length)} of ${totalText}.`);
    const more = cursor
      ? h('button', {
          type: 'button',
          class: 'secondary more',
          'data-action': 'more-results',
          onclick: async (e: Event) => {
            const b = e.currentTarget as HTMLButtonElement;
            b.disabled = true;
            b.textContent = 'Loading…';
            try {
              const page = await get<SearchResults>('/api/search', { q, limit: PAGE, cursor }, ctx.signal);
              hits.push(...page.items);
              list.append(...page.items.map(hitItem));
              cursor = page.next_cursor;
              drawMore();
            } catch (err) {
              if (ctx.signal.aborted) return;
              b.disabled = false;
              b.textContent = `Failed: ${(err as Error).message} — try again`;
            }
          },
        }, 'More results')
      : null;
    footer.replaceChildren(shown, more ?? '');
  };
  list.append(...hits.map(hitItem));
  drawMore();

  const summary = h(
    'h2',
    { id: 'search-summary', 'data-total': first.total, 'data-total-exact': String(first.total_is_exact) },
    `${totalText} ${first.total === 1 && first.total_is_exact ? 'result' : 'results'}`,
    q ? [' for ', h('q', { class: 'search-query' }, q)] : null,
  );
  if (!first.total) {
    return [
      panel('Search', [
        emptyHint(
          'No results',
          q ? ['Nothing matches ', h('q', null, q), '. Try fewer words, or remove a qualifier.'] : 'Nothing is indexed yet.',
        ),
        h('h3', null, 'Search syntax'),
        syntaxHelp(),
      ], { wide: true, id: 'search-empty' }),
    ];
  }
  const facets = FACETS.map(([name, label]) => facetList(q, name, label, first.facets[name]));
  return [
    h(
      'div',
      { class: 'search-layout' },
      h('section', { class: 'panel search-main' }, summary, q ? null : h('p', { class: 'hint' }, 'Everything, newest first.'), list, footer),
      h(
        'aside',
        { class: 'panel search-facets', 'aria-label': 'Narrow the search' },
        h('h2', null, 'Narrow'),
        h('p', { class: 'hint' }, 'Counts of every match. A value adds its qualifier to the query; a chosen one takes it out.'),
        facets,
      ),
    ),
  ];
}
