//! Metric rollups on DynamoDB: the cells of `read/rollup.rs` stored as items,
//! kept equal to a recomputation from the rows.
//!
//! Items (`shared/docs/dynamodb.md`):
//!
//! - a cell: `ROLLUP#{scope}` / `{family}#{monday}` (`P` pull requests, `C`
//!   CI, `M` merge times) or `{family}D#{day}` (a day's `P` and `C`), its
//!   stored form in `cell` (Binary, [`PullCell::encode`] /
//!   [`CiCell::encode`] / [`MergeCell::encode`]): one Query per scope reads a
//!   range of weeks or days; a person's `P` and `C` cells are day cells only
//!   ([`kept`]), their weeks merged when read;
//! - the scopes that have (had) cells: `ROLLUPS` / `{scope}`, for
//!   `EveryRepo` / `EveryAuthor`.
//!
//! Neither has an `entity` attribute: a replay's reset leaves them, and the
//! stream's records of the rows it drops empty the cells like any change.
//!
//! Upkeep is off the webhook's path: [`DynamoStore::mark_rollups`] takes a
//! batch of the table's changes (the stream's old and new images), finds the
//! cells the changed pull requests, runs and jobs count in before and after,
//! and marks them (`ROLLUP_MARKS` / `{time}#{random}`);
//! [`DynamoStore::settle_rollups`], on a schedule and one at a time,
//! recomputes the marked cells' days from the rows of those days, derives
//! the weeks from their days (and the merge cells from the stored ones and
//! the days' rows), writes the ones that differ and deletes the marks it
//! took: a day's rows are read once a settle, not once a stream batch.
//! [`rebuild_rollups`](crate::ports::MetricRollups::rebuild_rollups)
//! recomputes all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Range;

use anyhow::anyhow;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, WriteRequest};
use chrono::{NaiveDate, TimeDelta, TimeZone, Utc};

use super::DynamoStore;
use super::codec::*;
use super::ops::{Query, Range as Keys, Task, corrupt, delete_request, put_request, run_bounded};
use crate::domain::*;
use crate::ports::*;
use crate::read::rollup::{
    CellKey, CiCell, Grain, MergeCell, PullCell, Scope, ci_cells_by, merge_cells, pull_cells_by, week_of,
};

/// Which cells: pull requests', CI's, or the merge times (built from the
/// same rows as pull requests' and kept with them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Family {
    Pulls,
    Ci,
    Merges,
}

impl Family {
    fn tag(self) -> &'static str {
        match self {
            Self::Pulls => "P",
            Self::Ci => "C",
            Self::Merges => "M",
        }
    }
}

/// The registry partition of scopes with cells.
const SCOPES: &str = "ROLLUPS";
/// Reads and writes in flight at once.
const CONCURRENCY: usize = 16;
/// The partition of the rollup marks: the cells stream batches changed,
/// waiting for the next settle ([`DynamoStore::settle_rollups`]).
const MARKS: &str = "ROLLUP_MARKS";
/// A mark is settled once it is this old by its own time: the rows it
/// names have reached the time indexes the recomputation reads (GSIs are
/// eventually consistent), and a burst's marks settle together.
pub const SETTLE_AFTER: TimeDelta = TimeDelta::seconds(60);
/// Marks one settle takes at most, oldest first (the rest: the next settle).
const SETTLE_MAX_MARKS: usize = 2_000;
/// Days one settle recomputes at most, beyond its first mark's (a mark is
/// settled whole): a backlog is worked off over several settles.
const SETTLE_MAX_DAYS: usize = 31;
/// The lock a settle holds: one at a time.
const SETTLE_LOCK: &str = "rollups-settle";

/// A mark item: its sort key and the day cells it names.
type Mark = (String, Vec<(Family, NaiveDate, Scope)>);

/// A mark's entry for a day cell: `{P|C}{day}|{scope}` (`C2030-03-04|repo:o/r`).
fn mark_entry(family: Family, day: NaiveDate, scope: &Scope) -> String {
    format!("{}{day}|{}", family.tag(), scope.key())
}

/// The entries of a mark item, parsed.
fn mark_cells(mark: &Item) -> Result<Vec<(Family, NaiveDate, Scope)>, StoreError> {
    let Some(AttributeValue::Ss(cells)) = mark.get("cells") else {
        return Err(corrupt(anyhow!("a rollup mark without its cells")));
    };
    cells.iter().map(|e| parse_mark_entry(e).ok_or_else(|| corrupt(anyhow!("a rollup mark entry {e:?}")))).collect()
}

fn parse_mark_entry(entry: &str) -> Option<(Family, NaiveDate, Scope)> {
    let (cell, scope) = entry.split_once('|')?;
    let family = match cell.get(..1)? {
        "P" => Family::Pulls,
        "C" => Family::Ci,
        _ => return None,
    };
    Some((family, cell.get(1..)?.parse().ok()?, Scope::parse(scope)?))
}

fn cell_pk(scope: &Scope) -> String {
    format!("ROLLUP#{}", scope.key())
}

/// `{tag}#{monday}` for a week cell, `{tag}D#{day}` for a day cell.
fn cell_sk(family: Family, grain: Grain, start: NaiveDate) -> String {
    match grain {
        Grain::Week => format!("{}#{start}", family.tag()),
        Grain::Day => format!("{}D#{start}", family.tag()),
    }
}

fn start_of_sk(sk: &str) -> Option<NaiveDate> {
    sk.split_once('#')?.1.parse().ok()
}

/// One cell: what it counts, its grain, its first day and its scope.
type Touched = (Family, Grain, NaiveDate, Scope);

/// Cells to store, by item key (`pk`, `sk`): what they are and their encoded form.
type Cells = BTreeMap<(String, String), (Scope, String, Vec<u8>)>;

