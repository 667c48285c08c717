// The API's JSON shapes (shared/docs/openapi.json, shared/src/views.rs,
// shared/src/metrics_views.rs). Times are ISO-8601 UTC strings.

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface Health {
  status: string;
  version: string;
  stats: {
    deliveries: Record<string, number>;
    ignored_events: Record<string, number>;
    last_delivery_at: string | null;
    repositories: number;
    pull_requests: number;
    teams: number;
    workflow_runs: number;
  };
}

export interface Repo {
  full_name: string;
  default_branch: string | null;
  private: boolean | null;
  archived: boolean | null;
  branches: { name: string; head_sha: string | null }[];
  last_activity_at: string | null;
}

export interface Pull {
  repo: string;
  number: number;
  title: string;
  state: 'open' | 'closed' | 'merged' | string;
  draft: boolean;
  author: string | null;
  created_at: string;
  updated_at: string;
  closed_at: string | null;
  merged_at: string | null;
  additions: number | null;
  deletions: number | null;
  changed_files: number | null;
  commits: number | null;
  labels: string[];
  requested_reviewers: string[];
  requested_teams: string[];
  base_ref: string | null;
  head_ref: string | null;
}

export interface Review {
  id: number;
  author: string | null;
  state: string;
  submitted_at: string | null;
}

export interface PullDetail extends Pull {
  reviews: Review[];
}

export interface Team {
  org: string;
  slug: string;
  name: string;
  description: string | null;
  privacy: string | null;
  parent: string | null;
  members: string[];
}

export interface WorkflowRun {
  repo: string;
  id: number;
  name: string | null;
  workflow_id: number | null;
  head_branch: string | null;
  head_sha: string | null;
  event: string | null;
  status: string;
  conclusion: string | null;
  run_number: number | null;
  run_attempt: number | null;
  actor: string | null;
  created_at: string;
  run_started_at: string | null;
  updated_at: string;
  queue_seconds: number | null;
  duration_seconds: number | null;
}

export interface Delivery {
  hook_id: string;
  delivery_id: string;
  event: string;
  action: string | null;
  repo: string | null;
  org: string | null;
  received_at: string;
  status: string;
  reason: string | null;
  changes: number;
  body_bytes: number;
}

export interface Target {
  type: 'repo' | 'org';
  name: string;
}

export interface Gap {
  target: Target;
  kind: string;
  watermark: string | null;
  reason: string;
}

export interface CheckRun {
  id: string;
  started_at: string;
  finished_at: string;
  repos_compared: number;
  orgs_compared: number;
  gaps: Gap[];
  redelivered: number;
  requests: number;
  dry_run: boolean;
  error: string | null;
}

export interface Job {
  id: string;
  target: Target;
  kinds: string[];
  watermark: string | null;
  state: 'queued' | 'running' | 'succeeded' | 'failed' | string;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  written: number;
  requests: number;
  error: string | null;
}

export interface Integrity extends Page<CheckRun> {
  last_check_at: string | null;
  open_gaps: number;
  jobs: Job[];
}

// Metrics.

export interface Window {
  since: string;
  until: string;
}

export interface Distribution {
  count: number;
  p50: number | null;
  p90: number | null;
  p95: number | null;
}

export interface WeekCount {
  week: string;
  week_start: string;
  count: number;
}

export interface OpenByAge {
  total: number;
  lt_1d: number;
  d1_to_3: number;
  d3_to_7: number;
  d7_to_30: number;
  gt_30d: number;
}

export interface PullFlowGroup {
  key: string | null;
  merged: number;
  throughput: WeekCount[];
  cycle_time_seconds: Distribution;
  time_to_first_review_seconds: Distribution;
  unreviewed: number;
  review_rounds: Distribution;
  size_lines: Distribution;
  open_by_age: OpenByAge;
}

export interface PullFlowMetrics {
  window: Window;
  group_by: string | null;
  groups: PullFlowGroup[];
}

export interface RunStats {
  count: number;
  completed: number;
  failed: number;
  failure_rate: number | null;
  duration_seconds: Distribution;
}

export interface JobStats {
  count: number;
  completed: number;
  failed: number;
  failure_rate: number | null;
  queue_seconds: Distribution;
  duration_seconds: Distribution;
}

export interface CiGroup {
  key: string | null;
  runs: RunStats | null;
  jobs: JobStats;
}

export interface CiMetrics {
  window: Window;
  group_by: string | null;
  groups: CiGroup[];
}

export interface DoraGroup {
  repo: string | null;
  environment: string | null;
  deployments: number;
  successful: number;
  failed: number;
  with_outcome: number;
  change_failure_rate: number | null;
  deployment_frequency: WeekCount[];
  deployments_per_week: number;
  lead_time_seconds: Distribution;
  undeployed: number;
}

export interface DoraMetrics {
  window: Window;
  group_by: string | null;
  groups: DoraGroup[];
}

export interface JobCounts {
  queued: number;
  running: number;
  succeeded: number;
  failed: number;
}

export interface RepoHealth {
  repo: string;
  last_webhook_at: string | null;
  last_check_at: string | null;
  verified_at: string | null;
  open_gaps: Gap[];
  jobs: JobCounts;
  last_job: Job | null;
}

export interface DataHealth {
  last_check: CheckRun | null;
  repos: RepoHealth[];
}
