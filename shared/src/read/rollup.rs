//! Metric rollups: per ISO week and scope (everything, one repository, one
//! author), the counts and percentile state of the pull request and CI
//! figures, so a long window merges a few cells instead of reading every row.
//! Store-agnostic: a store keeps cells (encoded with [`PullCell::encode`] /
//! [`CiCell::encode`], or serde) and builds each from its rows with
//! [`pull_cells`] / [`ci_cells`], so a cell always equals a recomputation.
//! The design and the error bound are in `shared/docs/metrics.md`.

use std::collections::BTreeMap;
use std::ops::Range;

use chrono::{Datelike, NaiveDate, TimeDelta};
use serde::{Deserialize, Serialize};

use super::metrics::{JobMetricRow, PullMetricRow, RunMetricRow};
use crate::domain::{RepoName, Timestamp};

/// The relative accuracy of a bucketed [`Sketch`]: a percentile read from it is
/// within `ALPHA` of the nearest-rank value (before rounding to a whole number).
pub const ALPHA: f64 = 0.01;
/// A stored sketch keeps its values exactly up to this many; beyond, log buckets.
pub const EXACT_MAX: usize = 256;

/// γ = (1 + α) / (1 − α): bucket i holds the values in (γ^(i−1), γ^i].
fn ln_gamma() -> f64 {
    ((1.0 + ALPHA) / (1.0 - ALPHA)).ln()
}

fn bucket_of(v: i64) -> i32 {
    // v ≥ 1; a tiny epsilon keeps exact powers of γ in their own bucket despite rounding.
    ((v as f64).ln() / ln_gamma() - 1e-9).ceil() as i32
}

/// The value a bucket stands for: 2γ^i / (γ + 1), within α of every value in it.
fn value_of(i: i32) -> f64 {
    let g = (1.0 + ALPHA) / (1.0 - ALPHA);
    2.0 * (i as f64 * ln_gamma()).exp() / (g + 1.0)
}

/// A mergeable multiset of whole numbers (seconds, lines, rounds) answering
/// nearest-rank percentiles: the values themselves while there are few
/// (exact), else DDSketch-style logarithmic buckets (relative error [`ALPHA`]).
/// Values below 0 count as 0. Its stored form ([`compact`](Self::compact)) is a
/// function of the multiset alone, so cells built in any order are equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sketch {
    /// The values (sorted once compacted).
    Exact(Vec<i64>),
    /// `zeros` values of 0; `counts[k]` values in bucket `offset + k`.
    Buckets { zeros: u64, offset: i32, counts: Vec<u64> },
}

impl Default for Sketch {
    fn default() -> Self {
        Self::Exact(Vec::new())
    }
}

impl Sketch {
    pub fn add(&mut self, v: i64) {
        let v = v.max(0);
        match self {
            Self::Exact(values) => values.push(v),
            Self::Buckets { .. } => self.add_bucketed(v, 1),
        }
    }

    pub fn count(&self) -> u64 {
        match self {
            Self::Exact(v) => v.len() as u64,
            Self::Buckets { zeros, counts, .. } => zeros + counts.iter().sum::<u64>(),
        }
    }

    fn add_bucketed(&mut self, v: i64, n: u64) {
        let Self::Buckets { zeros, offset, counts } = self else { unreachable!("bucketed") };
        if v <= 0 {
            *zeros += n;
            return;
        }
        let i = bucket_of(v);
        if counts.is_empty() {
            *offset = i;
        }
        if i < *offset {
            let grow = (*offset - i) as usize;
            counts.splice(0..0, std::iter::repeat_n(0, grow));
            *offset = i;
        }
        let k = (i - *offset) as usize;
        if k >= counts.len() {
            counts.resize(k + 1, 0);
        }
        counts[k] += n;
    }

    fn into_buckets(self) -> Self {
        match self {
            Self::Exact(values) => {
                let mut b = Self::Buckets { zeros: 0, offset: 0, counts: Vec::new() };
                for v in values {
                    b.add_bucketed(v, 1);
                }
                b
            }
            b => b,
        }
    }

