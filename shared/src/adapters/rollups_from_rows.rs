//! [`MetricRollups`](crate::ports::MetricRollups) computed from a store's
//! [`MetricRows`] on every request, with the same pure functions a store uses
//! to keep its cells ([`pull_cells`], [`ci_cells`]): the same answers, without
//! the speed. The rollup tests compare stored cells with them; DynamoDB
//! serves a person's day cells from them (it stores none).

use std::ops::Range;

use chrono::NaiveDate;

use crate::ports::{CellScopes, MetricRows, MetricsFilter, StoreError};
use crate::read::rollup::{
    CellKey, CiCell, Grain, MergeCell, PullCell, Scope, ci_cells_by, merge_cells, pull_cells_by,
};

/// The window of the weeks in `weeks`, narrowed to one repository or person
/// where the scopes allow.
fn filter(scopes: &CellScopes, weeks: &Range<NaiveDate>) -> MetricsFilter {
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
    let mut f = MetricsFilter::window(midnight(weeks.start), midnight(weeks.end.max(weeks.start)));
    match scopes {
        CellScopes::Repo(r) => f.repo = Some(r.clone()),
        CellScopes::Authors(a) if a.len() == 1 && a[0].is_some() => f.author = a[0].clone(),
        _ => {}
    }
    f
}

fn wanted(scopes: &CellScopes, s: &Scope) -> bool {
    match (scopes, s) {
        (CellScopes::All, Scope::All) => true,
        // The rows are the repository's, under its current name.
        (CellScopes::Repo(_), Scope::Repo(_)) => true,
        (CellScopes::Authors(a), Scope::Author(x)) => a.contains(x),
        (CellScopes::EveryRepo, Scope::Repo(_)) | (CellScopes::EveryAuthor, Scope::Author(_)) => true,
        _ => false,
    }
}

pub async fn pulls(
    rows: &dyn MetricRows,
    scopes: &CellScopes,
    weeks: Range<NaiveDate>,
) -> Result<Vec<(CellKey, PullCell)>, StoreError> {
    pulls_by(Grain::Week, rows, scopes, weeks).await
}

pub async fn ci(
    rows: &dyn MetricRows,
    scopes: &CellScopes,
    weeks: Range<NaiveDate>,
) -> Result<Vec<(CellKey, CiCell)>, StoreError> {
    ci_by(Grain::Week, rows, scopes, weeks).await
}

/// The pull request cells of `grain` starting in `span`.
pub async fn pulls_by(
    grain: Grain,
    rows: &dyn MetricRows,
    scopes: &CellScopes,
    span: Range<NaiveDate>,
) -> Result<Vec<(CellKey, PullCell)>, StoreError> {
    let got = rows.metric_pulls(&filter(scopes, &span)).await?;
    Ok(pull_cells_by(grain, &got, &span).into_iter().filter(|((s, _), _)| wanted(scopes, s)).collect())
}

/// The merge cells of the weeks in `weeks`.
pub async fn merges(
    rows: &dyn MetricRows,
    scopes: &CellScopes,
    weeks: Range<NaiveDate>,
) -> Result<Vec<(CellKey, MergeCell)>, StoreError> {
    let got = rows.metric_pulls(&filter(scopes, &weeks)).await?;
    Ok(merge_cells(&got, &weeks).into_iter().filter(|((s, _), _)| wanted(scopes, s)).collect())
}

/// The CI cells of `grain` starting in `span`.
pub async fn ci_by(
    grain: Grain,
    rows: &dyn MetricRows,
    scopes: &CellScopes,
    span: Range<NaiveDate>,
) -> Result<Vec<(CellKey, CiCell)>, StoreError> {
    let f = filter(scopes, &span);
    let (runs, jobs) = (rows.metric_runs(&f).await?, rows.metric_jobs(&f).await?);
    Ok(ci_cells_by(grain, &runs, &jobs, &span).into_iter().filter(|((s, _), _)| wanted(scopes, s)).collect())
}
