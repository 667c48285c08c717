// Browser tests of the dashboard: Debian's Chromium driven by playwright-core,
// against a real `octoscope serve` fed through its real webhook endpoint.
//
//   npm test                       (builds the dashboard and octoscope first)
//   OCTOSCOPE_BIN=path npm test    (use an existing octoscope binary)
//   CHROMIUM=/path/to/chromium     (default /usr/bin/chromium)

import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';
import { HOSTILE_PULL, HOSTILE_TITLE, PULLS, expected, generate, hostile, post } from './data.mjs';
import { FRONTEND, buildFrontend, buildServer, startServer } from './server.mjs';

const SHOTS = join(FRONTEND, 'test-results/screenshots');
const TOKEN = 'dashboard-test-token-0123456789';
const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let browser;
let full; // a server with data
let empty; // a server with nothing
let locked; // a server that wants a token
let demo; // a server over `octoscope demo`
let notifying; // a server that may notify loopback receivers (OCTOSCOPE_NOTIFY_ALLOW_PRIVATE=1)
let delivered = 0;
const servers = [];

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  buildFrontend();
  const bin = buildServer();
  [full, empty, locked, demo, notifying] = await Promise.all([
    startServer(bin),
    startServer(bin),
    startServer(bin, { env: { OCTOSCOPE_API_TOKENS: TOKEN } }),
    startServer(bin, { demo: true }),
    startServer(bin, { env: { OCTOSCOPE_NOTIFY_ALLOW_PRIVATE: '1' } }),
  ]);
  servers.push(full, empty, locked, demo, notifying);
  const deliveries = [...generate(), ...hostile()];
  delivered = deliveries.length;
  const statuses = await post(full.url, full.secret, deliveries);
  assert.deepEqual(statuses, expected(deliveries));
  assert.ok(statuses['202 ignored'] > 0 && statuses['202 failed'] > 0);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: LAUNCH_ARGS,
  });
}, { timeout: 30 * 60_000 });

after(async () => {
  await browser?.close();
  await Promise.all(servers.map((s) => s.stop()));
});

/** A fresh page (own storage) at `hash`; resolves when the view has settled. */
async function open(server, hash, { viewport = { width: 1366, height: 900 }, token } = {}) {
  const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
  if (token) await context.addInitScript((t) => localStorage.setItem('octoscope.token', t), token);
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && !/status of 401/.test(m.text()) && problems.push(`console: ${m.text()}`));
  // Every API request from page load on (path and query), in order.
  const requests = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/api/')) requests.push(u.pathname + u.search);
  });
  await page.goto(`${server.url}/${hash}`);
  await settled(page, 0);
  // What the first render needed (later clicks add to `requests`).
  const loaded = [...requests];
  return { page, problems, requests, loaded, close: () => context.close() };
}

/** Wait for render number > `renders` to finish (not loading). */
async function settled(page, renders) {
  await page.waitForFunction(
    (n) => Number(document.body.dataset.renders ?? 0) > n && document.body.dataset.state !== 'loading',
    renders,
    { timeout: 30_000 },
  );
  return page.evaluate(() => document.body.dataset.state);
}

async function renders(page) {
  return page.evaluate(() => Number(document.body.dataset.renders ?? 0));
}

/** Change a filter and wait for the new render. */
async function filter(page, name, value) {
  const n = await renders(page);
  const el = page.locator(`[data-filter="${name}"]`);
  if ((await el.evaluate((e) => e.tagName)) === 'SELECT') await el.selectOption(value);
  else {
    await el.fill(value);
    await el.press('Enter');
  }
  return settled(page, n);
}

async function tileValue(page, id) {
  const v = await page.locator(`[data-tile="${id}"]`).getAttribute('data-value');
  return v === null ? null : Number(v);
}

/** The chart is present, drawn (painted pixels on its canvas), and has non-zero data. */
async function assertChart(page, id) {
  const fig = page.locator(`figure[data-chart="${id}"]`);
  assert.equal(await fig.count(), 1, `chart ${id} is on the page`);
  const points = Number(await fig.getAttribute('data-points'));
  const sum = Number(await fig.getAttribute('data-sum'));
  assert.ok(points > 0 && sum > 0, `chart ${id} has data (points ${points}, sum ${sum})`);
  const paint = await fig.locator('canvas').evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let i = 3; i < d.length; i += 4 * 5) if (d[i] > 0) painted++;
    return { w: c.width, h: c.height, painted };
  });
  assert.ok(paint.w > 100 && paint.h > 100, `chart ${id} canvas is sized (${paint.w}×${paint.h})`);
  assert.ok(paint.painted > 500, `chart ${id} is drawn (${paint.painted} painted pixels sampled)`);
  return { points, sum };
}