/// The attributes of an item that its cells depend on, by entity: a change
/// that leaves them equal leaves every cell as it was. A run that is not
/// completed before or after the change counts by its repository, actor and
/// creation alone (`CiCell::add_run`: its status, times and conclusion count
/// once it completes), so its `requested` → `in_progress` recomputes nothing.
fn facts_of(entity: &str, old: Option<&Item>, new: Option<&Item>) -> &'static [&'static str] {
    let completed =
        |i: Option<&Item>| i.and_then(|i| i.str("status")).as_deref() == Some(RunStatus::Completed.as_str());
    match entity {
        "workflow_run" if !completed(old) && !completed(new) => &["repo", "actor", "created_at"],
        "pull_request" => &[
            "repo",
            "author",
            "created_at",
            "merged_at",
            "additions",
            "deletions",
            "first_review_at",
            "changes_requested",
        ],
        "workflow_run" => &["repo", "actor", "created_at", "run_started_at", "updated_at", "status", "conclusion"],
        "workflow_job" => &["repo", "run_id", "created_at", "started_at", "completed_at", "status", "conclusion"],
        _ => &[],
    }
}

fn same_facts(old: Option<&Item>, new: Option<&Item>, names: &[&str]) -> bool {
    match (old, new) {
        (Some(o), Some(n)) => names.iter().all(|a| o.get(*a) == n.get(*a)),
        (None, None) => true,
        _ => false,
    }
}

fn repo_of(i: &Item) -> Result<RepoName, StoreError> {
    i.req_typed("repo").map_err(corrupt)
}

fn time_at(i: &Item, name: &str) -> Result<Option<Timestamp>, StoreError> {
    i.time(name).map_err(corrupt)
}

/// What a batch of changes asks for: cells, and the jobs whose person is
/// looked up (their run's actor) or whose run's actor changed.
#[derive(Default)]
struct Plan {
    cells: BTreeSet<Touched>,
    /// A job's time and repository, by its run.
    jobs: Vec<(i64, Timestamp, RepoName)>,
    /// Runs whose actor changed: the actors before and after.
    moved_runs: Vec<(i64, [Option<String>; 2])>,
    /// The actors the batch's images of a run name: a job whose run is
    /// dropped in the same batch counted under them too.
    run_actors: HashMap<i64, BTreeSet<Option<String>>>,
}

impl Plan {
    /// The cells a fact at `at` counts in: its day's and its week's (and,
    /// for pull requests, its week's merge cell) under each scope; no week
    /// cell for a person ([`kept`]).
    fn add(&mut self, family: Family, at: Timestamp, repo: &RepoName, person: Option<&str>) {
        for scope in Scope::of(repo, person) {
            self.add_day(family, at.date_naive(), scope);
        }
    }

    /// The cells a fact of `day` counts in under `scope`.
    fn add_day(&mut self, family: Family, day: NaiveDate, scope: Scope) {
        let week = week_of_day(day);
        if family == Family::Pulls {
            self.cells.insert((Family::Merges, Grain::Week, week, scope.clone()));
        }
        if kept(Grain::Week, &scope) {
            self.cells.insert((family, Grain::Week, week, scope.clone()));
        }
        self.cells.insert((family, Grain::Day, day, scope));
    }

    fn change(&mut self, old: Option<&Item>, new: Option<&Item>) -> Result<(), StoreError> {
        let Some(entity) = new.or(old).and_then(|i| i.str("entity")) else { return Ok(()) };
        let names = facts_of(&entity, old, new);
        if names.is_empty() || same_facts(old, new, names) {
            return Ok(());
        }
        for image in [old, new].into_iter().flatten() {
            let repo = repo_of(image)?;
            match entity.as_str() {
                "pull_request" => {
                    let author = image.str("author");
                    for at in [time_at(image, "created_at")?, time_at(image, "merged_at")?].into_iter().flatten() {
                        self.add(Family::Pulls, at, &repo, author.as_deref());
                    }
                }
                "workflow_run" => {
                    if let Some(at) = time_at(image, "created_at")? {
                        self.add(Family::Ci, at, &repo, image.str("actor").as_deref());
                    }
                }
                _ => {
                    let run = image.num("run_id").ok_or_else(|| corrupt(anyhow!("a workflow job without run_id")))?;
                    if let Some(at) = time_at(image, "created_at")?.or(time_at(image, "started_at")?) {
                        self.jobs.push((run, at, repo));
                    }
                }
            }
        }
        if entity == "workflow_run" {
            for image in [old, new].into_iter().flatten() {
                if let Some(id) = image.num("id") {
                    self.run_actors.entry(id).or_default().insert(image.str("actor"));
                }
            }
            let actors = [old.and_then(|i| i.str("actor")), new.and_then(|i| i.str("actor"))];
            if actors[0] != actors[1]
                && let Some(id) = new.or(old).and_then(|i| i.num("id"))
            {
                self.moved_runs.push((id, actors));
            }
        }
        Ok(())
    }
}

/// Which cells are stored: every day cell, and the week cells of everything
/// and of each repository. A person's week cells are not: read, they are the
/// merge of the person's day cells ([`DynamoStore::stored_weeks`]), so the
/// upkeep never needs a week's rows for them.
fn kept(grain: Grain, scope: &Scope) -> bool {
    grain == Grain::Day || !matches!(scope, Scope::Author(_))
}

/// A pull request or CI cell: what deriving a week from its days needs.
pub(super) trait DayCell: Default + Sized {
    fn merge(&mut self, other: &Self);
    fn compact(self) -> Self;
    fn is_empty(&self) -> bool;
    fn encode(&self) -> Vec<u8>;
    fn decode(bytes: &[u8]) -> Option<Self>;
    /// About the read units its day's rows cost to read again: a pull
    /// request item each (opened or merged), a run partition each.
    fn rows(&self) -> u64;
}

/// [`DayCell`] by the cell's own methods; `rows` from the cell `$c`.
macro_rules! day_cell {
    ($cell:ty, |$c:ident| $rows:expr) => {
        impl DayCell for $cell {
            fn merge(&mut self, other: &Self) {
                <$cell>::merge(self, other)
            }
            fn compact(self) -> Self {
                <$cell>::compact(self)
            }
            fn is_empty(&self) -> bool {
                <$cell>::is_empty(self)
            }
            fn encode(&self) -> Vec<u8> {
                <$cell>::encode(self)
            }
            fn decode(bytes: &[u8]) -> Option<Self> {
                <$cell>::decode(bytes)
            }
            fn rows(&self) -> u64 {
                let $c = self;
                $rows
            }
        }
    };
}