    /// Add every value of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        match (&mut *self, other) {
            (Self::Exact(a), Self::Exact(b)) => a.extend_from_slice(b),
            (Self::Buckets { .. }, Self::Exact(b)) => {
                for &v in b {
                    self.add_bucketed(v, 1);
                }
            }
            (_, Self::Buckets { zeros, offset, counts }) => {
                if let Self::Exact(_) = self {
                    *self = std::mem::take(self).into_buckets();
                }
                if let Self::Buckets { zeros: z, .. } = self {
                    *z += zeros;
                }
                // Both ends first, so the whole range is allocated once.
                if let (Some(first), Some(last)) =
                    (counts.iter().position(|&c| c > 0), counts.iter().rposition(|&c| c > 0))
                {
                    self.add_bucketed_at(offset + first as i32, 0);
                    self.add_bucketed_at(offset + last as i32, 0);
                    let Self::Buckets { offset: o, counts: c, .. } = self else { unreachable!() };
                    for (k, &n) in counts.iter().enumerate().skip(first).take(last + 1 - first) {
                        c[(offset + k as i32 - *o) as usize] += n;
                    }
                }
            }
        }
    }

    fn add_bucketed_at(&mut self, i: i32, n: u64) {
        let Self::Buckets { offset, counts, .. } = self else { unreachable!("bucketed") };
        if counts.is_empty() {
            *offset = i;
        }
        if i < *offset {
            counts.splice(0..0, std::iter::repeat_n(0, (*offset - i) as usize));
            *offset = i;
        }
        let k = (i - *offset) as usize;
        if k >= counts.len() {
            counts.resize(k + 1, 0);
        }
        counts[k] += n;
    }

    /// The stored form: sorted values up to [`EXACT_MAX`], else buckets
    /// trimmed of empty ends. Depends on the multiset only.
    pub fn compact(self) -> Self {
        match self {
            Self::Exact(mut v) if v.len() <= EXACT_MAX => {
                v.sort_unstable();
                Self::Exact(v)
            }
            other => match other.into_buckets() {
                Self::Buckets { zeros, mut offset, mut counts } => {
                    let first = counts.iter().position(|&c| c > 0).unwrap_or(counts.len());
                    counts.drain(..first);
                    offset += first as i32;
                    while counts.last() == Some(&0) {
                        counts.pop();
                    }
                    if counts.is_empty() {
                        offset = 0;
                    }
                    Self::Buckets { zeros, offset, counts }
                }
                exact => exact,
            },
        }
    }

    /// The nearest-rank p-th percentile (rank ⌈p/100 × n⌉, at least 1): exact
    /// from values; from buckets, the bucket's value rounded, within
    /// round(α × exact) of the exact answer. None when empty.
    pub fn percentile(&mut self, p: u32) -> Option<i64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = (u64::from(p) * n).div_ceil(100).clamp(1, n);
        match self {
            Self::Exact(values) => {
                if !values.is_sorted() {
                    values.sort_unstable();
                }
                Some(values[rank as usize - 1])
            }
            Self::Buckets { zeros, offset, counts } => {
                if rank <= *zeros {
                    return Some(0);
                }
                let mut seen = *zeros;
                for (k, &c) in counts.iter().enumerate() {
                    seen += c;
                    if seen >= rank {
                        return Some(value_of(*offset + k as i32).round() as i64);
                    }
                }
                unreachable!("rank ≤ count")
            }
        }
    }

    /// The nearest-rank percentiles `ps` (ascending) at once, as
    /// [`percentile`](Self::percentile) gives each. Unsorted values are not
    /// sorted: each rank is selected within what is left above the one before
    /// (linear time, not n log n: a grouping's totals hold thousands of
    /// values per group).
    pub fn percentiles<const N: usize>(&self, ps: [u32; N]) -> [Option<i64>; N] {
        let n = self.count();
        let rank = |p: u32| (u64::from(p) * n).div_ceil(100).clamp(1, n.max(1)) as usize;
        match self {
            Self::Exact(values) if n > 0 && !values.is_sorted() => {
                let mut v = values.clone();
                let mut done = 0; // v[..done] holds the values below the last rank selected
                let mut out = [None; N];
                for (i, p) in ps.into_iter().enumerate() {
                    let r = rank(p) - 1;
                    if r < done {
                        // Ranks out of order: fall back to the one-at-a-time answer.
                        return ps.map(|p| self.clone().percentile(p));
                    }
                    let (_, at, _) = v[done..].select_nth_unstable(r - done);
                    out[i] = Some(*at);
                    done = r;
                }
                out
            }
            _ => ps.map(|p| match self {
                Self::Exact(values) => (n > 0).then(|| values[rank(p) - 1]),
                buckets => buckets.clone().percentile(p),
            }),
        }
    }

    /// Append the stored form: tag 0, n, sorted values as varint deltas; or
    /// tag 1, zeros, offset (zigzag), length, counts.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Exact(values) => {
                out.push(0);
                put(out, values.len() as u64);
                let mut prev = 0i64;
                for &v in values {
                    put(out, zigzag(v - prev));
                    prev = v;
                }
            }
            Self::Buckets { zeros, offset, counts } => {
                out.push(1);
                put(out, *zeros);
                put(out, zigzag(i64::from(*offset)));
                put(out, counts.len() as u64);
                for &c in counts {
                    put(out, c);
                }
            }
        }
    }

    pub fn decode(input: &mut &[u8]) -> Option<Self> {
        let (&tag, rest) = input.split_first()?;
        *input = rest;
        match tag {
            0 => {
                let n = take(input)? as usize;
                let mut values = Vec::with_capacity(n.min(input.len()));
                let mut prev = 0i64;
                for _ in 0..n {
                    prev = prev.checked_add(unzigzag(take(input)?))?;
                    values.push(prev);
                }
                Some(Self::Exact(values))
            }
            1 => {
                let zeros = take(input)?;
                let offset = i32::try_from(unzigzag(take(input)?)).ok()?;
                let n = take(input)? as usize;
                let mut counts = Vec::with_capacity(n.min(input.len()));
                for _ in 0..n {
                    counts.push(take(input)?);
                }
                Some(Self::Buckets { zeros, offset, counts })
            }
            _ => None,
        }
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take(input: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first()?;
        *input = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// What a cell covers besides its week: every row, one repository's, or one
/// author's (a pull request's author, a run's actor, a job's run's actor;
/// None: no such person).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    All,
    Repo(RepoName),
    Author(Option<String>),
}

impl Scope {
    /// Stored form: `*`, `repo:OWNER/NAME`, `author:LOGIN`, `author:` (none).
    pub fn key(&self) -> String {
        match self {
            Self::All => "*".into(),
            Self::Repo(r) => format!("repo:{r}"),
            Self::Author(a) => format!("author:{}", a.as_deref().unwrap_or("")),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        if s == "*" {
            return Some(Self::All);
        }
        if let Some(r) = s.strip_prefix("repo:") {
            return RepoName::parse(r).ok().map(Self::Repo);
        }
        s.strip_prefix("author:").map(|a| Self::Author((!a.is_empty()).then(|| a.to_owned())))
    }

    /// The scopes a row of this repository and person counts under.
    pub fn of(repo: &RepoName, person: Option<&str>) -> [Scope; 3] {
        [Self::All, Self::Repo(repo.clone()), Self::Author(person.map(str::to_owned))]
    }
}

/// The Monday starting the ISO week of `t`.
pub fn week_of(t: Timestamp) -> NaiveDate {
    let d = t.date_naive();
    d - TimeDelta::days(d.weekday().num_days_from_monday() as i64)
}

/// A cell's address: its scope and the Monday of its week.
pub type CellKey = (Scope, NaiveDate);

fn seconds(from: Timestamp, to: Timestamp) -> i64 {
    (to - from).num_seconds().max(0)
}

/// Pull request figures of one bucket (a week, or a day of a series): the
/// merge facts of pull requests merged in it, the opening facts of those
/// opened in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullCell {
    pub merged: u64,
    /// `merged_at − created_at`.
    pub cycle: Sketch,
    /// 1 + reviews requesting changes.
    pub rounds: Sketch,
    /// additions + deletions, when known.
    pub size: Sketch,
    pub opened: u64,
    /// First review by someone else − `created_at`.
    pub first_review: Sketch,
    /// Opened without any review by someone else.
    pub unreviewed: u64,
}

impl PullCell {
    /// The facts of `row` merging (at `merged_at`).
    pub fn add_merge(&mut self, row: &PullMetricRow, merged_at: Timestamp) {
        self.merged += 1;
        self.cycle.add(seconds(row.created_at, merged_at));
        self.rounds.add(1 + i64::from(row.changes_requested));
        if let (Some(a), Some(d)) = (row.additions, row.deletions) {
            self.size.add(a + d);
        }
    }

    /// The facts of `row` being opened.
    pub fn add_opening(&mut self, row: &PullMetricRow) {
        self.opened += 1;
        match row.first_review_at {
            Some(r) => self.first_review.add(seconds(row.created_at, r)),
            None => self.unreviewed += 1,
        }
    }

    pub fn merge(&mut self, o: &PullCell) {
        self.merged += o.merged;
        self.cycle.merge(&o.cycle);
        self.rounds.merge(&o.rounds);
        self.size.merge(&o.size);
        self.opened += o.opened;
        self.first_review.merge(&o.first_review);
        self.unreviewed += o.unreviewed;
    }

    pub fn compact(self) -> Self {
        Self {
            cycle: self.cycle.compact(),
            rounds: self.rounds.compact(),
            size: self.size.compact(),
            first_review: self.first_review.compact(),
            ..self
        }
    }

    pub fn is_empty(&self) -> bool {
        self.merged == 0 && self.opened == 0
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for n in [self.merged, self.opened, self.unreviewed] {
            put(&mut out, n);
        }
        for s in [&self.cycle, &self.rounds, &self.size, &self.first_review] {
            s.encode(&mut out);
        }
        out
    }

    pub fn decode(mut b: &[u8]) -> Option<Self> {
        let b = &mut b;
        let (merged, opened, unreviewed) = (take(b)?, take(b)?, take(b)?);
        let (cycle, rounds, size, first_review) =
            (Sketch::decode(b)?, Sketch::decode(b)?, Sketch::decode(b)?, Sketch::decode(b)?);
        b.is_empty().then_some(Self { merged, cycle, rounds, size, opened, first_review, unreviewed })
    }
}

/// Counts and durations of runs (or jobs) of one bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiCounts {
    pub count: u64,
    pub completed: u64,
    pub failed: u64,
}

