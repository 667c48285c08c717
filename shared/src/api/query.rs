//! The query string, parsed strictly and by hand (an unknown or repeated name
//! is a 400, each bad value a 400 saying what is wrong), and each endpoint's
//! parameters as the OpenAPI document describes them. The names a handler
//! accepts are the names its parameter structs declare: one list for both.

use std::collections::HashMap;

use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterIn};

use super::ApiError;
use crate::domain::{DeliveryStatus, RepoName, Timestamp};
use crate::ports::{MetricsFilter, PageRequest, TeamRef};
use crate::services::metrics::{Extras, GroupBy, Interval};

/// Query parameters, strictly: an unknown or repeated name is a 400, so a
/// typo never silently widens a query.
pub(super) struct Query(HashMap<String, String>);

/// The parameters one set describes, as the handler checks them.
pub(super) fn of<P: IntoParams>() -> Vec<Parameter> {
    P::into_params(|| Some(ParameterIn::Query))
}

impl Query {
    /// Parse `raw` against the names the given parameter sets declare, in order.
    pub(super) fn parse<const N: usize>(raw: Option<String>, sets: [Vec<Parameter>; N]) -> Result<Self, ApiError> {
        let allowed: Vec<String> = sets.into_iter().flatten().map(|p| p.name).collect();
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            if !allowed.iter().any(|a| *a == k) {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {k:?}; this endpoint takes: {}",
                    allowed.join(", ")
                )));
            }
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(ApiError::BadRequest(format!("query parameter {k:?} is given twice")));
            }
        }
        Ok(Self(map))
    }

    /// A parameter's value; an empty one is no value.
    pub(super) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub(super) fn repo(&self) -> Result<Option<RepoName>, ApiError> {
        self.get("repo").map(|r| RepoName::parse(r).map_err(|e| ApiError::BadRequest(e.to_string()))).transpose()
    }

    pub(super) fn page(&self) -> Result<PageRequest, ApiError> {
        let limit = match self.get("limit") {
            None => PageRequest::DEFAULT_LIMIT,
            Some(l) => {
                l.parse::<usize>().ok().filter(|n| (1..=PageRequest::MAX_LIMIT).contains(n)).ok_or_else(|| {
                    ApiError::BadRequest(format!("limit must be a whole number from 1 to {}", PageRequest::MAX_LIMIT))
                })?
            }
        };
        let cursor = self.get("cursor");
        // The grammar `PageParams` declares; within it any cursor is a position.
        if let Some(c) = cursor
            && (c.len() > MAX_CURSOR || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        {
            return Err(ApiError::BadRequest(format!(
                "cursor must be the next_cursor of a page: up to {MAX_CURSOR} letters, digits, - and _"
            )));
        }
        Ok(PageRequest { limit, cursor: cursor.map(str::to_owned) })
    }

    /// `since` (inclusive) and `until` (exclusive) with the shared filters.
    pub(super) fn metrics_filter(&self) -> Result<MetricsFilter, ApiError> {
        let until = self.get("until").map(|v| parse_time("until", v)).transpose()?.unwrap_or_else(chrono::Utc::now);
        let since = match self.get("since") {
            Some(v) => parse_time("since", v)?,
            None => until - chrono::TimeDelta::days(DEFAULT_WINDOW_DAYS),
        };
        // Any two times make a window: a `since` at or after `until` is the
        // empty window at `until`; a longer one than the longest is its last
        // MAX_WINDOW_DAYS. The answer's `window` says which was served.
        let since = since.clamp(until - chrono::TimeDelta::days(MAX_WINDOW_DAYS), until);
        let team = self
            .get("team")
            .map(|t| match t.split_once('/') {
                Some((org, slug)) if !org.is_empty() && !slug.is_empty() && !slug.contains('/') => {
                    Ok(TeamRef { org: Some(org.to_owned()), slug: slug.to_owned() })
                }
                None => Ok(TeamRef { org: None, slug: t.to_owned() }),
                _ => Err(ApiError::BadRequest("team must be ORG/SLUG or SLUG".into())),
            })
            .transpose()?;
        let mut f = MetricsFilter::window(since, until);
        f.repo = self.repo()?;
        f.author = self.get("author").map(str::to_owned);
        f.team = team;
        f.workflow = self.get("workflow").map(str::to_owned);
        f.branch = self.get("branch").map(str::to_owned);
        f.environment = self.get("environment").map(str::to_owned);
        Ok(f)
    }

    /// `interval` and `compare`.
    pub(super) fn extras(&self) -> Result<Extras, ApiError> {
        let interval = self
            .get("interval")
            .map(|v| Interval::parse(v).ok_or_else(|| ApiError::BadRequest("interval must be week or day".into())))
            .transpose()?;
        let previous = match self.get("compare") {
            None => false,
            Some("previous") => true,
            Some(_) => return Err(ApiError::BadRequest("compare must be previous".into())),
        };
        Ok(Extras { interval, previous })
    }

    /// `top`: how many pull requests each list holds (0 without it).
    pub(super) fn top(&self) -> Result<usize, ApiError> {
        self.get("top")
            .map(|v| {
                v.parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_TOP).contains(n))
                    .ok_or_else(|| ApiError::BadRequest(format!("top must be a whole number from 1 to {MAX_TOP}")))
            })
            .transpose()
            .map(Option::unwrap_or_default)
    }

    pub(super) fn group_by(&self, allowed: &[GroupBy]) -> Result<Option<GroupBy>, ApiError> {
        let Some(v) = self.get("group_by") else { return Ok(None) };
        GroupBy::parse(v).filter(|g| allowed.contains(g)).map(Some).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "group_by must be one of {}",
                allowed.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", ")
            ))
        })
    }
}

/// The longest list of `top`.
pub(super) const MAX_TOP: usize = 100;