day_cell!(PullCell, |c| c.opened + c.merged);
day_cell!(CiCell, |c| c.runs.count);

/// Week cells as the merge of their day cells, by (scope, Monday); empty
/// ones left out. `compact` depends on the multiset of values only, so this
/// is byte for byte the week recomputed from its rows.
fn weeks_of_days<'a, C: DayCell + 'a>(days: impl IntoIterator<Item = (&'a CellKey, &'a C)>) -> BTreeMap<CellKey, C> {
    let mut weeks: BTreeMap<CellKey, C> = BTreeMap::new();
    for ((scope, day), cell) in days {
        weeks.entry((scope.clone(), week_of_day(*day))).or_default().merge(cell);
    }
    weeks.into_iter().filter(|(_, c)| !c.is_empty()).map(|(k, c)| (k, c.compact())).collect()
}

/// What one read of a span's rows costs before any row: its two sharded
/// index Queries (runs' and jobs', or created and merged pull requests'),
/// half a read unit per shard each.
const SPAN_READ: u64 = key::SHARDS as u64;

/// The days to read as ranges, one read of rows each: consecutive days as
/// one, and two ranges of a week or of two weeks as one where the days
/// between cost fewer read units (`cost`, estimated from their stored cells)
/// than a read of their own ([`SPAN_READ`]).
fn spans(days: &BTreeSet<NaiveDate>, cost: impl Fn(NaiveDate) -> u64) -> Vec<Range<NaiveDate>> {
    let mut out: Vec<Range<NaiveDate>> = Vec::new();
    for &d in days {
        let joined = |r: &Range<NaiveDate>| {
            r.end == d
                || (d - r.end <= TimeDelta::days(6)
                    && r.end.iter_days().take_while(|g| *g < d).map(&cost).sum::<u64>() < SPAN_READ)
        };
        match out.last_mut() {
            Some(r) if joined(r) => r.end = d + TimeDelta::days(1),
            _ => out.push(d..d + TimeDelta::days(1)),
        }
    }
    out
}

/// The days of the ranges.
fn days_in(spans: &[Range<NaiveDate>]) -> BTreeSet<NaiveDate> {
    spans.iter().flat_map(|r| r.start.iter_days().take_while(|d| *d < r.end)).collect()
}

/// The stored day cells of touched week cells, decoded, by (scope, week).
type WeekDays<C> = HashMap<(Scope, NaiveDate), Vec<(NaiveDate, C)>>;

fn week_of_day(d: NaiveDate) -> NaiveDate {
    week_of(midnight(d))
}

/// About the read units the rows of `day` cost, from its stored cell of
/// everything; a day whose week was not read counts as too dear to join.
fn day_rows<C: DayCell>(stored: &WeekDays<C>, day: NaiveDate) -> u64 {
    match stored.get(&(Scope::All, week_of_day(day))) {
        Some(days) => days.iter().find(|(d, _)| *d == day).map_or(0, |(_, c)| c.rows()),
        None => SPAN_READ,
    }
}

/// The `cells` of `family` (pull requests or CI) once `days` are recomputed
/// (`recomputed`, every scope's cells of those days): a day cell as
/// recomputed; a week cell (everything's, a repository's) as the merge of its
/// seven day cells, the days not recomputed as stored (`stored`). Into `out`,
/// encoded; an empty cell is left out.
fn derive<C: DayCell>(
    family: Family,
    cells: &BTreeSet<Touched>,
    days: &BTreeSet<NaiveDate>,
    recomputed: &BTreeMap<CellKey, C>,
    stored: &WeekDays<C>,
    out: &mut HashMap<Touched, Vec<u8>>,
) {
    for cell @ (_, grain, start, scope) in cells.iter().filter(|(f, ..)| *f == family) {
        let sum = match grain {
            Grain::Day => recomputed.get(&(scope.clone(), *start)).map(DayCell::encode),
            Grain::Week => {
                let mut sum = C::default();
                let kept = stored.get(&(scope.clone(), *start)).into_iter().flatten();
                for (_, c) in kept.filter(|(d, _)| !days.contains(d)) {
                    sum.merge(c);
                }
                for day in start.iter_days().take(7).filter(|d| days.contains(d)) {
                    if let Some(c) = recomputed.get(&(scope.clone(), day)) {
                        sum.merge(c);
                    }
                }
                (!sum.is_empty()).then(|| sum.compact().encode())
            }
        };
        if let Some(bytes) = sum {
            out.insert(cell.clone(), bytes);
        }
    }
}

/// The days whose cells of `family` a plan recomputes (merge cells come
/// with pull requests').
fn touched_days(cells: &BTreeSet<Touched>, family: Family) -> BTreeSet<NaiveDate> {
    cells.iter().filter(|(f, g, ..)| *f == family && *g == Grain::Day).map(|(_, _, d, _)| *d).collect()
}

/// The rows of the days of `span`.
fn window_of(span: &Range<NaiveDate>) -> MetricsFilter {
    MetricsFilter::window(midnight(span.start), midnight(span.end))
}

fn midnight(d: NaiveDate) -> Timestamp {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

/// Every week a store can hold: rebuild reads all rows at once.
fn all_weeks() -> Range<NaiveDate> {
    let first = week_of(Utc.with_ymd_and_hms(1970, 1, 5, 0, 0, 0).single().expect("a date"));
    first..week_of(Utc.with_ymd_and_hms(2200, 1, 1, 0, 0, 0).single().expect("a date"))
}

/// What one settle did: the marks it took, the refresh of their cells, and
/// the marks it dropped because they do not parse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupsSettled {
    pub marks: usize,
    pub refreshed: RollupsRefreshed,
    pub dropped: usize,
}