/// CI figures of one bucket: runs and jobs created in it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CiCell {
    pub runs: CiCounts,
    /// Completed runs with a start: `updated_at − run_started_at`.
    pub run_duration: Sketch,
    pub jobs: CiCounts,
    /// Started jobs: `started_at − created_at`.
    pub queue: Sketch,
    /// Completed jobs: `completed_at − started_at`.
    pub job_duration: Sketch,
}

impl CiCell {
    pub fn add_run(&mut self, run: &RunMetricRow) {
        self.runs.count += 1;
        if run.ci.completed() {
            self.runs.completed += 1;
            self.runs.failed += u64::from(run.ci.failed());
            if let Some(started) = run.run_started_at {
                self.run_duration.add(seconds(started, run.updated_at));
            }
        }
    }

    pub fn add_job(&mut self, job: &JobMetricRow) {
        self.jobs.count += 1;
        if let (Some(created), Some(started)) = (job.created_at, job.started_at) {
            self.queue.add(seconds(created, started));
        }
        if job.ci.completed() {
            self.jobs.completed += 1;
            self.jobs.failed += u64::from(job.ci.failed());
            if let (Some(started), Some(done)) = (job.started_at, job.completed_at) {
                self.job_duration.add(seconds(started, done));
            }
        }
    }

