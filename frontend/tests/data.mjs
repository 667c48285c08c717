// Realistic webhook deliveries for the browser tests, made from GitHub's own
// example payloads (shared/tests/fixtures/github-webhooks) with varied
// repositories, numbers, people, times and outcomes. Deterministic: a seeded
// generator, times relative to `now`.

import { createHmac, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(here, '../../shared/tests/fixtures/github-webhooks/api.github.com');

function template(path) {
  return JSON.parse(readFileSync(join(FIXTURES, path), 'utf8'));
}

const T = {
  pull: template('pull_request/closed.with-organization.payload.json'),
  review: template('pull_request_review/submitted.with-organization.payload.json'),
  run: template('workflow_run/completed.payload.json'),
  job: template('workflow_job/completed.success.with-organization.payload.json'),
  deployment: template('deployment/payload.json'),
  status: template('deployment_status/payload.json'),
  membership: template('membership/added.payload.json'),
  ping: template('ping/with-organization.payload.json'),
  star: template('star/created.payload.json'),
};

const clone = (o) => structuredClone(o);

/** mulberry32: a small seeded PRNG. */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const ORG = 'acme';
export const REPOS = [
  { name: 'api', id: 910001 },
  { name: 'web', id: 910002 },
  { name: 'infra', id: 910003 },
];
export const TEAMS = {
  backend: ['alice', 'bob', 'carol'],
  frontend: ['dave', 'erin'],
};
const PEOPLE = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'];
const WORKFLOWS = [
  { name: 'CI', id: 501, minutes: [4, 12], failure: 0.1, labels: [['ubuntu-latest']] },
  { name: 'Lint', id: 502, minutes: [1, 3], failure: 0.03, labels: [['ubuntu-latest']] },
  { name: 'E2E', id: 503, minutes: [15, 40], failure: 0.3, labels: [['self-hosted', 'linux', 'x64'], ['macos-14']] },
  { name: 'Windows build', id: 504, minutes: [10, 25], failure: 0.15, labels: [['windows-latest']] },
];

/** Two 90-day windows of history: the dashboard's default window and the one before it (trends). */
export const SPAN_DAYS = 168;
export const PULLS = 120;
export const RUNS = 200;

const iso = (ms) => new Date(Math.round(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
const H = 3600_000;
const D = 24 * H;

function repoPayload(base, repo) {
  const r = clone(base);
  r.id = repo.id;
  r.name = repo.name;
  r.full_name = `${ORG}/${repo.name}`;
  r.owner = { ...(r.owner ?? {}), login: ORG, type: 'Organization' };
  r.private = false;
  r.default_branch = 'main';
  delete r.updated_at;
  delete r.pushed_at;
  return r;
}

function user(login) {
  return { login, id: 100000 + PEOPLE.indexOf(login), type: 'User', site_admin: false };
}

/**
 * Every delivery, in a plausible arrival order: [{ event, payload }].
 * PULLS pull requests with reviews, RUNS workflow runs with their jobs, and
 * deployments with statuses over SPAN_DAYS days; team memberships.
 */
export function generate(now = Date.now(), seed = 42) {
  const rand = rng(seed);
  const pick = (xs) => xs[Math.floor(rand() * xs.length)];
  const between = (a, b) => a + rand() * (b - a);
  const out = [];
  const org = { login: ORG, id: 777000, description: '' };

  // Teams first: memberships (organization webhook).
  for (const [slug, members] of Object.entries(TEAMS)) {
    for (const login of members) {
      const p = clone(T.membership);
      p.action = 'added';
      p.scope = 'team';
      p.member = user(login);
      p.team = { ...p.team, name: slug[0].toUpperCase() + slug.slice(1), slug, id: slug === 'backend' ? 61 : 62, description: `The ${slug} team`, privacy: 'closed' };
      p.organization = org;
      out.push({ event: 'membership', payload: p });
    }
  }

  // Pull requests and reviews.
  let number = 100;
  const merges = [];
  for (let i = 0; i < PULLS; i++) {
    const repo = REPOS[i % 3 === 2 ? 2 : i % 2];
    const author = pick(PEOPLE);
    const created = now - between(0.2 * D, SPAN_DAYS * D);
    const n = ++number;
    const roll = rand();
    // Old open pull requests are the stale ones.
    const fate = created < now - 30 * D ? (roll < 0.82 ? 'merged' : roll < 0.92 ? 'closed' : 'open') : roll < 0.65 ? 'merged' : roll < 0.75 ? 'closed' : 'open';
    const cycle = between(1.5 * H, (repo.name === 'infra' ? 6 : 3) * D);
    const end = Math.min(created + cycle, now - 60_000);
    const additions = Math.floor(between(3, 600));
    const deletions = Math.floor(between(0, 200));
    const base = repoPayload(T.pull.repository, repo);
    const pr = (state, at) => {
      const p = clone(T.pull);
      p.action = state === 'open' ? 'opened' : 'closed';
      p.number = n;
      p.organization = org;
      p.repository = base;
      Object.assign(p.pull_request, {
        id: 5_000_000 + repo.id * 1000 + n,
        number: n,
        title: `${pick(['Add', 'Fix', 'Refactor', 'Speed up', 'Document'])} ${pick(['login flow', 'billing export', 'cache layer', 'search index', 'deploy script', 'rate limiter', 'settings page', 'audit log'])} (#${n})`,
        state: state === 'open' ? 'open' : 'closed',
        draft: state === 'open' && rand() < 0.1,
        user: user(author),
        created_at: iso(created),
        updated_at: iso(at),
        closed_at: state === 'open' ? null : iso(at),
        merged_at: state === 'merged' ? iso(at) : null,
        merged: state === 'merged',
        additions,
        deletions,
        changed_files: 1 + Math.floor(additions / 60),
        commits: 1 + Math.floor(rand() * 6),
        labels: [],
        requested_reviewers: [],
        requested_teams: [],
      });
      p.pull_request.base = { ...p.pull_request.base, ref: 'main', repo: base };
      p.pull_request.head = { ...p.pull_request.head, ref: `feature-${n}`, repo: base };
      return p;
    };
    out.push({ event: 'pull_request', payload: pr('open', created) });
    // Reviews by someone else: most get one; some request changes first.
    const reviewers = PEOPLE.filter((x) => x !== author);
    let t = created + between(0.3 * H, (repo.name === 'web' ? 40 : 20) * H);
    const reviewed = fate !== 'open' ? rand() < 0.92 : rand() < 0.5;
    if (reviewed && t < now - 60_000) {
      const rounds = rand() < 0.3 ? 2 : 1;
      for (let r = 0; r < rounds && t < now - 60_000; r++) {
        const p = clone(T.review);
        p.action = 'submitted';
        p.organization = org;
        p.repository = base;
        const prp = pr('open', created).pull_request;
        delete prp.additions;
        delete prp.deletions;
        p.pull_request = prp;
        p.pull_request.updated_at = iso(t);
        p.review = {
          ...p.review,
          id: 7_000_000 + n * 10 + r + repo.id * 1000,
          user: user(pick(reviewers)),
          state: r < rounds - 1 ? 'changes_requested' : 'approved',
          submitted_at: iso(t),
        };
        out.push({ event: 'pull_request_review', payload: p });
        t += between(1 * H, 12 * H);
      }
    }
    if (fate !== 'open') {
      const at = Math.max(end, t);
      if (at < now - 60_000) {
        out.push({ event: 'pull_request', payload: pr(fate, at) });
        if (fate === 'merged') merges.push({ repo, at });
      }
    }
  }

  // Workflow runs and jobs.
  for (let i = 0; i < RUNS; i++) {
    const repo = REPOS[i % 3];
    const wf = WORKFLOWS[i % WORKFLOWS.length];
    const created = now - between(0.1 * D, SPAN_DAYS * D);
    const queue = between(5, wf.name === 'E2E' ? 900 : 120) * 1000;
    const dur = between(wf.minutes[0], wf.minutes[1]) * 60_000;
    const failed = rand() < wf.failure;
    const attempt = wf.name === 'E2E' && rand() < 0.3 ? 2 : 1;
    const started = created + queue;
    const updated = Math.min(started + dur, now - 30_000);
    const runId = 80_000_000 + i;
    const actor = pick(PEOPLE);
    const base = repoPayload(T.run.repository, repo);
    const run = clone(T.run);
    run.action = 'completed';
    run.repository = base;
    run.organization = org;
    Object.assign(run.workflow_run, {
      id: runId,
      name: wf.name,
      workflow_id: wf.id,
      head_branch: rand() < 0.6 ? 'main' : `feature-${100 + i}`,
      event: 'pull_request',
      status: 'completed',
      conclusion: failed ? 'failure' : 'success',
      run_number: 1000 + i,
      run_attempt: attempt,
      actor: user(actor),
      triggering_actor: user(actor),
      created_at: iso(created),
      run_started_at: iso(started),
      updated_at: iso(updated),
    });
    out.push({ event: 'workflow_run', payload: run });
    for (const [j, labels] of wf.labels.entries()) {
      const job = clone(T.job);
      job.action = 'completed';
      job.repository = repoPayload(T.job.repository, repo);
      job.organization = org;
      const jStart = started + j * between(10, 400) * 1000;
      Object.assign(job.workflow_job, {
        id: 90_000_000 + i * 10 + j,
        run_id: runId,
        run_attempt: attempt,
        workflow_name: wf.name,
        name: `${wf.name.toLowerCase()} ${j + 1}`,
        head_branch: run.workflow_run.head_branch,
        status: 'completed',
        conclusion: failed && j === 0 ? 'failure' : 'success',
        labels,
        created_at: iso(created),
        started_at: iso(jStart),
        completed_at: iso(Math.max(jStart, updated - 5000)),
      });
      out.push({ event: 'workflow_job', payload: job });
    }
  }

  // Deployments to production (api, web) and staging (web), after merges.
  let depId = 4_000_000;
  for (const repo of REPOS.slice(0, 2)) {
    for (const env of repo.name === 'web' ? ['production', 'staging'] : ['production']) {
      for (let k = 0; k < SPAN_DAYS / 6; k++) {
        const created = now - SPAN_DAYS * D + k * 6 * D + between(0, 2 * D);
        if (created > now - 60_000) continue;
        const id = ++depId;
        const deployment = {
          ...clone(T.deployment.deployment),
          id,
          sha: (id * 2654435761).toString(16).padStart(40, 'a').slice(0, 40),
          ref: 'main',
          environment: env,
          original_environment: env,
          creator: user('frank'),
          created_at: iso(created),
          updated_at: iso(created),
        };
        const d = clone(T.deployment);
        d.action = 'created';
        d.deployment = deployment;
        d.repository = repoPayload(T.deployment.repository, repo);
        delete d.workflow_run;
        delete d.workflow;
        out.push({ event: 'deployment', payload: d });
        const st = clone(T.status);
        st.action = 'created';
        const at = created + between(2, 20) * 60_000;
        st.deployment = { ...deployment, updated_at: iso(at) };
        st.deployment_status = {
          ...st.deployment_status,
          id: id * 10,
          state: rand() < (env === 'production' ? 0.15 : 0.25) ? 'failure' : 'success',
          environment: env,
          creator: user('frank'),
          created_at: iso(at),
          updated_at: iso(at),
        };
        st.repository = d.repository;
        out.push({ event: 'deployment_status', payload: st });
      }
    }
  }
  // What else GitHub sends: a ping, events Octoscope does not track (ignored),
  // and tracked events with a shape it does not understand (failed, kept for replay).
  const ping = clone(T.ping);
  ping.organization = org;
  out.unshift({ event: 'ping', payload: ping, expect: '200 stored' });
  for (let i = 0; i < 6; i++) {
    const star = clone(T.star);
    star.repository = repoPayload(T.star.repository, REPOS[i % 3]);
    star.starred_at = iso(now - between(1, 20) * D);
    out.push({ event: 'star', payload: star, expect: '202 ignored' });
  }
  for (let i = 0; i < 2; i++) {
    const broken = clone(T.pull);
    broken.repository = repoPayload(T.pull.repository, REPOS[i]);
    delete broken.pull_request;
    out.push({ event: 'pull_request', payload: broken, expect: '202 failed' });
  }
  return out.map((d) => ({ expect: '200 stored', ...d }));
}

/**
 * A pull request whose title is markup, as anyone can type on GitHub: every
 * view must show it as text (no element made from it, no script run).
 */
export const HOSTILE_TITLE = '<img src=x onerror=alert(1)> Speed up <b>search</b> <script>alert(2)</script>';
export const HOSTILE_PULL = { repo: `${ORG}/web`, number: 900 };

export function hostile(now = Date.now()) {
  const repo = REPOS.find((r) => `${ORG}/${r.name}` === HOSTILE_PULL.repo);
  const base = repoPayload(T.pull.repository, repo);
  const p = clone(T.pull);
  p.action = 'opened';
  p.number = HOSTILE_PULL.number;
  p.organization = { login: ORG, id: 777000, description: '' };
  p.repository = base;
  Object.assign(p.pull_request, {
    id: 5_000_000 + repo.id * 1000 + HOSTILE_PULL.number,
    number: HOSTILE_PULL.number,
    title: HOSTILE_TITLE,
    state: 'open',
    draft: false,
    user: user('frank'),
    created_at: iso(now - 2 * D),
    updated_at: iso(now - 2 * D),
    closed_at: null,
    merged_at: null,
    merged: false,
    additions: 5,
    deletions: 1,
    changed_files: 1,
    commits: 1,
    labels: [],
    requested_reviewers: [],
    requested_teams: [],
  });
  p.pull_request.base = { ...p.pull_request.base, ref: 'main', repo: base };
  p.pull_request.head = { ...p.pull_request.head, ref: 'feature-markup', repo: base };
  return [{ event: 'pull_request', payload: p, expect: '200 stored' }];
}

/** How many answers of each kind `post` should see. */
export function expected(deliveries) {
  const out = {};
  for (const d of deliveries) out[d.expect] = (out[d.expect] ?? 0) + 1;
  return out;
}

/** Post deliveries, signed, to `url`/webhook, `concurrency` at a time; returns the answers' statuses. */
export async function post(url, secret, deliveries, concurrency = 8) {
  const statuses = {};
  let next = 0;
  const worker = async () => {
    while (next < deliveries.length) {
      const { event, payload } = deliveries[next++];
      const body = JSON.stringify(payload);
      const sig = 'sha256=' + createHmac('sha256', secret).update(body).digest('hex');
      const resp = await fetch(`${url}/webhook`, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'X-GitHub-Event': event,
          'X-GitHub-Delivery': randomUUID(),
          'X-GitHub-Hook-ID': '424242',
          'X-Hub-Signature-256': sig,
          'User-Agent': 'GitHub-Hookshot/octoscope-dashboard-test',
        },
        body,
      });
      const answer = await resp.json().catch(() => ({}));
      const key = `${resp.status} ${answer.status ?? ''}`.trim();
      statuses[key] = (statuses[key] ?? 0) + 1;
      if (resp.status >= 300) throw new Error(`${event} delivery answered ${resp.status} ${JSON.stringify(answer)}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return statuses;
}
