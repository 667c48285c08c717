// Build and run `octoscope serve` for the browser tests: a free loopback
// port, a temporary data directory, the built dashboard.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const FRONTEND = resolve(here, '..');
export const ROOT = resolve(FRONTEND, '..');

function log(msg) {
  process.stderr.write(`# ${msg}\n`);
}

/** `npm run build` (skipped with SKIP_FRONTEND_BUILD=1 when dist/ exists). */
export function buildFrontend() {
  if (process.env.SKIP_FRONTEND_BUILD === '1' && existsSync(join(FRONTEND, 'dist/index.html'))) return;
  log('building the dashboard (npm run build)');
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: FRONTEND, stdio: ['ignore', 'ignore', 'inherit'] });
}

/** The octoscope binary: OCTOSCOPE_BIN, or a debug build by cargo (CARGO_TARGET_DIR respected). */
export function buildServer() {
  if (process.env.OCTOSCOPE_BIN) return process.env.OCTOSCOPE_BIN;
  log('building octoscope (cargo build -p octoscope)');
  execFileSync('cargo', ['build', '--quiet', '-p', 'octoscope'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  const meta = JSON.parse(
    execFileSync('cargo', ['metadata', '--format-version', '1', '--no-deps'], { cwd: ROOT, maxBuffer: 64 << 20 }).toString(),
  );
  return join(meta.target_directory, 'debug', 'octoscope');
}

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/**
 * Start `octoscope serve` (over `octoscope demo`'s sample organisation with
 * `demo: true`); resolves once it prints its "listening" line.
 * Returns { url, secret, stop() }.
 */
export async function startServer(bin, { secret = 'dashboard-test-secret', env = {}, demo = false } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'octoscope-dashboard-'));
  if (demo) {
    // The sample organisation, through the real webhook path (`octoscope demo`).
    execFileSync(bin, ['demo', '--data-dir', dataDir], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  const port = await freePort();
  const child = spawn(
    bin,
    ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--check-interval', '0', '--dashboard-dir', join(FRONTEND, 'dist')],
    {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        RUST_LOG: 'octoscope=warn',
        GITHUB_WEBHOOK_SECRET: secret,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  child.stderr.on('data', (d) => (output += d));
  const url = await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`octoscope did not start in 30 s:\n${output}`)), 30_000);
    child.stdout.on('data', (d) => {
      output += d;
      const m = /octoscope listening on (http:\/\/\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        ok(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`octoscope exited with ${code}:\n${output}`));
    });
  });
  return {
    url,
    secret,
    output: () => output,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((ok) => {
          const t = setTimeout(() => {
            child.kill('SIGKILL');
            ok();
          }, 5000);
          child.once('exit', () => {
            clearTimeout(t);
            ok();
          });
        });
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