    pub fn merge(&mut self, o: &CiCell) {
        for (a, b) in [(&mut self.runs, &o.runs), (&mut self.jobs, &o.jobs)] {
            a.count += b.count;
            a.completed += b.completed;
            a.failed += b.failed;
        }
        self.run_duration.merge(&o.run_duration);
        self.queue.merge(&o.queue);
        self.job_duration.merge(&o.job_duration);
    }

    pub fn compact(self) -> Self {
        Self {
            run_duration: self.run_duration.compact(),
            queue: self.queue.compact(),
            job_duration: self.job_duration.compact(),
            ..self
        }
    }

    pub fn is_empty(&self) -> bool {
        self.runs.count == 0 && self.jobs.count == 0
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for c in [&self.runs, &self.jobs] {
            for n in [c.count, c.completed, c.failed] {
                put(&mut out, n);
            }
        }
        for s in [&self.run_duration, &self.queue, &self.job_duration] {
            s.encode(&mut out);
        }
        out
    }

    pub fn decode(mut b: &[u8]) -> Option<Self> {
        let b = &mut b;
        let runs = CiCounts { count: take(b)?, completed: take(b)?, failed: take(b)? };
        let jobs = CiCounts { count: take(b)?, completed: take(b)?, failed: take(b)? };
        let (run_duration, queue, job_duration) = (Sketch::decode(b)?, Sketch::decode(b)?, Sketch::decode(b)?);
        b.is_empty().then_some(Self { runs, run_duration, jobs, queue, job_duration })
    }
}

