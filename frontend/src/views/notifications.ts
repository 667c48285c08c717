// Notifications: the rules (with their last 7 days' success rate and why a
// target is disabled), a form to add one (its signing secret shown once),
// "send test", and the log of notifications with their attempts, paged.
// Everything the API says is put on the page as text.

import { ApiError, get, send } from '../api';
import type { components } from '../api-types';
import { ago, dateTime, num, pct } from '../format';
import { setParams } from '../route';
import { badge, emptyHint, h, panel, table, type Column } from '../ui';
import type { ViewContext } from './context';

type Schemas = components['schemas'];
type Rule = Schemas['RuleView'];
type RuleWithSecret = Schemas['RuleWithSecret'];
type Note = Schemas['Notification'];
type NoteDetail = Schemas['NotificationDetail'];
type Attempt = Schemas['Attempt'];
type RuleEvent = Schemas['RuleEvent'];
interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** The events a rule may listen for, as people read them. */
const EVENTS: [RuleEvent, string][] = [
  ['pull_request.merged', 'Pull request merged'],
  ['pull_request.opened', 'Pull request opened'],
  ['branch.moved', 'Branch moved (push)'],
  ['workflow_run.failed', 'Workflow run failed'],
  ['workflow_run.recovered', 'Workflow run recovered'],
  ['deployment.failed', 'Deployment failed'],
  ['review.pickup_breached', 'No review after N hours'],
  ['ci.queue_time_regressed', 'CI queue time p90 too high'],
  ['integrity.gaps_found', 'Integrity check found gaps'],
  ['resync.failed', 'Resync failed'],
];

const LOG_PAGE = 25;

function targetText(t: Rule['target']): string {
  switch (t.type) {
    case 'webhook':
      return `Webhook ${t.url}`;
    case 'slack':
      return `Slack ${t.url}`;
    case 'repository_dispatch':
      return `repository_dispatch ${t.repo}${t.event_type ? ` (${t.event_type})` : ''}`;
  }
}

function filtersText(r: Rule): string {
  const parts: string[] = [];
  if (r.repo) parts.push(r.repo);
  if (r.branch) parts.push(`branch ${r.branch}`);
  if (r.author) parts.push(`by ${r.author}`);
  if (r.team) parts.push(`team ${r.team}`);
  if (r.environment) parts.push(`env ${r.environment}`);
  if (r.hours != null) parts.push(`${r.hours} h`);
  if (r.threshold_seconds != null) parts.push(`> ${r.threshold_seconds} s`);
  if (r.label) parts.push(`label ${r.label}`);
  if (r.skip_late) parts.push('not late');
  return parts.length ? parts.join(' · ') : 'everything';
}

/** Delivered of decided-and-finished in the last 7 days; null when none finished. */
function successRate(r: Rule): number | null {
  const done = r.stats.delivered + r.stats.failed;
  return done ? r.stats.delivered / done : null;
}

function message(e: unknown): string {
  return e instanceof ApiError ? e.apiMessage : String((e as Error)?.message ?? e);
}

