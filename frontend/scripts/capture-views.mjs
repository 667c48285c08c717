// What each view shows on the demo organisation, as JSON: the API requests
// it made on load, every tile's value and text, every table's cells, every
// chart's points and sum. Run it before and after a change to the views and
// diff the two files: the numbers people see should not move.
//
//   npm run build && OCTOSCOPE_BIN=path node scripts/capture-views.mjs out.json [days...]
//
// Default windows: 90 days (the dashboard's default) and 730 (two years).

import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { buildServer, startServer } from '../tests/server.mjs';

const [out = 'views.json', ...rest] = process.argv.slice(2);
const windows = rest.length ? rest.map(Number) : [90, 730];
const VIEWS = ['overview', 'pulls', 'teams', 'ci', 'health'];

const server = await startServer(buildServer(), { demo: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
});
const result = {};
try {
  for (const days of windows) {
    for (const view of VIEWS) {
      const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
      const page = await context.newPage();
      const requests = [];
      page.on('request', (r) => {
        const u = new URL(r.url());
        if (u.pathname.startsWith('/api/')) requests.push(u.pathname + u.search);
      });
      await page.goto(`${server.url}/#/${view}?days=${days}`);
      await page.waitForFunction(() => Number(document.body.dataset.renders ?? 0) > 0 && document.body.dataset.state !== 'loading', null, {
        timeout: 60_000,
      });
      const shown = await page.evaluate(() => ({
        state: document.body.dataset.state,
        tiles: Object.fromEntries(
          [...document.querySelectorAll('[data-tile]')].map((t) => [
            t.dataset.tile,
            { value: t.dataset.value ?? null, text: t.querySelector('.tile-value')?.textContent, sub: t.querySelector('.tile-sub')?.textContent },
          ]),
        ),
        tables: Object.fromEntries(
          [...document.querySelectorAll('table')].map((tbl, i) => [
            tbl.id || `table-${i}`,
            [...tbl.querySelectorAll('tbody tr')].map((tr) => [...tr.cells].map((c) => c.textContent.trim())),
          ]),
        ),
        charts: Object.fromEntries(
          [...document.querySelectorAll('figure[data-chart]')].map((f) => [f.dataset.chart, { points: Number(f.dataset.points), sum: Number(f.dataset.sum) }]),
        ),
      }));
      result[`${view}?days=${days}`] = { requests: requests.length, paths: requests, ...shown };
      process.stderr.write(`# ${view} days=${days}: ${requests.length} API requests\n`);
      await context.close();
    }
  }
} finally {
  await browser.close();
  await server.stop();
}
writeFileSync(out, JSON.stringify(result, null, 1) + '\n');