/// How long a cell's bucket is: an ISO week (keyed by its Monday) or a UTC
/// day. Week cells serve a window's whole weeks; day cells its whole days at
/// the edges and day series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grain {
    Week,
    Day,
}

impl Grain {
    /// The first day of the bucket holding `t`.
    pub fn start(self, t: Timestamp) -> NaiveDate {
        match self {
            Self::Week => week_of(t),
            Self::Day => t.date_naive(),
        }
    }
}

/// The pull request cells of `rows` for the weeks in `weeks` (Mondays), under
/// every scope: each row's merge facts in the week of its `merged_at`, its
/// opening facts in the week of its `created_at`. `rows` must hold every pull
/// request merged or opened in those weeks (of the scopes asked for); the
/// cells come compacted, empty ones left out. A store recomputes a cell with
/// this from the rows of the cell's week.
pub fn pull_cells(rows: &[PullMetricRow], weeks: &Range<NaiveDate>) -> BTreeMap<CellKey, PullCell> {
    pull_cells_by(Grain::Week, rows, weeks)
}

/// [`pull_cells`] by `grain`: the buckets starting in `span`.
pub fn pull_cells_by(grain: Grain, rows: &[PullMetricRow], span: &Range<NaiveDate>) -> BTreeMap<CellKey, PullCell> {
    let mut cells: BTreeMap<CellKey, PullCell> = BTreeMap::new();
    for row in rows {
        let scopes = Scope::of(&row.repo, row.author.as_deref());
        if let Some(m) = row.merged_at
            && span.contains(&grain.start(m))
        {
            for s in &scopes {
                cells.entry((s.clone(), grain.start(m))).or_default().add_merge(row, m);
            }
        }
        if span.contains(&grain.start(row.created_at)) {
            for s in &scopes {
                cells.entry((s.clone(), grain.start(row.created_at))).or_default().add_opening(row);
            }
        }
    }
    cells.into_iter().filter(|(_, c)| !c.is_empty()).map(|(k, c)| (k, c.compact())).collect()
}

/// The CI cells of `runs` and `jobs` for the weeks in `weeks`, under every
/// scope (a job's person is its run's actor), by `created_at` (a job without
/// one: `started_at`); compacted,
/// empty ones left out.
pub fn ci_cells(runs: &[RunMetricRow], jobs: &[JobMetricRow], weeks: &Range<NaiveDate>) -> BTreeMap<CellKey, CiCell> {
    ci_cells_by(Grain::Week, runs, jobs, weeks)
}

/// [`ci_cells`] by `grain`: the buckets starting in `span`.
pub fn ci_cells_by(
    grain: Grain,
    runs: &[RunMetricRow],
    jobs: &[JobMetricRow],
    span: &Range<NaiveDate>,
) -> BTreeMap<CellKey, CiCell> {
    let mut cells: BTreeMap<CellKey, CiCell> = BTreeMap::new();
    for run in runs.iter().filter(|r| span.contains(&grain.start(r.created_at))) {
        for s in Scope::of(&run.ci.repo, run.ci.actor.as_deref()) {
            cells.entry((s, grain.start(run.created_at))).or_default().add_run(run);
        }
    }
    for job in jobs {
        let Some(created) = job.created_at.or(job.started_at).filter(|c| span.contains(&grain.start(*c))) else {
            continue;
        };
        for s in Scope::of(&job.ci.repo, job.ci.actor.as_deref()) {
            cells.entry((s, grain.start(created))).or_default().add_job(job);
        }
    }
    cells.into_iter().filter(|(_, c)| !c.is_empty()).map(|(k, c)| (k, c.compact())).collect()
}

/// The merges of one week in one scope: each pull request merged in it as
/// its repository and exact `merged_at` (milliseconds), oldest first. DORA's
/// lead time pairs every merge with its repository's next successful
/// deployment, which no count or sketch can hold; these times are small
/// (a few bytes each, delta-encoded) and exact, so a window's merges, edges
/// included, are read from cells and filtered to the window's bounds.
/// Each repository's name is held once (a week has thousands of merges and
/// a few repositories).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MergeCell {
    /// The repositories with a merge, sorted, each once.
    repos: Vec<RepoName>,
    /// `(merged_at, index into repos)`, sorted: by time, then repository.
    merges: Vec<(Timestamp, u32)>,
}