export async function notifications(ctx: ViewContext): Promise<HTMLElement[]> {
  const ruleFilter = ctx.params.get('rule') ?? '';
  const statusFilter = ctx.params.get('status') ?? '';
  const cursor = ctx.params.get('cursor') ?? '';
  const logParams = { rule: ruleFilter, status: statusFilter, cursor, limit: LOG_PAGE };
  let rules: Page<Rule>;
  try {
    rules = await get<Page<Rule>>('/api/rules', { limit: 500 }, ctx.signal);
  } catch (e) {
    if (e instanceof ApiError && e.status === 501) {
      return [panel('Notifications', [emptyHint('Not on this server', 'This deployment has no notifications yet (the AWS API, for now).')], { wide: true })];
    }
    throw e;
  }
  const log = await get<Page<Note>>('/api/notifications', logParams, ctx.signal);

  // Rules ------------------------------------------------------------------
  const rulesBox = h('div', { id: 'rules' });
  const status = h('p', { class: 'hint', id: 'rules-status', role: 'status' });
  const drawRules = (list: Rule[]) => {
    const columns: Column<Rule>[] = [
      { label: 'Event', cell: (r) => [h('div', null, r.on), h('div', { class: 'muted small' }, r.id)] },
      { label: 'Filters', cell: (r) => filtersText(r) },
      { label: 'Target', cell: (r) => h('span', { class: 'small' }, targetText(r.target)) },
      {
        label: 'Last 7 days',
        num: true,
        cell: (r) => [
          h('div', { 'data-success': successRate(r) ?? '' }, pct(successRate(r), 0)),
          h('div', { class: 'muted small' }, `${num(r.stats.delivered)} sent · ${num(r.stats.failed)} failed · ${num(r.stats.pending)} pending`),
        ],
      },
      {
        label: 'State',
        cell: (r) => (r.disabled ? [badge('disabled', 'failed'), h('div', { class: 'small' }, r.disabled)] : badge('active', 'stored')),
      },
      {
        label: '',
        cell: (r) =>
          h(
            'div',
            { class: 'actions' },
            h('button', { type: 'button', class: 'secondary', 'data-action': 'test', 'data-rule': r.id, onclick: () => void sendTest(r) }, 'Send test'),
            h('a', { href: '#', 'data-action': 'log', onclick: (e: Event) => (e.preventDefault(), setParams({ rule: r.id, cursor: null })) }, 'Log'),
          ),
      },
    ];
    rulesBox.replaceChildren(table(columns, list, { id: 'rules-table', empty: 'No rules yet: add one below.' }));
  };
  drawRules(rules.items);
  const refreshRules = async () => {
    const fresh = await get<Page<Rule>>('/api/rules', { limit: 500 }, ctx.signal);
    drawRules(fresh.items);
  };

  async function sendTest(r: Rule) {
    status.textContent = `Sending a test to ${targetText(r.target)}…`;
    try {
      const note = await send<Note>('POST', `/api/rules/${encodeURIComponent(r.id)}/test`);
      status.textContent = `Test ${note?.id ?? ''} queued; its attempts show in the log below.`;
      await refreshLog();
    } catch (e) {
      status.textContent = `The test was not queued: ${message(e)}`;
    }
  }

  // The add form ------------------------------------------------------------
  const field = (label: string, input: HTMLElement) => h('label', { class: 'filter' }, h('span', null, label), input);
  const event = h('select', { name: 'on', 'data-field': 'on' }, EVENTS.map(([v, t]) => h('option', { value: v }, t)));
  const repo = h('input', { name: 'repo', 'data-field': 'repo', placeholder: 'OWNER/NAME (any)', list: 'rule-repos', autocomplete: 'off', spellcheck: 'false' });
  const repos = h('datalist', { id: 'rule-repos' }, ctx.repos.map((r) => h('option', { value: r })));
  const branch = h('input', { name: 'branch', 'data-field': 'branch', placeholder: 'main, release/* (any)', autocomplete: 'off', spellcheck: 'false' });
  const kind = h(
    'select',
    { name: 'type', 'data-field': 'type' },
    h('option', { value: 'webhook' }, 'Webhook (signed)'),
    h('option', { value: 'slack' }, 'Slack'),
    h('option', { value: 'repository_dispatch' }, 'GitHub repository_dispatch'),
  );
  const url = h('input', { name: 'url', 'data-field': 'url', placeholder: 'https://…', autocomplete: 'off', spellcheck: 'false', required: true });
  kind.addEventListener('change', () => {
    url.placeholder = kind.value === 'repository_dispatch' ? 'OWNER/NAME' : 'https://…';
  });
  const formError = h('p', { class: 'error-message', id: 'rule-error', role: 'alert', hidden: true });
  const secretBox = h('div', { id: 'rule-secret', hidden: true });
  const form = h(
    'form',
    { class: 'filters', id: 'rule-form' },
    field('Event', event),
    field('Repository', repo),
    repos,
    field('Branch', branch),
    field('Target', kind),
    field('URL or repository', url),
    h('button', { type: 'submit', 'data-action': 'add-rule' }, 'Add rule'),
  );
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void addRule();
  });

  async function addRule() {
    formError.hidden = true;
    secretBox.hidden = true;
    const target =
      kind.value === 'repository_dispatch'
        ? { type: 'repository_dispatch', repo: url.value.trim() }
        : { type: kind.value, url: url.value.trim() };
    const body: Record<string, unknown> = { on: event.value, target };
    if (repo.value.trim()) body.repo = repo.value.trim();
    if (branch.value.trim()) body.branch = branch.value.trim();
    try {
      const created = await send<RuleWithSecret>('POST', '/api/rules', body);
      if (!created) return;
      form.reset();
      if (created.secret) {
        secretBox.replaceChildren(
          h('p', null, h('strong', null, `Rule ${created.id} added. `), 'Its signing secret is shown this once — keep it where your receiver verifies the webhook-signature header:'),
          h('p', null, h('code', { 'data-secret': '' }, created.secret)),
        );
      } else {
        secretBox.replaceChildren(h('p', null, h('strong', null, `Rule ${created.id} added.`)));
      }
      secretBox.hidden = false;
      await refreshRules();
    } catch (e) {
      formError.textContent = message(e);
      formError.hidden = false;
    }
  }

  // The log ---------------------------------------------------------------------
  const logBox = h('div', { id: 'log' });
  const drawLog = (page: Page<Note>) => {
    const details = (n: Note) => {
      const box = h('div', { class: 'small' });
      const button = h('button', {
        type: 'button',
        class: 'link-button',
        'data-action': 'attempts',
        onclick: async () => {
          try {
            const d = await get<NoteDetail>(`/api/notifications/${encodeURIComponent(n.id)}`);
            box.replaceChildren(attemptsTable(d.attempt_log));
          } catch (e) {
            box.textContent = message(e);
          }
        },
      }, 'Attempts');
      return [button, box];
    };
    const columns: Column<Note>[] = [
      { label: 'Decided', cell: (n) => [h('div', null, dateTime(n.created_at)), h('div', { class: 'muted small' }, ago(n.created_at))] },
      {
        label: 'Event',
        cell: (n) => [
          h('div', null, n.event, n.late ? ' (late)' : ''),
          h('div', { class: 'muted small' }, n.transition_key),
          h('div', { class: 'muted small', 'data-note': n.id }, n.id),
        ],
      },
      { label: 'Rule', cell: (n) => h('span', { class: 'small' }, n.rule_id) },
      { label: 'Status', cell: (n) => h('span', { 'data-status': n.status }, badge(n.status, n.status === 'delivered' ? 'stored' : n.status)) },
      { label: 'Attempts', num: true, cell: (n) => h('span', { 'data-attempts': n.attempts }, num(n.attempts)) },
      {
        label: 'Last error / next',
        cell: (n) => [
          n.last_error ? h('div', { class: 'small' }, n.last_error) : null,
          n.status === 'pending' && n.next_attempt_at ? h('div', { class: 'muted small' }, `next ${ago(n.next_attempt_at)}`) : null,
        ],
      },
      { label: '', cell: details },
    ];
    const pager = h(
      'div',
      { class: 'actions' },
      cursor ? h('button', { type: 'button', class: 'secondary', 'data-action': 'newest', onclick: () => setParams({ cursor: null }) }, 'Newest') : null,
      page.next_cursor
        ? h('button', { type: 'button', class: 'secondary', 'data-action': 'older', onclick: () => setParams({ cursor: page.next_cursor }) }, 'Older')
        : null,
      h('button', { type: 'button', class: 'secondary', 'data-action': 'refresh-log', onclick: () => void refreshLog() }, 'Refresh'),
    );
    logBox.replaceChildren(table(columns, page.items, { id: 'log-table', empty: 'No notifications yet.' }), pager);
    if (page.items.some((n) => n.status === 'pending')) poll();
  };
  // While a notification on the page is pending, look again every 2 s (and at the rules' figures after).
  let polling = false;
  const poll = () => {
    if (polling) return;
    polling = true;
    setTimeout(async () => {
      polling = false;
      if (ctx.signal.aborted || !logBox.isConnected) return;
      try {
        const page = await refreshLog();
        if (!page.items.some((n) => n.status === 'pending')) await refreshRules();
      } catch {
        /* the next render tries again */
      }
    }, 2000);
  };
  const refreshLog = async () => {
    const page = await get<Page<Note>>('/api/notifications', logParams, ctx.signal);
    drawLog(page);
    return page;
  };
  drawLog(log);
  const logFilters = h(
    'div',
    { class: 'filters' },
    field(
      'Status',
      h(
        'select',
        { 'data-filter': 'log-status', onchange: (e: Event) => setParams({ status: (e.target as HTMLSelectElement).value, cursor: null }) },
        [['', 'Any status'], ['pending', 'Pending'], ['delivered', 'Delivered'], ['failed', 'Failed']].map(([v, t]) =>
          h('option', { value: v, selected: v === statusFilter }, t),
        ),
      ),
    ),
    ruleFilter
      ? h('button', { type: 'button', class: 'link-button', 'data-action': 'all-rules', onclick: () => setParams({ rule: null, cursor: null }) }, `Only ${ruleFilter} — show all rules`)
      : null,
  );

  return [
    panel('Rules', [rulesBox, status], {
      wide: true,
      hint: 'What Octoscope tells, and where. Success rate: delivered of delivered and failed, last 7 days. A target that answers 410 Gone is disabled; replacing the rule (PUT /api/rules/{id}) enables it again.',
    }),
    panel('Add a rule', [form, formError, secretBox], {
      wide: true,
      hint: 'Webhooks are signed by the Standard Webhooks specification; targets must be https:// on public addresses unless the server sets OCTOSCOPE_NOTIFY_ALLOW_PRIVATE=1. More filters (author, team, environment…): the API or octoscope rules add.',
    }),
    panel('Log', [logFilters, logBox], { wide: true, hint: 'Every notification decided, newest first, with its attempts.' }),
  ];
}

function attemptsTable(list: Attempt[]) {
  const columns: Column<Attempt>[] = [
    { label: '#', num: true, cell: (a) => a.number },
    { label: 'At', cell: (a) => dateTime(a.at) },
    { label: 'Status', num: true, cell: (a) => (a.status_code === null ? 'no answer' : String(a.status_code)) },
    { label: 'Latency', num: true, cell: (a) => `${num(a.latency_ms)} ms` },
    { label: 'Response', cell: (a) => h('code', null, a.excerpt || '—') },
  ];
  return table(columns, list, { empty: 'No attempt yet.' });
}