/// The longest cursor: far more than any sort key the stores page by.
pub(super) const MAX_CURSOR: usize = 4096;

/// The default window: the 90 days before `until`; the longest: about ten years.
pub(super) const DEFAULT_WINDOW_DAYS: i64 = 90;
pub(super) const MAX_WINDOW_DAYS: i64 = 3660;

/// An ISO-8601 time (`2026-03-02T09:00:00Z`, any offset) or a date (`2026-03-02`, midnight UTC).
fn parse_time(name: &str, v: &str) -> Result<Timestamp, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(ApiError::BadRequest(format!(
        "{name} must be an ISO-8601 time (2026-03-02T09:00:00Z) or date (2026-03-02), not {:?}",
        v.chars().take(40).collect::<String>()
    )))
}

// The parameter sets. They describe; the parser above reads. A parameter given
// empty (`?repo=`) is the same as one not given. The patterns of `repo`,
// `owner` and `name` are set on the document (`openapi::contract`).

/// A repository's owner or name: 1-100 letters, digits, `-`, `_` and `.`, neither `.` nor `..`.
macro_rules! segment {
    () => {
        r"(?:[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}|\.[A-Za-z0-9_-][A-Za-z0-9._-]{0,98}|\.\.[A-Za-z0-9._-]{1,98})"
    };
}
/// `OWNER/NAME`.
pub(super) const REPO: &str = concat!("^", segment!(), "/", segment!(), "$");
/// `OWNER/NAME`, or empty: no filter.
pub(super) const REPO_OR_EMPTY: &str = concat!("^(?:", segment!(), "/", segment!(), ")?$");
pub(super) const SEGMENT: &str = concat!("^", segment!(), "$");

/// Every list: `limit` and `cursor`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct PageParams {
    /// Page size, 1-500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// The previous page's `next_cursor`, unchanged. Opaque (base64url); a
    /// cursor this server did not issue names no position in the list, so its
    /// page is the end: no items and no `next_cursor`.
    #[param(pattern = r"^[A-Za-z0-9_-]*$", max_length = 4096)]
    cursor: Option<String>,
}

/// `repo`, optional.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct RepoParams {
    /// Only this repository: OWNER/NAME.
    #[param(value_type = Option<String>)]
    repo: Option<RepoName>,
}

/// `state` of `/api/pulls`: a pull request state, or all of them.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(super) enum PullStateParam {
    Open,
    Closed,
    Merged,
    All,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct PullParams {
    /// Only this repository: OWNER/NAME.
    #[param(value_type = Option<String>)]
    repo: Option<RepoName>,
    /// Default all.
    #[param(inline)]
    state: Option<PullStateParam>,
    /// Only pull requests opened by this login.
    author: Option<String>,
}

/// The path of one pull request.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub(super) struct PullPath {
    /// The repository's owner.
    owner: String,
    /// The repository's name.
    name: String,
    /// The pull request's number.
    #[param(minimum = 1)]
    number: u64,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct TeamParams {
    /// Only this organisation's teams.
    org: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct CommitParams {
    /// The repository: OWNER/NAME (required).
    #[param(value_type = String)]
    repo: RepoName,
    /// Only commits of this branch.
    branch: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct DeliveryParams {
    /// Only deliveries that became this.
    #[param(inline)]
    status: Option<DeliveryStatus>,
    /// Only this event type (X-GitHub-Event), e.g. pull_request.
    #[param(pattern = r"^[A-Za-z0-9_.-]{0,64}$")]
    event: Option<String>,
    /// Only this repository: OWNER/NAME.
    #[param(value_type = Option<String>)]
    repo: Option<RepoName>,
}

/// The window and filters every metric takes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct WindowParams {
    /// Window start, inclusive: an RFC 3339 time or a date (midnight UTC). Default: 90 days before `until`.
    /// A `since` at or after `until` is the empty window at `until`; a window longer than 3660 days is
    /// its last 3660 days. The answer's `window` is the one served.
    #[param(value_type = Option<String>)]
    since: Option<Timestamp>,
    /// Window end, exclusive: an RFC 3339 time or a date (midnight UTC). Default: now.
    #[param(value_type = Option<String>)]
    until: Option<Timestamp>,
    /// Only this repository: OWNER/NAME.
    #[param(value_type = Option<String>)]
    repo: Option<RepoName>,
    /// Only this team's members: ORG/SLUG or SLUG.
    #[param(pattern = r"^(?:[^/]*|[^/]+/[^/]+)$")]
    team: Option<String>,
    /// Only this login.
    author: Option<String>,
}

/// `group_by` (its values are each endpoint's groups).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct GroupParams {
    /// Group the figures by this.
    group_by: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct CiParams {
    /// Only this workflow (its name).
    workflow: Option<String>,
    /// Only runs of this branch.
    branch: Option<String>,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct DoraParams {
    /// Only deployments to this environment.
    environment: Option<String>,
}

/// A series and the previous period, on every metric but health.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct SeriesParams {
    /// Also answer the figures per bucket of the window (`series` of each
    /// group): ISO weeks or UTC days, every bucket of the window, oldest first.
    #[param(inline)]
    interval: Option<IntervalParam>,
    /// `previous`: also answer the same figures over the window of the same
    /// length just before (`previous` of each group, `previous_window`).
    #[param(inline)]
    compare: Option<CompareParam>,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(super) enum IntervalParam {
    Week,
    Day,
}

#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
pub(super) enum CompareParam {
    Previous,
}

/// The lists of `/api/metrics/pulls`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub(super) struct PullListParams {
    /// Also answer `slowest_first_reviews` and `stale`, this many pull requests each (1-100).
    #[param(minimum = 1, maximum = 100)]
    top: Option<u32>,
}