impl MergeCell {
    /// The cell of these merges (in any order).
    pub fn of(merges: impl IntoIterator<Item = (RepoName, Timestamp)>) -> Self {
        let merges: Vec<(RepoName, Timestamp)> = merges.into_iter().collect();
        let repos: Vec<RepoName> =
            merges.iter().map(|(r, _)| r).collect::<std::collections::BTreeSet<_>>().into_iter().cloned().collect();
        let mut merges: Vec<(Timestamp, u32)> =
            merges.iter().map(|(r, t)| (*t, repos.binary_search(r).expect("listed above") as u32)).collect();
        merges.sort_unstable();
        Self { repos, merges }
    }

    /// The repositories with a merge in the cell, sorted.
    pub fn repos(&self) -> &[RepoName] {
        &self.repos
    }

    /// `(merged_at, index into [`repos`](Self::repos))` of each merge, oldest
    /// first (ties by repository).
    pub fn times(&self) -> &[(Timestamp, u32)] {
        &self.merges
    }

    /// `(repository, merged_at)` of each merge, oldest first.
    pub fn merges(&self) -> impl Iterator<Item = (&RepoName, Timestamp)> + '_ {
        self.merges.iter().map(|(t, i)| (&self.repos[*i as usize], *t))
    }

    pub fn len(&self) -> usize {
        self.merges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.merges.is_empty()
    }

    /// Add the merges of another cell (of the same scope and week).
    pub fn merge(&mut self, o: &MergeCell) {
        let all: Vec<(RepoName, Timestamp)> = self.merges().chain(o.merges()).map(|(r, t)| (r.clone(), t)).collect();
        *self = Self::of(all);
    }

    /// Tag 0; the repositories (sorted, each its length and bytes); the
    /// merges (sorted by time, then repository): the first time in
    /// milliseconds, then for each its repository's index and the delta from
    /// the one before. Equal multisets of merges encode to equal bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0];
        put(&mut out, self.repos.len() as u64);
        for r in &self.repos {
            put(&mut out, r.as_str().len() as u64);
            out.extend_from_slice(r.as_str().as_bytes());
        }
        put(&mut out, self.merges.len() as u64);
        let mut last = self.merges.first().map_or(0, |(t, _)| t.timestamp_millis());
        put(&mut out, zigzag(last));
        for (t, r) in &self.merges {
            let ms = t.timestamp_millis();
            put(&mut out, u64::from(*r));
            put(&mut out, (ms - last) as u64);
            last = ms;
        }
        out
    }

    pub fn decode(mut b: &[u8]) -> Option<Self> {
        let b = &mut b;
        let (&0, rest) = b.split_first()? else { return None };
        *b = rest;
        let n = usize::try_from(take(b)?).ok()?;
        let mut repos: Vec<RepoName> = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let len = usize::try_from(take(b)?).ok()?;
            let (name, rest) = (b.get(..len)?, b.get(len..)?);
            let repo = RepoName::parse(std::str::from_utf8(name).ok()?).ok()?;
            // Sorted and each once, as encoded.
            if repos.last().is_some_and(|last| *last >= repo) {
                return None;
            }
            repos.push(repo);
            *b = rest;
        }
        let count = usize::try_from(take(b)?).ok()?;
        let mut at = unzigzag(take(b)?);
        let mut merges = Vec::with_capacity(count.min(1 << 16));
        for _ in 0..count {
            let repo = u32::try_from(take(b)?).ok().filter(|r| (*r as usize) < repos.len())?;
            at = at.checked_add(i64::try_from(take(b)?).ok()?)?;
            merges.push((chrono::DateTime::from_timestamp_millis(at)?, repo));
        }
        b.is_empty().then_some(Self { repos, merges })
    }
}