async function rows(page, tableId) {
  return page.locator(`#${tableId} tbody tr`).count();
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

function hashParams(page) {
  return new URLSearchParams(new URL(page.url()).hash.split('?')[1] ?? '');
}

describe('with data', () => {
  test('overview: PR flow, CI and DORA charts with numbers and trends', async () => {
    const { page, problems, close } = await open(full, '#/overview');
    try {
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
      for (const id of ['throughput', 'cycle-trend', 'ci-trend', 'deploy-frequency']) await assertChart(page, id);
      for (const id of ['merged', 'cycle-p50', 'review-p50', 'ci-runs', 'ci-duration', 'ci-queue']) {
        assert.ok((await tileValue(page, id)) > 0, `tile ${id} is non-zero`);
      }
      assert.ok((await tileValue(page, 'dora-frequency-production')) > 0, 'DORA tile for production');
      assert.ok((await page.locator('.tile .trend').count()) > 0, 'trend arrows against the previous period');
      await shot(page, 'overview');
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  });

  test('overview: the repository and team filters change the URL and the numbers', async () => {
    const { page, problems, close } = await open(full, '#/overview');
    try {
      const all = await tileValue(page, 'merged');
      assert.equal(await filter(page, 'repo', 'acme/api'), 'ready');
      assert.equal(hashParams(page).get('repo'), 'acme/api');
      const api = await tileValue(page, 'merged');
      assert.ok(api > 0 && api < all, `merged: all ${all}, acme/api ${api}`);
      await assertChart(page, 'throughput');

      assert.equal(await filter(page, 'team', 'acme/backend'), 'ready');
      assert.equal(hashParams(page).get('team'), 'acme/backend');
      assert.equal(hashParams(page).get('repo'), 'acme/api', 'filters combine');
      const backend = await tileValue(page, 'merged');
      assert.ok(backend < api, `merged: acme/api ${backend} for the backend team, ${api} for everyone`);

      assert.equal(await filter(page, 'days', '30'), 'ready');
      assert.equal(hashParams(page).get('days'), '30');
      const n = await renders(page);
      await page.goBack();
      await settled(page, n);
      assert.equal(hashParams(page).get('days'), null, 'back goes to the previous filters');
      assert.equal(await tileValue(page, 'merged'), backend);
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  });

  test('pull requests: filterable list, slowest reviews, stale pull requests', async () => {
    const { page, problems, close } = await open(full, '#/pulls');
    try {
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
      await assertChart(page, 'review-by-group');
      await assertChart(page, 'open-by-age');
      assert.equal(await rows(page, 'pulls-table'), 50, 'a first page of 50');
      assert.ok((await rows(page, 'slowest-reviews')) > 0);
      assert.ok((await rows(page, 'stale-pulls')) > 0);
      await shot(page, 'pulls');
      // Load more: the next page.
      await page.getByRole('button', { name: 'Load more' }).click();
      await page.waitForFunction(() => document.querySelectorAll('#pulls-table tbody tr').length > 50);
      assert.equal(await rows(page, 'pulls-table'), Math.min(100, PULLS));

      const merged = await tileValue(page, 'merged');
      assert.equal(await filter(page, 'repo', 'acme/web'), 'ready');
      assert.equal(await filter(page, 'state', 'open'), 'ready');
      const p = hashParams(page);
      assert.equal(p.get('repo'), 'acme/web');
      assert.equal(p.get('state'), 'open');
      const repos = await page.locator('#pulls-table tbody tr td:first-child .muted').allTextContents();
      assert.ok(repos.length > 0 && repos.every((r) => r === 'acme/web'), `only acme/web: ${repos}`);
      const states = await page.locator('#pulls-table tbody tr .badge').allTextContents();
      assert.ok(states.every((s) => s === 'open' || s === 'draft'), `only open: ${states}`);
      assert.ok((await tileValue(page, 'merged')) < merged, 'the merged count follows the repository');

      assert.equal(await filter(page, 'author', 'nobody-at-all'), 'ready');
      assert.equal(hashParams(page).get('author'), 'nobody-at-all');
      assert.match(await page.locator('#pull-list').innerText(), /No pull requests match/);
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  });

  test('any other path serves the dashboard; the API keeps its JSON 404', async () => {
    const { page, close } = await open(full, 'some/deep/path#/ci');
    try {
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
      await assertChart(page, 'slowest-workflows');
      const resp = await fetch(`${full.url}/api/no-such-thing`);
      assert.equal(resp.status, 404);
      assert.deepEqual(await resp.json(), { error: 'not found' });
      assert.equal((await fetch(`${full.url}/webhook`)).status, 405, 'GET /webhook as before');
    } finally {
      await close();
    }
  });

  test('a shared link opens the same view and filters', async () => {
    const { page, close } = await open(full, '#/pulls?repo=acme/infra&state=merged&days=180');
    try {
      assert.equal(await page.locator('[data-filter="repo"]').inputValue(), 'acme/infra');
      assert.equal(await page.locator('[data-filter="state"]').inputValue(), 'merged');
      assert.equal(await page.locator('[data-filter="days"]').inputValue(), '180');
      const states = await page.locator('#pulls-table tbody tr .badge').allTextContents();
      assert.ok(states.length > 0 && states.every((s) => s === 'merged'), `${states}`);
      assert.equal(await page.locator('nav a[aria-current="page"]').innerText(), 'Pull requests');
    } finally {
      await close();
    }
  });

  test('teams: per-team metrics and members', async () => {
    const { page, problems, close } = await open(full, '#/teams');
    try {
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
      await assertChart(page, 'team-flow');
      assert.equal(await rows(page, 'teams-table'), 2);
      assert.equal(await page.locator('.team-card').count(), 2);
      const members = await page.locator('[data-team="acme/backend"] .chips li').allTextContents();
      assert.deepEqual(members.sort(), ['alice', 'bob', 'carol']);
      await shot(page, 'teams');
      // A team links to the overview filtered by it.
      const n = await renders(page);
      await page.locator('#teams-table a', { hasText: 'acme/frontend' }).click();
      await settled(page, n);
      assert.equal(await page.evaluate(() => document.body.dataset.view), 'overview');
      assert.equal(hashParams(page).get('team'), 'acme/frontend');
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  });

  test('CI: slowest and flakiest workflows, queue time by runner label and OS', async () => {
    const { page, problems, close } = await open(full, '#/ci');
    try {
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
      for (const id of ['slowest-workflows', 'flakiest-workflows', 'queue-by-runner', 'queue-by-os']) await assertChart(page, id);
      assert.equal(await rows(page, 'workflows-table'), 4);
      const oses = await page.locator('figure[data-chart="queue-by-os"]').getAttribute('data-points');
      assert.equal(Number(oses), 6, 'p50 and p90 for linux, macos, windows');
      const runs = await tileValue(page, 'ci-runs');
      await filter(page, 'repo', 'acme/infra');
      assert.equal(hashParams(page).get('repo'), 'acme/infra');
      assert.ok((await tileValue(page, 'ci-runs')) < runs);
      await shot(page, 'ci');
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  });

  test('data health: deliveries, integrity check state, per-repository health', async () => {
    const { page, problems, close } = await open(full, '#/health');
    try {
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
      assert.equal(await tileValue(page, 'deliveries'), delivered);
      assert.equal(await tileValue(page, 'deliveries-failed'), 2);
      const { sum, points } = await assertChart(page, 'deliveries-by-status');
      assert.equal(sum, delivered);
      assert.equal(points, 3, 'stored, ignored, failed');
      await assertChart(page, 'deliveries-by-event');
      assert.equal(await rows(page, 'deliveries-table'), 100);
      assert.equal(await rows(page, 'repo-health-table'), 3);
      assert.equal(await page.locator('[data-state="no-checks"]').count(), 1, 'says how to turn the integrity check on');
      await shot(page, 'health');
      assert.equal(await filter(page, 'status', 'failed'), 'ready');
      assert.equal(await rows(page, 'deliveries-table'), 2);
      assert.match(await page.locator('#deliveries-table').innerText(), /pull_request/);
      await filter(page, 'status', '');
      await filter(page, 'event', 'deployment');
      assert.equal(hashParams(page).get('event'), 'deployment');
      const events = await page.locator('#deliveries-table tbody tr td:nth-child(2)').allTextContents();
      assert.ok(events.length > 0 && events.every((e) => e.startsWith('deployment.')), `${events.slice(0, 3)}`);
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  });

  test('a phone screen: every view fits the width', async () => {
    const { page, problems, close } = await open(full, '#/overview', { viewport: { width: 390, height: 844 } });
    try {
      for (const view of ['overview', 'pulls', 'teams', 'ci', 'health']) {
        const n = await renders(page);
        await page.evaluate((v) => (window.location.hash = `#/${v}`), view);
        if (view !== 'overview') assert.equal(await settled(page, n), 'ready');
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 1, `${view}: no sideways scrolling on a phone (overflow ${overflow}px)`);
        const figs = await page.locator('figure.chart canvas').count();
        assert.ok(figs > 0, `${view}: charts on a phone`);
        await shot(page, `phone-${view}`);
      }
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  });
});

/** What the search view shows: the total, and each result's key, type, title and repository. */
async function searchHits(page) {
  return page.evaluate(() => ({
    total: Number(document.querySelector('#search-summary')?.dataset.total ?? NaN),
    exact: document.querySelector('#search-summary')?.dataset.totalExact,
    summary: document.querySelector('#search-summary')?.textContent,
    hits: [...document.querySelectorAll('#search-results .search-hit')].map((li) => ({
      key: li.dataset.key,
      type: li.dataset.type,
      title: li.querySelector('.hit-title').textContent,
      href: li.querySelector('a.hit-title')?.getAttribute('href') ?? null,
      repo: li.querySelector('.hit-repo')?.textContent ?? null,
      marks: li.querySelectorAll('mark').length,
    })),
  }));
}

/** Type `q` into the header's search box (focused with `/`) and press Enter; resolves when the results are shown. */
async function searchFor(page, q) {
  const n = await renders(page);
  await page.keyboard.press('/');
  assert.equal(await page.evaluate(() => document.activeElement?.id), 'search-input', '/ focuses the search box');
  await page.keyboard.type(q);
  await page.keyboard.press('Enter');
  const state = await settled(page, n);
  assert.equal(await page.evaluate(() => document.body.dataset.view), 'search');
  return state;
}

/** Click a facet value and wait for the narrowed results. */
async function facet(page, name, value) {
  const n = await renders(page);
  await page.locator(`[data-facet="${name}"] a[data-value="${value}"]`).click();
  return settled(page, n);
}

async function apiSearch(server, q, limit = 500) {
  const resp = await fetch(`${server.url}/api/search?${new URLSearchParams({ q, limit })}`);
  return { status: resp.status, body: await resp.json() };
}

describe('search', () => {
  test('the header box searches, a facet narrows the results and the URL, and the URL is shareable', async () => {
    const { page, problems, close } = await open(full, '#/pulls');
    try {
      // `/` is a character while typing in another field.
      const author = page.locator('[data-filter="author"]');
      await author.focus();
      await page.keyboard.type('a/b');
      assert.equal(await author.inputValue(), 'a/b');
      assert.equal(await page.evaluate(() => document.activeElement?.dataset.filter), 'author', '/ stays in the field');
      await author.fill('');
      await page.evaluate(() => document.activeElement.blur());

      assert.equal(await searchFor(page, 'search'), 'ready');
      assert.equal(hashParams(page).get('q'), 'search');
      const all = await searchHits(page);
      const api = (await apiSearch(full, 'search')).body;
      assert.ok(all.hits.length > 0, 'results appear');
      assert.equal(all.total, api.total, "the API's total");
      assert.deepEqual(all.hits.map((x) => x.key), api.items.slice(0, all.hits.length).map((x) => x.key), "the API's order");
      assert.ok(all.hits.every((x) => x.marks > 0), 'each result highlights the word');
      assert.ok(api.facets.type.length >= 2, `results of several types: ${JSON.stringify(api.facets.type)}`);
      await shot(page, 'search');

      // A facet adds its qualifier to the query, in the URL and the box.
      const prs = Number(await page.locator('[data-facet="type"] a[data-value="pr"]').getAttribute('data-count'));
      assert.equal(await facet(page, 'type', 'pr'), 'ready');
      assert.equal(hashParams(page).get('q'), 'search type:pr');
      assert.equal(await page.locator('#search-input').inputValue(), 'search type:pr');
      const typed = await searchHits(page);
      assert.equal(typed.total, prs, 'as many as the facet counted');
      assert.ok(typed.total < all.total && typed.hits.every((x) => x.type === 'pr'), `only pull requests: ${typed.hits.map((x) => x.type)}`);
      assert.equal(await page.locator('[data-facet="type"] li.chosen a').getAttribute('data-value'), 'pr');

      assert.equal(await facet(page, 'repository', 'acme/web'), 'ready');
      const narrowed = hashParams(page).get('q');
      assert.equal(narrowed, 'search type:pr repo:acme/web');
      const web = await searchHits(page);
      assert.ok(web.total > 0 && web.total < typed.total, `acme/web ${web.total} of ${typed.total}`);
      for (const x of web.hits) {
        assert.equal(x.repo, 'acme/web');
        const number = /^pr:acme\/web#(\d+)$/.exec(x.key)?.[1];
        assert.equal(x.href, `https://github.com/acme/web/pull/${number}`, 'a pull request links to GitHub');
      }

      // The same URL in a fresh page: the same narrowed results.
      const shared = await open(full, new URL(page.url()).hash);
      try {
        assert.equal(await shared.page.evaluate(() => document.body.dataset.state), 'ready');
        assert.deepEqual(await searchHits(shared.page), web);
        assert.equal(await shared.page.locator('#search-input').inputValue(), narrowed);
        assert.equal(await shared.page.locator('[data-facet="repository"] li.chosen a').getAttribute('data-value'), 'acme/web');
        assert.deepEqual(shared.problems, []);
      } finally {
        await shared.close();
      }

      // Back: the previous query; a chosen facet clicked again takes its qualifier out.
      const n = await renders(page);
      await page.goBack();
      await settled(page, n);
      assert.equal(hashParams(page).get('q'), 'search type:pr');
      assert.equal((await searchHits(page)).total, typed.total);
      assert.equal(await facet(page, 'type', 'pr'), 'ready');
      assert.equal(hashParams(page).get('q'), 'search');
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  });

  test('a title carrying markup is shown as text, in search and in the list', async () => {
    const { page, problems, close } = await open(full, '#/overview');
    const dialogs = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    try {
      assert.equal(await searchFor(page, 'onerror'), 'ready');
      const { hits } = await searchHits(page);
      const key = `pr:${HOSTILE_PULL.repo}#${HOSTILE_PULL.number}`;
      const hit = hits.find((x) => x.key === key);
      assert.ok(hit, `${key} is found: ${JSON.stringify(hits)}`);
      assert.equal(hit.title, HOSTILE_TITLE, 'the title, literally');
      assert.equal(hit.href, `https://github.com/${HOSTILE_PULL.repo}/pull/${HOSTILE_PULL.number}`);
      const li = page.locator(`.search-hit[data-key="${key}"]`);
      assert.deepEqual(await li.locator('mark').allTextContents(), ['onerror'], 'the word highlighted, in <mark>');
      assert.equal(await page.locator('main img, main script, main b, header img').count(), 0, 'no element made from the title');
      await shot(page, 'search-markup');

      const n = await renders(page);
      await page.evaluate(() => (window.location.hash = '#/pulls?repo=acme/web&state=open'));
      assert.equal(await settled(page, n), 'ready');
      assert.ok((await page.locator('#pulls-table').innerText()).includes(HOSTILE_TITLE), 'the list shows it as text too');
      assert.equal(await page.locator('main img, main script, main b').count(), 0);

      await page.waitForTimeout(300);
      assert.deepEqual(dialogs, [], 'no script ran');
      assert.equal(await page.evaluate(() => document.querySelectorAll('img').length), 0);
      assert.deepEqual(problems, [], 'nothing tried to load');
    } finally {
      await close();
    }
  });

  test("a refused query's message under the box; no results; more results", async () => {
    const { page, close } = await open(full, `#/search?q=${encodeURIComponent('is:foo')}`);
    try {
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'error');
      const { status, body } = await apiSearch(full, 'is:foo');
      assert.equal(status, 400);
      const message = page.locator('#search-error');
      assert.ok(await message.isVisible(), 'the message is shown');
      assert.equal(await message.innerText(), body.error, "the API's message");
      assert.equal(await page.locator('#search-input').getAttribute('aria-invalid'), 'true');
      assert.equal(await page.locator('main [data-state="error"]').getAttribute('data-status'), '400');
      assert.match(await page.locator('main').innerText(), /is:open/, 'with the query language');
      await shot(page, 'search-error');

      // Editing the query clears the message; nothing found is said plainly.
      await page.locator('#search-input').fill('');
      assert.equal(await message.isVisible(), false);
      await page.evaluate(() => document.activeElement.blur());
      assert.equal(await searchFor(page, 'qqqzzzxxx'), 'ready');
      assert.equal(await message.isVisible(), false);
      assert.match(await page.locator('#search-empty').innerText(), /No results[\s\S]*qqqzzzxxx/);

      // "More results" by the cursor: the next page, nothing repeated.
      await page.locator('#search-input').fill('');
      await page.evaluate(() => document.activeElement.blur());
      assert.equal(await searchFor(page, 'type:pr'), 'ready');
      const first = await searchHits(page);
      assert.equal(first.total, PULLS + 1);
      assert.equal(first.exact, 'true', 'fewer matches than the search counts exactly');
      assert.match(first.summary, new RegExp(`^${PULLS + 1} results`), 'an exact total, without "+"');
      assert.equal(first.hits.length, 25);
      await page.locator('[data-action="more-results"]').click();
      await page.waitForFunction(() => document.querySelectorAll('#search-results .search-hit').length > 25);
      const more = await searchHits(page);
      assert.equal(more.hits.length, 50);
      assert.equal(new Set(more.hits.map((x) => x.key)).size, 50, 'no result twice');
      assert.deepEqual(more.hits.slice(0, 25), first.hits);
      assert.match(await page.locator('#search-shown').innerText(), new RegExp(`Showing 50 of ${PULLS + 1}`));
    } finally {
      await close();
    }
  });

  test('search on a phone: no sideways scrolling', async () => {
    const { page, problems, close } = await open(full, '#/search?q=search', { viewport: { width: 390, height: 844 } });
    try {
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
      assert.ok(await page.locator('#search-input').isVisible());
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `no sideways scrolling on a phone (overflow ${overflow}px)`);
      await shot(page, 'phone-search');
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  });
});

describe('states', () => {
  test('an empty server says what to do next', async () => {
    const { page, problems, close } = await open(empty, '#/overview');
    try {
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'empty');
      const text = await page.locator('main').innerText();
      assert.match(text, /No data yet/);
      assert.ok(text.includes(`${empty.url}/webhook`), 'names the webhook URL');
      assert.match(text, /README/);
      await shot(page, 'empty');
      // Data health renders the (empty) ledger beside the hint.
      const n = await renders(page);
      await page.locator('nav a[data-view="health"]').click();
      await settled(page, n);
      assert.match(await page.locator('main').innerText(), /No data yet/);
      assert.equal(await tileValue(page, 'deliveries'), 0);
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  });

  test('a 401 is shown plainly; a token in Settings fixes it', async () => {
    const { page, problems, close } = await open(locked, '#/ci');
    try {
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'error');
      const err = page.locator('main [data-state="error"]');
      assert.equal(await err.getAttribute('data-status'), '401');
      const text = await err.innerText();
      assert.match(text, /HTTP 401/);
      assert.match(text, /missing or invalid bearer token/, "the API's own message");
      assert.match(text, /Settings/);
      await shot(page, 'error-401');
      // Enter the token: sent as a bearer token, kept in localStorage.
      const n = await renders(page);
      await page.locator('#settings-open').click();
      await page.locator('#settings-token').fill(TOKEN);
      await shot(page, 'settings');
      await page.locator('#settings-save').click();
      assert.equal(await settled(page, n), 'empty', 'authorised now (and the server has no data)');
      assert.equal(await page.evaluate(() => localStorage.getItem('octoscope.token')), TOKEN);
      assert.deepEqual(problems, []);
    } finally {
      await close();
    }
  });

  test("a refused filter shows the API's 400 message, and the filters to fix it", async () => {
    const { page, close } = await open(full, '#/pulls?repo=bad');
    try {
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'error');
      const err = page.locator('main [data-state="error"]');
      assert.equal(await err.getAttribute('data-status'), '400');
      assert.match(await err.innerText(), /HTTP 400[\s\S]*repository "bad" is not valid: expected OWNER\/NAME/);
      const n = await renders(page);
      await page.locator('[data-action="clear-filters"]').click();
      assert.equal(await settled(page, n), 'ready');
      assert.equal(hashParams(page).get('repo'), null);
    } finally {
      await close();
    }
  });

  test('a slow API shows a loading state, then the view', async () => {
    const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    try {
      const page = await context.newPage();
      await page.route('**/api/metrics/**', async (route) => {
        await new Promise((r) => setTimeout(r, 700));
        await route.continue();
      });
      await page.goto(`${full.url}/#/overview`);
      const spinner = page.locator('main .state.loading');
      await spinner.waitFor({ state: 'visible', timeout: 5000 });
      assert.match(await spinner.innerText(), /Loading overview/);
      assert.equal(await settled(page, 0), 'ready');
      assert.equal(await spinner.count(), 0);
    } finally {
      await context.close();
    }
  });

  test('an unreachable API base is an error with a hint, not a blank page', async () => {
    const { page, close } = await open(full, '#/overview');
    try {
      const n = await renders(page);
      await page.locator('#settings-open').click();
      await page.locator('#settings-base').fill('http://127.0.0.1:9');
      await page.locator('#settings-save').click();
      assert.equal(await settled(page, n), 'error');
      assert.match(await page.locator('main').innerText(), /Could not reach the API at http:\/\/127\.0\.0\.1:9/);
    } finally {
      await close();
    }
  });
});

describe('with the demo organisation', () => {
  test('octoscope demo: every view renders its charts with data', async () => {
    const views = {
      '#/overview': ['throughput', 'cycle-trend', 'ci-trend', 'deploy-frequency'],
      '#/pulls': ['review-by-group', 'open-by-age'],
      '#/teams': ['team-flow'],
      '#/ci': ['slowest-workflows', 'flakiest-workflows', 'queue-by-runner', 'queue-by-os'],
      '#/health': ['deliveries-by-status', 'deliveries-by-event'],
    };
    for (const [hash, charts] of Object.entries(views)) {
      const { page, problems, close } = await open(demo, hash);
      try {
        assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready', hash);
        for (const id of charts) await assertChart(page, id);
        await shot(page, `demo-${hash.slice(2)}`);
        assert.deepEqual(problems, [], hash);
      } finally {
        await close();
      }
    }
  });
});

// What the dashboard shows is the API's answer, and each view needs only a
// handful of requests for it: series and lists from the API, not loops.
const MAX_REQUESTS = 8;
const ALL_VIEWS = ['overview', 'pulls', 'teams', 'ci', 'health'];

/** The answer to a request the page made (same path and query). */
async function answer(server, loaded, path, test = () => true) {
  const url = loaded.find((u) => u.split('?')[0] === path && test(new URLSearchParams(u.split('?')[1] ?? '')));
  assert.ok(url, `the page asked ${path} (${loaded.join(', ')})`);
  const resp = await fetch(`${server.url}${url}`);
  assert.equal(resp.status, 200, url);
  return resp.json();
}

// The dashboard's own roundings (src/format.ts) and chart sums (src/charts.ts).
const hoursOf = (s) => (s === null || s === undefined ? null : Math.round((s / 3600) * 100) / 100);
const minutesOf = (s) => (s === null || s === undefined ? null : Math.round((s / 60) * 100) / 100);
function chartFigures(series) {
  let points = 0;
  let sum = 0;
  for (const data of series)
    for (const v of data)
      if (v !== null && Number.isFinite(v)) {
        points++;
        sum += v;
      }
  return { points, sum: Math.round(sum * 1000) / 1000 };
}
function trendText(now, before) {
  if (now === null || before === null || before === undefined || (before === 0 && now !== 0)) return null;
  const c = before === 0 ? 0 : (now - before) / before;
  return `${Math.abs(c) < 0.005 ? '→' : c > 0 ? '▲' : '▼'} ${Math.abs(c * 100).toFixed(0)}%`;
}
async function chartOf(page, id) {
  const fig = page.locator(`figure[data-chart="${id}"]`);
  return { points: Number(await fig.getAttribute('data-points')), sum: Number(await fig.getAttribute('data-sum')) };
}
async function trendOf(page, id) {
  const t = page.locator(`[data-tile="${id}"] .trend`);
  return (await t.count()) ? t.innerText() : null;
}
/** `[number, repo, author]` of each row of a pull request table. */
async function pullRows(page, id) {
  return page.locator(`#${id} tbody tr`).evaluateAll((trs) =>
    trs.map((tr) => [Number(tr.querySelector('a').textContent.replace('#', '')), tr.querySelector('.muted').textContent, tr.cells[1].textContent]),
  );
}

describe('requests and numbers (demo organisation)', () => {
  for (const days of [90, 730]) {
    test(`every view loads with at most ${MAX_REQUESTS} API requests (${days} days)`, async () => {
      const counts = {};
      for (const view of ALL_VIEWS) {
        const { page, problems, loaded, close } = await open(demo, `#/${view}?days=${days}`);
        try {
          assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready', view);
          counts[view] = loaded.length;
          assert.ok(loaded.length <= MAX_REQUESTS, `${view}: ${loaded.length} API requests on load (at most ${MAX_REQUESTS}):\n${loaded.join('\n')}`);
          assert.ok(!loaded.some((u) => /^\/api\/pulls\/[^?]+\/\d+/.test(u)), `${view}: no per-pull-request requests`);
          assert.deepEqual(problems, [], view);
        } finally {
          await close();
        }
      }
      process.stderr.write(`# API requests per view load, ${days} days: ${JSON.stringify(counts)}\n`);
    });
  }

  test('the overview shows the API figures: totals, previous period, weekly trend lines (two years)', async () => {
    const { page, loaded, close } = await open(demo, '#/overview?days=730');
    try {
      const pulls = await answer(demo, loaded, '/api/metrics/pulls');
      const ci = await answer(demo, loaded, '/api/metrics/ci');
      assert.equal(pulls.interval, 'week');
      const p = pulls.groups[0];
      const c = ci.groups[0];
      assert.ok(p.series.length >= 104 && p.series.length <= 106, `a week per point over two years (${p.series.length})`);
      assert.ok(p.merged > 0 && c.runs.count > 0);
      assert.equal(await tileValue(page, 'merged'), p.merged);
      assert.equal(await tileValue(page, 'cycle-p50'), p.cycle_time_seconds.p50);
      assert.equal(await tileValue(page, 'review-p50'), p.time_to_first_review_seconds.p50);
      assert.equal(await tileValue(page, 'unreviewed'), p.unreviewed);
      assert.equal(await tileValue(page, 'open'), p.open_by_age.total);
      assert.equal(await tileValue(page, 'ci-runs'), c.runs.count);
      assert.equal(await tileValue(page, 'ci-duration'), c.runs.duration_seconds.p50);
      assert.equal(await tileValue(page, 'ci-queue'), c.jobs.queue_seconds.p50);
      // The arrows against the previous period: compare=previous's figures.
      assert.equal(await trendOf(page, 'merged'), trendText(p.merged, p.previous.merged));
      assert.equal(await trendOf(page, 'cycle-p50'), trendText(p.cycle_time_seconds.p50, p.previous.cycle_time_seconds.p50));
      assert.equal(await trendOf(page, 'ci-runs'), trendText(c.runs.count, c.previous.runs?.count));
      // The trend lines: every bucket of the series.
      const f = p.series.map((b) => b.figures);
      assert.deepEqual(
        await chartOf(page, 'cycle-trend'),
        chartFigures([
          f.map((x) => hoursOf(x.cycle_time_seconds.p50)),
          f.map((x) => hoursOf(x.cycle_time_seconds.p90)),
          f.map((x) => hoursOf(x.time_to_first_review_seconds.p50)),
        ]),
      );
      const r = c.series.map((b) => b.figures.runs);
      assert.deepEqual(
        await chartOf(page, 'ci-trend'),
        chartFigures([
          r.map((x) => minutesOf(x?.duration_seconds.p50)),
          r.map((x) => minutesOf(x?.duration_seconds.p90)),
          r.map((x) => (x?.failure_rate === null || x?.failure_rate === undefined ? null : Math.round(x.failure_rate * 1000) / 10)),
        ]),
      );
      assert.ok((await chartOf(page, 'cycle-trend')).points > 0);
      await shot(page, 'demo-overview-730');
    } finally {
      await close();
    }
  });

  test("the pull requests view's lists are the API's slowest first reviews and stale pull requests", async () => {
    const { page, loaded, close } = await open(demo, '#/pulls?days=730');
    try {
      const m = await answer(demo, loaded, '/api/metrics/pulls', (q) => q.has('top'));
      assert.ok(m.slowest_first_reviews.length > 0 && m.stale.length > 0);
      const as = (list) => list.map((w) => [w.number, w.repo, w.author ?? '—']);
      assert.deepEqual(await pullRows(page, 'slowest-reviews'), as(m.slowest_first_reviews));
      assert.deepEqual(await pullRows(page, 'stale-pulls'), as(m.stale));
      const g = m.groups[0];
      assert.equal(await tileValue(page, 'merged'), g.merged);
      assert.equal(await tileValue(page, 'open'), g.open_by_age.total);
      assert.equal(await tileValue(page, 'review-p50'), g.time_to_first_review_seconds.p50);
    } finally {
      await close();
    }
  });

  test("the CI view's tiles and workflows are the API's", async () => {
    const { page, loaded, close } = await open(demo, '#/ci?days=730');
    try {
      const all = await answer(demo, loaded, '/api/metrics/ci', (q) => !q.has('group_by'));
      const byWorkflow = await answer(demo, loaded, '/api/metrics/ci', (q) => q.get('group_by') === 'workflow');
      const g = all.groups[0];
      assert.ok(g.runs.count > 0);
      assert.equal(await tileValue(page, 'ci-runs'), g.runs.count);
      assert.equal(await tileValue(page, 'ci-failure'), g.runs.failure_rate);
      assert.equal(await tileValue(page, 'ci-duration'), g.runs.duration_seconds.p50);
      assert.equal(await tileValue(page, 'ci-jobs'), g.jobs.count);
      assert.equal(await tileValue(page, 'ci-queue'), g.jobs.queue_seconds.p50);
      // The workflows table: name, runs, failed, one row per workflow with runs, most runs first.
      const shown = await page.locator('#workflows-table tbody tr').evaluateAll((trs) => trs.map((tr) => [0, 1, 2].map((i) => tr.cells[i].textContent)));
      const want = byWorkflow.groups
        .filter((w) => w.runs?.count > 0)
        .sort((a, b) => b.runs.count - a.runs.count)
        .map((w) => [w.key ?? '(unnamed)', w.runs.count.toLocaleString('en'), w.runs.failed.toLocaleString('en')]);
      assert.deepEqual(shown, want);
    } finally {
      await close();
    }
  });
});

/** A local webhook receiver: answers 200 and keeps what it got. */
async function receiver() {
  const got = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      got.push({ path: req.url, headers: req.headers, body });
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.end('thanks');
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${server.address().port}/hook`, got, close: () => new Promise((ok) => server.close(ok)) };
}

describe('notifications', () => {
  test('add a rule, see its secret once, send a test, see the attempt in the log', async () => {
    const hook = await receiver();
    const { page, problems, close } = await open(notifying, '#/notifications');
    try {
      // An empty server still shows the view: rules can be set up first.
      assert.equal(await page.evaluate(() => document.body.dataset.state), 'ready');
      assert.equal(await page.locator('nav a[data-view="notifications"]').getAttribute('aria-current'), 'page');
      assert.match(await page.locator('#rules').innerText(), /No rules yet/);
      // WHEN a rule is added through the form
      await page.locator('[data-field="on"]').selectOption('pull_request.merged');
      await page.locator('[data-field="repo"]').fill('acme/api');
      await page.locator('[data-field="branch"]').fill('main');
      await page.locator('[data-field="type"]').selectOption('webhook');
      await page.locator('[data-field="url"]').fill(hook.url);
      await page.locator('[data-action="add-rule"]').click();
      // THEN its signing secret is shown, once, and the rule is listed
      const secret = (await page.locator('#rule-secret [data-secret]').textContent({ timeout: 10_000 })).trim();
      assert.match(secret, /^whsec_/);
      await page.waitForFunction(() => document.querySelectorAll('#rules-table tbody tr').length === 1);
      const row = await page.locator('#rules-table tbody tr').innerText();
      assert.match(row, /pull_request\.merged/);
      assert.ok(row.includes(hook.url), row);
      assert.ok(!row.includes(secret));
      const listed = await (await fetch(`${notifying.url}/api/rules`)).text();
      assert.ok(!listed.includes(secret) && !listed.includes('whsec_'), 'the API never shows the secret again');
      // AND a refused rule says why
      await page.locator('[data-field="url"]').fill('ftp://example.com/');
      await page.locator('[data-action="add-rule"]').click();
      await page.locator('#rule-error:not([hidden])').waitFor({ timeout: 10_000 });
      assert.match(await page.locator('#rule-error').innerText(), /target/);
      // WHEN a test is sent
      await page.locator('#rules-table [data-action="test"]').click();
      // THEN the receiver gets it, signed, and the log shows it delivered after one attempt
      await page.waitForFunction(
        () => document.querySelector('#log-table [data-status="delivered"]') && document.querySelector('#log-table [data-attempts="1"]'),
        null,
        { timeout: 30_000 },
      );
      assert.equal(hook.got.length, 1);
      const sent = hook.got[0];
      assert.ok(sent.headers['webhook-id']?.startsWith('ntf_'), JSON.stringify(sent.headers));
      assert.match(sent.headers['webhook-signature'] ?? '', /^v1,/);
      assert.equal(JSON.parse(sent.body).type, 'test');
      const logRow = await page.locator('#log-table tbody tr').first().innerText();
      assert.ok(logRow.includes(sent.headers['webhook-id']), logRow);
      // AND its attempts: the status code and the receiver's answer
      await page.locator('#log-table [data-action="attempts"]').first().click();
      await page.waitForFunction(() => /thanks/.test(document.querySelector('#log-table')?.textContent ?? ''));
      assert.match(await page.locator('#log-table tbody tr').first().innerText(), /200/);
      await shot(page, 'notifications');
      // The one refused rule's 400 is the browser's console line; nothing else.
      assert.deepEqual(problems.filter((p) => !/status of 400/.test(p)), []);
    } finally {
      await close();
      await hook.close();
    }
  });
});