/// What one refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RollupsRefreshed {
    /// Cells recomputed (the changes' old and new cells).
    pub recomputed: usize,
    /// Cell items written (changed or new).
    pub written: usize,
    /// Cell items deleted (now empty).
    pub deleted: usize,
}

impl DynamoStore {
    /// The cells a batch of the table's changes counts in, before and
    /// after, each change the item's image before and after (None: absent),
    /// as the table's stream reports them (NEW_AND_OLD_IMAGES). Changes of
    /// items other than pull requests, runs and jobs, and changes that leave
    /// a cell's facts as they were, count in none.
    async fn plan<'a>(
        &self,
        changes: impl IntoIterator<
            Item = (Option<&'a HashMap<String, AttributeValue>>, Option<&'a HashMap<String, AttributeValue>>),
        >,
    ) -> Result<Plan, StoreError> {
        let mut plan = Plan::default();
        for (old, new) in changes {
            plan.change(old, new)?;
        }
        self.plan_jobs(&mut plan).await?;
        Ok(plan)
    }

    /// Record which cells a batch of the table's changes counts in (before
    /// and after), for the next [`settle_rollups`](Self::settle_rollups):
    /// one mark item (`ROLLUP_MARKS` / `{now}#{random}`) holding the
    /// batch's cells by day and scope, none when it changes no cell. A
    /// retried batch writes another mark of the same cells: settling it
    /// again changes nothing. Returns the cells marked.
    pub async fn mark_rollups<'a>(
        &self,
        changes: impl IntoIterator<
            Item = (Option<&'a HashMap<String, AttributeValue>>, Option<&'a HashMap<String, AttributeValue>>),
        >,
        now: Timestamp,
    ) -> Result<usize, StoreError> {
        let plan = self.plan(changes).await?;
        let entries: BTreeSet<String> = plan
            .cells
            .iter()
            .filter(|(_, grain, ..)| *grain == Grain::Day)
            .map(|(family, _, day, scope)| mark_entry(*family, *day, scope))
            .collect();
        if entries.is_empty() {
            return Ok(0);
        }
        let marked = entries.len();
        let mut item = key_of(MARKS, format!("{}#{:016x}", ts(&now), fastrand::u64(..)));
        item.insert("cells".into(), AttributeValue::Ss(entries.into_iter().collect()));
        self.batch_write(vec![put_request(item)?]).await?;
        Ok(marked)
    }

    /// Recompute the cells named by the marks at least [`SETTLE_AFTER`]
    /// old at `at` ([`recompute`](Self::recompute)), then delete those
    /// marks: a mark written meanwhile stays for the next settle. One settle
    /// at a time (a lock, `owner` holding it for `hold` at most, the
    /// invocation's time left, so a settle cut short frees it): None when
    /// another holds it. So a cell's week, derived from its stored days,
    /// never misses a day another settle was recomputing, and a day's rows
    /// are read once per settle, not once per stream batch. Oldest first,
    /// at most [`SETTLE_MAX_MARKS`] marks and (beyond the first mark)
    /// [`SETTLE_MAX_DAYS`] days a call; a mark that does not parse is logged
    /// and deleted (`dropped`), not left to stop every settle after it.
    pub async fn settle_rollups(
        &self,
        owner: &str,
        at: Timestamp,
        hold: TimeDelta,
    ) -> Result<Option<RollupsSettled>, StoreError> {
        let before = Keys::Below(ts(&(at - SETTLE_AFTER)));
        let q = Query::table(MARKS, before);
        let (mut marks, mut days): (Vec<Mark>, _) = (Vec::new(), BTreeSet::new());
        let mut unreadable: Vec<String> = Vec::new();
        let mut missing_key = None;
        self.query_each(&q, |i| {
            let sk = match i.req_str("sk") {
                Ok(sk) => sk,
                Err(e) => {
                    missing_key = Some(corrupt(e));
                    return false;
                }
            };
            let cells = match mark_cells(&i) {
                Ok(cells) => cells,
                Err(e) => {
                    // Only a bug or a hand edit writes one; it must not stop every settle after it.
                    tracing::warn!(mark = %sk, error = ?e, "a rollup mark that does not parse is dropped; rebuild_rollups repairs what it named");
                    unreadable.push(sk);
                    return true;
                }
            };
            let new_days: BTreeSet<_> = cells.iter().map(|(_, day, _)| *day).filter(|d| !days.contains(d)).collect();
            if !marks.is_empty() && days.len() + new_days.len() > SETTLE_MAX_DAYS {
                return false;
            }
            days.extend(new_days);
            marks.push((sk, cells));
            marks.len() < SETTLE_MAX_MARKS
        })
        .await?;
        if let Some(e) = missing_key {
            return Err(e);
        }
        if marks.is_empty() && unreadable.is_empty() {
            return Ok(Some(RollupsSettled::default()));
        }
        if !self.try_lock(SETTLE_LOCK, owner, Utc::now(), hold).await? {
            return Ok(None);
        }
        let settled = self.settle(&marks, &unreadable).await;
        let released = self.release_lock(SETTLE_LOCK, owner).await;
        let refreshed = settled?;
        released?;
        Ok(Some(RollupsSettled { marks: marks.len(), dropped: unreadable.len(), refreshed }))
    }

    /// Recompute the cells `marks` (their keys and cells) name, then delete
    /// them and the `unreadable` marks (keys only).
    async fn settle(&self, marks: &[Mark], unreadable: &[String]) -> Result<RollupsRefreshed, StoreError> {
        let mut plan = Plan::default();
        for (family, day, scope) in marks.iter().flat_map(|(_, cells)| cells) {
            plan.add_day(*family, *day, scope.clone());
        }
        let keys = marks
            .iter()
            .map(|(sk, _)| sk)
            .chain(unreadable)
            .map(|sk| delete_request(key_of(MARKS, sk.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        let refreshed = self.recompute(&plan.cells).await?;
        self.batch_write(keys).await?;
        Ok(refreshed)
    }

    /// Keep `cells` equal to a recomputation: their days from the rows of
    /// those days (one read per span of days, [`spans`], and family), a
    /// week of everything or of a repository as the merge of its seven day
    /// cells, a merge cell as its stored merges outside those days plus the
    /// days' merges; each is written where it differs from the stored one,
    /// and a cell left empty is deleted. Idempotent: the same cells again
    /// write nothing new.
    async fn recompute(&self, cells: &BTreeSet<Touched>) -> Result<RollupsRefreshed, StoreError> {
        if cells.is_empty() {
            return Ok(RollupsRefreshed::default());
        }
        // The stored cells: the day cells of each touched week (one Query per
        // week and scope), then the other touched cells by key (a touched day
        // of a queried week is known from its week's Query, found or not).
        let mut stored: HashMap<(String, String), Vec<u8>> = HashMap::new();
        let pull_weeks = self.week_days::<PullCell>(Family::Pulls, cells, &mut stored).await?;
        let ci_weeks = self.week_days::<CiCell>(Family::Ci, cells, &mut stored).await?;
        let queried =
            |(f, g, d, s): &Touched| *g == Grain::Day && cells.contains(&(*f, Grain::Week, week_of_day(*d), s.clone()));
        let keys: Vec<Item> =
            cells.iter().filter(|c| !queried(c)).map(|(f, g, d, s)| key_of(cell_pk(s), cell_sk(*f, *g, *d))).collect();
        for i in self.batch_get(keys).await? {
            stored.insert((i.req_str("pk").map_err(corrupt)?, i.req_str("sk").map_err(corrupt)?), bytes_of(&i)?);
        }
        let mut computed: HashMap<Touched, Vec<u8>> = HashMap::new();
        // Pull requests: the touched days from their rows, then the weeks
        // from their days and the merge cells from the days' merges.
        let stored_days = pull_weeks;
        let read = spans(&touched_days(cells, Family::Pulls), |d| day_rows(&stored_days, d));
        let days = days_in(&read);
        let (mut pull_days, mut day_merges) = (BTreeMap::new(), BTreeMap::<CellKey, Vec<(RepoName, Timestamp)>>::new());
        for span in read {
            let rows = self.pull_rows(&window_of(&span), false).await?;
            pull_days.extend(pull_cells_by(Grain::Day, &rows, &span));
            for row in &rows {
                let Some(m) = row.merged_at.filter(|m| span.contains(&m.date_naive())) else { continue };
                for scope in Scope::of(&row.repo, row.author.as_deref()) {
                    day_merges.entry((scope, week_of(m))).or_default().push((row.repo.clone(), m));
                }
            }
        }
        derive(Family::Pulls, cells, &days, &pull_days, &stored_days, &mut computed);
        for cell in cells.iter().filter(|(f, ..)| *f == Family::Merges) {
            let (_, grain, week, scope) = cell;
            let mut merges = match stored.get(&(cell_pk(scope), cell_sk(Family::Merges, *grain, *week))) {
                Some(bytes) => MergeCell::decode(bytes)
                    .ok_or_else(|| corrupt(anyhow!("the merge cell {} / {week} does not decode", cell_pk(scope))))?
                    .merges()
                    .filter(|(_, at)| !days.contains(&at.date_naive()))
                    .map(|(repo, at)| (repo.clone(), at))
                    .collect(),
                None => Vec::new(),
            };
            merges.extend(day_merges.remove(&(scope.clone(), *week)).unwrap_or_default());
            if !merges.is_empty() {
                computed.insert(cell.clone(), MergeCell::of(merges).encode());
            }
        }
        // CI: the touched days from their runs and jobs, the weeks from their days.
        let stored_days = ci_weeks;
        let read = spans(&touched_days(cells, Family::Ci), |d| day_rows(&stored_days, d));
        let days = days_in(&read);
        let mut ci_days = BTreeMap::new();
        for span in read {
            let (runs, jobs) = self.ci_rows(&window_of(&span)).await?;
            ci_days.extend(ci_cells_by(Grain::Day, &runs, &jobs, &span));
        }
        derive(Family::Ci, cells, &days, &ci_days, &stored_days, &mut computed);
        let mut done = RollupsRefreshed { recomputed: cells.len(), ..Default::default() };
        let mut writes = Vec::new();
        for cell in cells {
            let (family, grain, start, scope) = cell;
            let (pk, sk) = (cell_pk(scope), cell_sk(*family, *grain, *start));
            let now = computed.remove(cell);
            match (stored.get(&(pk.clone(), sk.clone())), now) {
                (Some(before), Some(after)) if *before == after => {}
                (_, Some(after)) => {
                    self.register_scope(scope).await?;
                    writes.push(put_request(cell_item(scope, sk, after))?);
                    done.written += 1;
                }
                (Some(_), None) => {
                    writes.push(delete_request(key_of(pk, sk))?);
                    done.deleted += 1;
                }
                (None, None) => {}
            }
        }
        self.batch_write(writes).await?;
        Ok(done)
    }

    /// The jobs of the plan counted under their run's actor, and the jobs of
    /// runs whose actor changed counted under both.
    async fn plan_jobs(&self, plan: &mut Plan) -> Result<(), StoreError> {
        if !plan.jobs.is_empty() {
            let keys = plan.jobs.iter().map(|(run, _, _)| key_of(key::run(*run), key::ONE)).collect();
            let actors: HashMap<i64, String> =
                self.batch_get(keys).await?.iter().filter_map(|r| Some((r.num("id")?, r.str("actor")?))).collect();
            for (run, at, repo) in std::mem::take(&mut plan.jobs) {
                let mut people = plan.run_actors.get(&run).cloned().unwrap_or_default();
                people.insert(actors.get(&run).cloned());
                for person in people {
                    plan.add(Family::Ci, at, &repo, person.as_deref());
                }
            }
        }
        for (run, actors) in std::mem::take(&mut plan.moved_runs) {
            for job in self.query_all(&Query::table(key::run(run), Keys::Prefix(key::JOB_PREFIX.into()))).await? {
                let at = time_at(&job, "created_at")?.or(time_at(&job, "started_at")?);
                let (Some(at), repo) = (at, repo_of(&job)?) else { continue };
                for actor in &actors {
                    plan.add(Family::Ci, at, &repo, actor.as_deref());
                }
            }
        }
        Ok(())
    }

    /// The stored day cells of every week cell of `family` in `cells` (one
    /// Query per scope and week, strongly consistent): what derives the week
    /// from its days, and what tells how many rows a day holds. Each cell's
    /// encoding goes to `raw` too, by key.
    async fn week_days<C: DayCell>(
        &self,
        family: Family,
        cells: &BTreeSet<Touched>,
        raw: &mut HashMap<(String, String), Vec<u8>>,
    ) -> Result<WeekDays<C>, StoreError> {
        let weeks: Vec<(Scope, NaiveDate)> = cells
            .iter()
            .filter(|(f, g, ..)| *f == family && *g == Grain::Week)
            .map(|(_, _, week, scope)| (scope.clone(), *week))
            .collect();
        let reads = weeks
            .iter()
            .map(|(scope, week)| {
                let range = Keys::Between(
                    cell_sk(family, Grain::Day, *week),
                    cell_sk(family, Grain::Day, *week + TimeDelta::days(6)),
                );
                let q = Query::table(cell_pk(scope), range);
                Box::pin(async move { self.query_all(&q).await }) as Task<'_, Result<Vec<Item>, StoreError>>
            })
            .collect();
        let mut out = HashMap::new();
        for (key, items) in weeks.into_iter().zip(run_bounded(reads, CONCURRENCY).await) {
            let mut days = Vec::new();
            for i in items? {
                let sk = i.req_str("sk").map_err(corrupt)?;
                let day =
                    start_of_sk(&sk).ok_or_else(|| corrupt(anyhow!("a rollup cell key without a date: {sk:?}")))?;
                let bytes = bytes_of(&i)?;
                let cell = C::decode(&bytes)
                    .ok_or_else(|| corrupt(anyhow!("the rollup cell {} / {sk} does not decode", cell_pk(&key.0))))?;
                days.push((day, cell));
                raw.insert((cell_pk(&key.0), sk), bytes);
            }
            out.insert(key, days);
        }
        Ok(out)
    }

    /// Every non-empty cell the rows of `source` give in the weeks of
    /// `span`, week cells and the day cells of their days (pull requests give
    /// their cells and the merge cells), encoded, recomputed from the rows
    /// (the metrics service's reads, once for all of them; without the pull
    /// requests open since before the span, which no cell of it counts, and
    /// runs with their jobs read a partition at a time).
    async fn compute(
        &self,
        source: Family,
        span: &Range<NaiveDate>,
    ) -> Result<Vec<(Family, Grain, CellKey, Vec<u8>)>, StoreError> {
        let f = window_of(span);
        let mut out = Vec::new();
        match source {
            Family::Pulls | Family::Merges => {
                let rows = self.pull_rows(&f, false).await?;
                for grain in [Grain::Week, Grain::Day] {
                    let cells = pull_cells_by(grain, &rows, span).into_iter().filter(|((s, _), _)| kept(grain, s));
                    out.extend(cells.map(|(k, c)| (Family::Pulls, grain, k, c.encode())));
                }
                let merges = merge_cells(&rows, span);
                out.extend(merges.into_iter().map(|(k, c)| (Family::Merges, Grain::Week, k, c.encode())));
            }
            Family::Ci => {
                let (runs, jobs) = self.ci_rows(&f).await?;
                for grain in [Grain::Week, Grain::Day] {
                    let cells = ci_cells_by(grain, &runs, &jobs, span).into_iter().filter(|((s, _), _)| kept(grain, s));
                    out.extend(cells.map(|(k, c)| (Family::Ci, grain, k, c.encode())));
                }
            }
        }
        Ok(out)
    }

    async fn register_scope(&self, scope: &Scope) -> Result<(), StoreError> {
        self.register_in(SCOPES, scope.key(), &[("kind", "rollup_scope")]).await
    }

    /// The scopes with cells whose key begins with `prefix` (`repo:`, `author:`).
    async fn scopes_with_cells(&self, prefix: &str) -> Result<Vec<Scope>, StoreError> {
        let range = if prefix.is_empty() { Keys::All } else { Keys::Prefix(prefix.into()) };
        let items = self.query_all(&Query::table(SCOPES, range)).await?;
        items
            .iter()
            .map(|i| {
                let sk = i.req_str("sk").map_err(corrupt)?;
                Scope::parse(&sk).ok_or_else(|| corrupt(anyhow!("a rollup scope that does not parse: {sk:?}")))
            })
            .collect()
    }

    /// The stored cells of `family` and `grain` for `scopes` starting in
    /// `span`, encoded: one Query per scope.
    pub(super) async fn stored_cells(
        &self,
        family: Family,
        grain: Grain,
        scopes: &CellScopes,
        span: &Range<NaiveDate>,
    ) -> Result<Vec<(CellKey, Vec<u8>)>, StoreError> {
        if span.start >= span.end {
            return Ok(Vec::new());
        }
        let list: Vec<Scope> = match scopes {
            CellScopes::All => vec![Scope::All],
            CellScopes::Repo(r) => vec![Scope::Repo(self.canonical(r).await?)],
            CellScopes::Authors(a) => {
                a.iter().cloned().map(Scope::Author).collect::<BTreeSet<_>>().into_iter().collect()
            }
            CellScopes::EveryRepo => self.scopes_with_cells("repo:").await?,
            CellScopes::EveryAuthor => self.scopes_with_cells("author:").await?,
        };
        let range =
            Keys::Between(cell_sk(family, grain, span.start), cell_sk(family, grain, span.end - TimeDelta::days(1)));
        let reads = list
            .iter()
            .map(|s| {
                let q = Query::table(cell_pk(s), range.clone());
                Box::pin(async move { self.query_all(&q).await }) as Task<'_, Result<Vec<Item>, StoreError>>
            })
            .collect();
        let mut out = Vec::new();
        for (scope, items) in list.iter().zip(run_bounded(reads, CONCURRENCY).await) {
            for i in items? {
                let sk = i.req_str("sk").map_err(corrupt)?;
                let start =
                    start_of_sk(&sk).ok_or_else(|| corrupt(anyhow!("a rollup cell key without a date: {sk:?}")))?;
                out.push(((scope.clone(), start), bytes_of(&i)?));
            }
        }
        Ok(out)
    }

    /// The stored cells of `family` and `grain`, decoded with `decode`
    /// (`PullCell::decode`, `CiCell::decode`, `MergeCell::decode`).
    pub(super) async fn stored_decoded<C>(
        &self,
        family: Family,
        grain: Grain,
        scopes: &CellScopes,
        span: &Range<NaiveDate>,
        decode: fn(&[u8]) -> Option<C>,
    ) -> Result<Vec<(CellKey, C)>, StoreError> {
        let cells = self.stored_cells(family, grain, scopes, span).await?;
        cells
            .into_iter()
            .map(|((scope, start), bytes)| match decode(&bytes) {
                Some(cell) => Ok(((scope, start), cell)),
                None => Err(corrupt(anyhow!(
                    "the rollup cell {} / {} does not decode",
                    cell_pk(&scope),
                    cell_sk(family, grain, start)
                ))),
            })
            .collect()
    }

    /// The week cells of `family` (pull requests or CI) for `scopes` in
    /// `weeks`: stored for everything and repositories; a person's, which are
    /// not stored ([`kept`]), merged from their day cells (one Query per person
    /// of the weeks' day cells).
    pub(super) async fn stored_weeks<C: DayCell>(
        &self,
        family: Family,
        scopes: &CellScopes,
        weeks: &Range<NaiveDate>,
    ) -> Result<Vec<(CellKey, C)>, StoreError> {
        match scopes {
            CellScopes::Authors(_) | CellScopes::EveryAuthor => {
                let days = self.stored_decoded(family, Grain::Day, scopes, weeks, C::decode).await?;
                Ok(weeks_of_days(days.iter().map(|(k, c)| (k, c))).into_iter().collect())
            }
            _ => self.stored_decoded(family, Grain::Week, scopes, weeks, C::decode).await,
        }
    }

    /// Recompute every cell from all rows and write the ones that differ;
    /// delete stored cells that no row gives any more.
    pub(super) async fn rebuild_cells(&self) -> Result<(), StoreError> {
        let weeks = all_weeks();
        let mut computed: Cells = BTreeMap::new();
        for source in [Family::Pulls, Family::Ci] {
            for (family, grain, (scope, start), bytes) in self.compute(source, &weeks).await? {
                let sk = cell_sk(family, grain, start);
                computed.insert((cell_pk(&scope), sk.clone()), (scope, sk, bytes));
            }
        }
        self.write_cells(computed).await
    }

    /// Write the merge cells the pull requests give where they are not
    /// stored as they are; other cells are left alone. An upgrade step for a
    /// table whose cells predate merge cells (their upkeep keeps them after).
    /// Returns how many were written.
    pub(super) async fn fill_merge_cells(&self) -> Result<u64, StoreError> {
        let wanted: Vec<(Scope, String, Vec<u8>)> = self
            .compute(Family::Pulls, &all_weeks())
            .await?
            .into_iter()
            .filter(|(f, ..)| *f == Family::Merges)
            .map(|(_, grain, (scope, week), bytes)| (scope, cell_sk(Family::Merges, grain, week), bytes))
            .collect();
        let keys = wanted.iter().map(|(s, sk, _)| key_of(cell_pk(s), sk.clone())).collect();
        let mut stored: HashMap<(String, String), Vec<u8>> = HashMap::new();
        for i in self.batch_get(keys).await? {
            stored.insert((i.req_str("pk").map_err(corrupt)?, i.req_str("sk").map_err(corrupt)?), bytes_of(&i)?);
        }
        let mut writes = Vec::new();
        for (scope, sk, bytes) in wanted {
            if stored.get(&(cell_pk(&scope), sk.clone())) != Some(&bytes) {
                self.register_scope(&scope).await?;
                writes.push(put_request(cell_item(&scope, sk, bytes))?);
            }
        }
        let written = writes.len() as u64;
        self.batch_write(writes).await?;
        Ok(written)
    }

    /// An upgrade step for a table whose person cells were week cells (a
    /// person's day cells are stored now, their weeks merged from them when
    /// read): if a person's week cell is stored, rebuild every cell, which
    /// writes the day cells and deletes those. True if it rebuilt.
    pub(super) async fn person_cells_by_day(&self) -> Result<bool, StoreError> {
        for scope in self.scopes_with_cells("author:").await? {
            for family in [Family::Pulls, Family::Ci] {
                let mut found = false;
                let q = Query { page: 1, ..Query::table(cell_pk(&scope), Keys::Prefix(format!("{}#", family.tag()))) };
                self.query_each(&q, |_| {
                    found = true;
                    false
                })
                .await?;
                if found {
                    self.rebuild_cells().await?;
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Make the stored cells exactly `cells` (by key): puts where they
    /// differ, deletes where a stored cell is not among them.
    async fn write_cells(&self, mut cells: Cells) -> Result<(), StoreError> {
        let mut scopes: BTreeSet<Scope> = self.scopes_with_cells("").await?.into_iter().collect();
        scopes.insert(Scope::All);
        let mut writes: Vec<WriteRequest> = Vec::new();
        for scope in &scopes {
            for i in self.query_all(&Query::table(cell_pk(scope), Keys::All)).await? {
                let key = (i.req_str("pk").map_err(corrupt)?, i.req_str("sk").map_err(corrupt)?);
                match cells.get(&key) {
                    Some((.., bytes)) if *bytes == bytes_of(&i)? => {
                        cells.remove(&key);
                    }
                    Some(_) => {}
                    None => writes.push(delete_request(key_of(key.0, key.1))?),
                }
            }
        }
        for (scope, sk, bytes) in cells.into_values() {
            self.register_scope(&scope).await?;
            writes.push(put_request(cell_item(&scope, sk, bytes))?);
        }
        self.batch_write(writes).await
    }

    /// Store cells as they are given, without reading rows: a bulk load of
    /// cells computed elsewhere with the same pure builders (the rollup
    /// benchmark). Stored cells not given are deleted.
    pub async fn load_rollups(&self, loaded: LoadedCells) -> Result<(), StoreError> {
        let mut cells = BTreeMap::new();
        let mut put = |family: Family, grain: Grain, (scope, start): CellKey, bytes: Vec<u8>| {
            let sk = cell_sk(family, grain, start);
            cells.insert((cell_pk(&scope), sk.clone()), (scope, sk, bytes));
        };
        // A person's week cells are not stored (`kept`): theirs are their days'.
        for (k, c) in loaded.pulls.into_iter().filter(|((scope, _), _)| kept(Grain::Week, scope)) {
            put(Family::Pulls, Grain::Week, k, c.encode());
        }
        for (k, c) in loaded.ci.into_iter().filter(|((scope, _), _)| kept(Grain::Week, scope)) {
            put(Family::Ci, Grain::Week, k, c.encode());
        }
        for (k, c) in loaded.merges {
            put(Family::Merges, Grain::Week, k, c.encode());
        }
        for (k, c) in loaded.pull_days {
            put(Family::Pulls, Grain::Day, k, c.encode());
        }
        for (k, c) in loaded.ci_days {
            put(Family::Ci, Grain::Day, k, c.encode());
        }
        self.write_cells(cells).await
    }
}

/// Cells computed elsewhere, for [`DynamoStore::load_rollups`].
#[derive(Debug, Default)]
pub struct LoadedCells {
    pub pulls: BTreeMap<CellKey, PullCell>,
    pub ci: BTreeMap<CellKey, CiCell>,
    pub merges: BTreeMap<CellKey, MergeCell>,
    pub pull_days: BTreeMap<CellKey, PullCell>,
    pub ci_days: BTreeMap<CellKey, CiCell>,
}

fn cell_item(scope: &Scope, sk: String, bytes: Vec<u8>) -> Item {
    let mut i = key_of(cell_pk(scope), sk);
    i.insert("kind".into(), s("rollup_cell"));
    i.insert("cell".into(), AttributeValue::B(Blob::new(bytes)));
    i
}

fn bytes_of(i: &Item) -> Result<Vec<u8>, StoreError> {
    match i.get("cell") {
        Some(AttributeValue::B(b)) => Ok(b.as_ref().to_vec()),
        _ => Err(corrupt(anyhow!("a rollup cell item without its cell"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_entry_names_its_day_cell_and_reads_back() {
        let day: NaiveDate = "2030-03-06".parse().unwrap();
        for (family, scope) in [
            (Family::Ci, Scope::Repo(RepoName::parse("acme/api").unwrap())),
            (Family::Pulls, Scope::All),
            (Family::Pulls, Scope::Author(None)),
            (Family::Ci, Scope::Author(Some("ann-b".into()))),
        ] {
            let entry = mark_entry(family, day, &scope);
            assert_eq!(parse_mark_entry(&entry), Some((family, day, scope)), "{entry}");
        }
        assert_eq!(mark_entry(Family::Ci, day, &Scope::All), "C2030-03-06|*");
        for bad in ["M2030-03-06|*", "C2030-13-06|*", "C2030-03-06", "C2030-03-06|repo:nope", ""] {
            assert_eq!(parse_mark_entry(bad), None, "{bad:?}");
        }
        // A settle recomputes what the stream would have: a pull request day
        // counts in its day, its week and its merge cell; a person has no week cell.
        let mut plan = Plan::default();
        plan.add_day(Family::Pulls, day, Scope::Author(Some("ann".into())));
        let monday: NaiveDate = "2030-03-04".parse().unwrap();
        let ann = Scope::Author(Some("ann".into()));
        assert_eq!(
            plan.cells,
            BTreeSet::from([(Family::Pulls, Grain::Day, day, ann.clone()), (Family::Merges, Grain::Week, monday, ann)])
        );
    }

    #[test]
    fn touched_days_are_read_as_few_spans_as_their_rows_allow() {
        let d = |s: &str| s.parse::<NaiveDate>().unwrap();
        // Consecutive days are one read; days apart are joined where the days
        // between hold fewer rows than a read's index Queries cost.
        let days: BTreeSet<NaiveDate> =
            [d("2030-03-04"), d("2030-03-05"), d("2030-03-07"), d("2030-03-09"), d("2030-03-20")].into();
        let quiet = |_| 0;
        assert_eq!(spans(&days, quiet), vec![d("2030-03-04")..d("2030-03-10"), d("2030-03-20")..d("2030-03-21")]);
        let busy_friday = |day| if day == d("2030-03-08") { SPAN_READ } else { 0 };
        assert_eq!(
            spans(&days, busy_friday),
            vec![d("2030-03-04")..d("2030-03-08"), d("2030-03-09")..d("2030-03-10"), d("2030-03-20")..d("2030-03-21")]
        );
        assert_eq!(days_in(&spans(&days, busy_friday)).len(), 6);
        assert_eq!(start_of_sk(&cell_sk(Family::Ci, Grain::Week, d("2030-03-04"))), Some(d("2030-03-04")));
        assert_eq!(cell_sk(Family::Ci, Grain::Day, d("2030-03-06")), "CD#2030-03-06");
        assert_eq!(start_of_sk("CD#2030-03-06"), Some(d("2030-03-06")));
        // Day cells sort apart from week cells: a Query for a range of weeks never reads them.
        assert!(
            cell_sk(Family::Pulls, Grain::Day, d("2020-01-01")) > cell_sk(Family::Pulls, Grain::Week, d("2099-01-01"))
        );
    }
}