/// The merge cells of `rows` for the weeks in `weeks` (by `merged_at`), under
/// every scope; empty ones left out. `rows` must hold every pull request
/// merged in those weeks (of the scopes asked for).
pub fn merge_cells(rows: &[PullMetricRow], weeks: &Range<NaiveDate>) -> BTreeMap<CellKey, MergeCell> {
    let mut cells: BTreeMap<CellKey, Vec<(RepoName, Timestamp)>> = BTreeMap::new();
    for row in rows {
        let Some(m) = row.merged_at.filter(|m| weeks.contains(&week_of(*m))) else { continue };
        for s in Scope::of(&row.repo, row.author.as_deref()) {
            cells.entry((s, week_of(m))).or_default().push((row.repo.clone(), m));
        }
    }
    cells.into_iter().map(|(k, merges)| (k, MergeCell::of(merges))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_cells_hold_each_merge_exactly_and_encode_by_content_only() {
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        let row = |repo: &str, author: Option<&str>, merged: Option<&str>| PullMetricRow {
            repo: RepoName::parse(repo).unwrap(),
            number: 1,
            author: author.map(str::to_owned),
            state: crate::domain::PrState::Merged,
            created_at: t("2030-03-01T00:00:00Z"),
            merged_at: merged.map(t),
            additions: None,
            deletions: None,
            first_review_at: None,
            changes_requested: 0,
        };
        // GIVEN merges in two weeks, two repositories, one at a sub-second time, and an unmerged one
        let rows = vec![
            row("acme/web", Some("ann"), Some("2030-03-06T10:00:00.250Z")),
            row("acme/api", Some("bob"), Some("2030-03-04T09:00:00Z")),
            row("acme/api", None, Some("2030-03-12T00:00:00Z")),
            row("acme/api", Some("ann"), None),
        ];
        let monday = |d: &str| d.parse::<NaiveDate>().unwrap();
        let cells = merge_cells(&rows, &(monday("2030-03-04")..monday("2030-03-18")));
        // THEN every scope holds its merges, oldest first, to the millisecond
        let all = &cells[&(Scope::All, monday("2030-03-04"))];
        let api = RepoName::parse("acme/api").unwrap();
        let web = RepoName::parse("acme/web").unwrap();
        let merges = |c: &MergeCell| c.merges().map(|(r, t)| (r.clone(), t)).collect::<Vec<_>>();
        assert_eq!(merges(all), [(api.clone(), t("2030-03-04T09:00:00Z")), (web, t("2030-03-06T10:00:00.250Z"))]);
        assert_eq!(merges(&cells[&(Scope::Author(None), monday("2030-03-11"))]), [(api, t("2030-03-12T00:00:00Z"))]);
        assert!(!cells.contains_key(&(Scope::Author(Some("ann".into())), monday("2030-03-11"))));
        assert_eq!(cells.len(), 5 + 3, "everything, each repository and each author, per week");
        // AND the stored form reads back equal, depends on the merges only, and refuses damage
        for c in cells.values() {
            let bytes = c.encode();
            assert_eq!(MergeCell::decode(&bytes).as_ref(), Some(c));
            let mut reversed = merges(c);
            reversed.reverse();
            assert_eq!(MergeCell::of(reversed).encode(), bytes);
            assert_eq!(MergeCell::decode(&bytes[..bytes.len() - 1]), None);
            assert_eq!(MergeCell::decode(&[bytes.as_slice(), &[0]].concat()), None);
        }
        assert_eq!(MergeCell::decode(&MergeCell::default().encode()), Some(MergeCell::default()));
        assert_eq!(MergeCell::decode(&[1, 0, 0, 0]), None, "an unknown form");
        // AND a merge naming a repository the cell does not list is refused
        let one = MergeCell::of([(RepoName::parse("acme/api").unwrap(), t("2030-03-04T09:00:00Z"))]);
        let mut bytes = one.encode();
        let at = bytes.len() - 2; // the last merge's repository index, before its delta
        assert_eq!(bytes[at], 0);
        bytes[at] = 1;
        assert_eq!(MergeCell::decode(&bytes), None, "index 1 of one repository");
    }

    fn nearest_rank(sorted: &[i64], p: u32) -> i64 {
        let rank = (p as usize * sorted.len()).div_ceil(100).max(1);
        sorted[rank - 1]
    }

    #[test]
    fn percentiles_at_once_equal_each_alone() {
        // GIVEN unsorted values (duplicates included), sorted ones, buckets and nothing
        let mut x = 7u64;
        let values: Vec<i64> = (0..5_000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 40) as i64 % 1_000
            })
            .collect();
        let mut sorted = values.clone();
        sorted.sort_unstable();
        let bucketed = Sketch::Exact(values.clone()).compact();
        for s in [Sketch::Exact(values), Sketch::Exact(sorted), bucketed, Sketch::default(), Sketch::Exact(vec![5])] {
            // THEN p50, p90, p95 at once are each one's answer
            let alone = [50, 90, 95].map(|p| s.clone().percentile(p));
            assert_eq!(s.percentiles([50, 90, 95]), alone, "{:?}", s.count());
            assert_eq!(s.percentiles([1, 100]), [1, 100].map(|p| s.clone().percentile(p)));
        }
    }

    #[test]
    fn bucketed_percentiles_are_within_alpha_of_nearest_rank() {
        // GIVEN values spread over seven orders of magnitude, zeros included
        let mut x = 12345u64;
        let mut values: Vec<i64> = (0..5_000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let v = (x >> 33) % 10_000_000;
                (v >> ((x >> 20) % 20)) as i64
            })
            .collect();
        let mut s = Sketch::default();
        values.iter().for_each(|&v| s.add(v));
        let mut s = s.compact();
        assert!(matches!(s, Sketch::Buckets { .. }), "5,000 values are bucketed");
        values.sort_unstable();
        for p in [1, 10, 50, 90, 95, 99, 100] {
            // THEN each percentile is within round(α × exact) of the exact one
            let exact = nearest_rank(&values, p);
            let got = s.percentile(p).unwrap();
            let bound = (ALPHA * exact as f64).round() as i64;
            assert!((got - exact).abs() <= bound, "p{p}: {got} vs {exact} (bound {bound})");
        }
    }

    #[test]
    fn small_values_and_small_sets_are_exact() {
        // GIVEN whole numbers below 50, bucketed THEN every percentile is exact
        let mut s = Sketch::Buckets { zeros: 0, offset: 0, counts: vec![] };
        let values: Vec<i64> = (0..300).map(|i| i % 50).collect();
        values.iter().for_each(|&v| s.add(v));
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for p in [1, 50, 90, 95, 100] {
            assert_eq!(s.percentile(p), Some(nearest_rank(&sorted, p)), "p{p}");
        }
        // GIVEN up to EXACT_MAX values THEN the stored form is the values
        let mut e = Sketch::default();
        [30, 10, 20, 40].iter().for_each(|&v| e.add(v));
        let mut e = e.compact();
        assert_eq!(e, Sketch::Exact(vec![10, 20, 30, 40]));
        assert_eq!(e.percentile(50), Some(20));
    }

    #[test]
    fn stored_form_depends_on_the_values_only() {
        // GIVEN the same 600 values added in two orders, in parts merged differently
        let values: Vec<i64> = (0..600).map(|i| (i * 7919) % 100_000).collect();
        let mut a = Sketch::default();
        values.iter().for_each(|&v| a.add(v));
        let (mut b1, mut b2) = (Sketch::default(), Sketch::default());
        values.iter().rev().take(200).for_each(|&v| b1.add(v));
        values.iter().rev().skip(200).for_each(|&v| b2.add(v));
        let mut b = b2.compact();
        b.merge(&b1.compact());
        // THEN both compact to the same thing, which survives encoding
        let (a, b) = (a.compact(), b.compact());
        assert_eq!(a, b);
        let mut bytes = Vec::new();
        a.encode(&mut bytes);
        assert_eq!(Sketch::decode(&mut bytes.as_slice()), Some(a));
    }

    #[test]
    fn cells_round_trip_and_reject_garbage() {
        let mut c = PullCell { merged: 3, opened: 2, unreviewed: 1, ..Default::default() };
        [5, 9, 100_000].iter().for_each(|&v| c.cycle.add(v));
        let c = c.compact();
        assert_eq!(PullCell::decode(&c.encode()), Some(c.clone()));
        let mut bytes = c.encode();
        bytes.push(0);
        assert_eq!(PullCell::decode(&bytes), None, "trailing bytes");
        assert_eq!(PullCell::decode(&[0xff]), None);
        assert_eq!(CiCell::decode(&CiCell::default().encode()), Some(CiCell::default()));
    }

    #[test]
    fn scopes_round_trip() {
        for s in [
            Scope::All,
            Scope::Repo(RepoName::parse("acme/api").unwrap()),
            Scope::Author(Some("ann".into())),
            Scope::Author(None),
        ] {
            assert_eq!(Scope::parse(&s.key()), Some(s.clone()));
        }
    }
}
