//! Typed views of GitHub's webhook payloads: only the fields Octoscope keeps,
//! deserialised straight from the body (serde skips the rest without building
//! a generic JSON tree). Fields GitHub may omit in some editions or actions are
//! `Option` or defaulted, so an unusual payload still normalises.

use chrono::{DateTime, TimeZone, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use crate::domain::Timestamp;

/// A GitHub timestamp: an ISO-8601 string almost everywhere, but epoch seconds
/// in some fields (e.g. `repository.pushed_at` in `push` events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GhTime(pub Timestamp);

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z in epoch seconds.
const EPOCH_MIN: i64 = -62_135_596_800;
const EPOCH_MAX: i64 = 253_402_300_799;

impl<'de> Deserialize<'de> for GhTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Clone, Copy)]
        struct V;
        impl Visitor<'_> for V {
            type Value = GhTime;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an ISO-8601 timestamp or epoch seconds")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<GhTime, E> {
                DateTime::parse_from_rfc3339(s)
                    .map(|t| GhTime(t.with_timezone(&Utc)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(s), &self))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<GhTime, E> {
                // Years 1 to 9999, as an RFC 3339 text can say: a date near the end of what
                // chrono holds would overflow the week and day arithmetic downstream.
                (EPOCH_MIN..=EPOCH_MAX)
                    .contains(&n)
                    .then(|| Utc.timestamp_opt(n, 0).single())
                    .flatten()
                    .map(GhTime)
                    .ok_or_else(|| E::invalid_value(de::Unexpected::Signed(n), &self))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<GhTime, E> {
                self.visit_i64(i64::try_from(n).map_err(|_| E::invalid_value(de::Unexpected::Unsigned(n), &self))?)
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<GhTime, E> {
                self.visit_i64(n as i64)
            }
        }
        d.deserialize_any(V)
    }
}

/// A text GitHub sends as a string or as null (none written): Some, null
/// being empty. Used with `#[serde(default)]`, so an absent field is None
/// (the payload does not say).
fn present_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?.unwrap_or_default()))
}

pub fn t(x: Option<GhTime>) -> Option<Timestamp> {
    x.map(|g| g.0)
}

#[derive(Debug, Deserialize)]
pub struct UserRef {
    pub login: Option<String>,
}

pub fn login(u: &Option<UserRef>) -> Option<String> {
    u.as_ref().and_then(|u| u.login.clone())
}

#[derive(Debug, Deserialize)]
pub struct OrgRef {
    pub login: String,
}

#[derive(Debug, Deserialize)]
pub struct OwnerRef {
    pub login: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct RepoPayload {
    pub id: Option<i64>,
    pub full_name: String,
    pub owner: Option<OwnerRef>,
    pub default_branch: Option<String>,
    pub private: Option<bool>,
    pub archived: Option<bool>,
    pub created_at: Option<GhTime>,
    pub updated_at: Option<GhTime>,
    pub pushed_at: Option<GhTime>,
}

/// The fields every event may carry; enough to file any delivery in the ledger.
#[derive(Debug, Deserialize)]
pub struct Envelope {
    pub action: Option<String>,
    pub repository: Option<RepoRef>,
    pub organization: Option<OrgRef>,
}

/// A repository reference parsed leniently (for the ledger of any event type).
#[derive(Debug, Deserialize)]
pub struct RepoRef {
    pub full_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Label {
    pub name: String,
}

#[derive(Debug, Deserialize)]
pub struct TeamRef {
    pub slug: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct GitRef {
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub sha: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PullRequestPayload {
    pub id: Option<i64>,
    pub number: u64,
    #[serde(default)]
    pub title: String,
    pub state: String,
    pub draft: Option<bool>,
    pub user: Option<UserRef>,
    pub created_at: GhTime,
    pub updated_at: GhTime,
    pub closed_at: Option<GhTime>,
    pub merged_at: Option<GhTime>,
    pub merged: Option<bool>,
    pub additions: Option<i64>,
    pub deletions: Option<i64>,
    pub changed_files: Option<i64>,
    pub commits: Option<i64>,
    pub labels: Option<Vec<Label>>,
    pub requested_reviewers: Option<Vec<UserRef>>,
    pub requested_teams: Option<Vec<TeamRef>>,
    pub base: Option<GitRef>,
    pub head: Option<GitRef>,
    #[serde(default, deserialize_with = "present_text")]
    pub body: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PullRequestEvent {
    pub action: Option<String>,
    pub pull_request: PullRequestPayload,
    pub repository: RepoPayload,
}

#[derive(Debug, Deserialize)]
pub struct ReviewPayload {
    pub id: i64,
    pub user: Option<UserRef>,
    pub state: String,
    pub submitted_at: Option<GhTime>,
    pub commit_id: Option<String>,
    #[serde(default, deserialize_with = "present_text")]
    pub body: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ReviewEvent {
    pub action: Option<String>,
    pub review: ReviewPayload,
    pub pull_request: PullRequestPayload,
    pub repository: RepoPayload,
}

#[derive(Debug, Deserialize)]
pub struct ReviewCommentPayload {
    pub id: i64,
    pub pull_request_review_id: Option<i64>,
    pub user: Option<UserRef>,
    pub created_at: GhTime,
    pub updated_at: GhTime,
}

#[derive(Debug, Deserialize)]
pub struct ReviewCommentEvent {
    pub action: Option<String>,
    pub comment: ReviewCommentPayload,
    pub pull_request: PullRequestPayload,
    pub repository: RepoPayload,
}

#[derive(Debug, Deserialize)]
pub struct TeamPayload {
    pub id: Option<i64>,
    pub slug: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub privacy: Option<String>,
    pub parent: Option<TeamRef>,
    #[serde(default)]
    pub deleted: bool,
}

#[derive(Debug, Deserialize)]
pub struct TeamEvent {
    pub action: Option<String>,
    pub team: TeamPayload,
    pub organization: Option<OrgRef>,
    pub repository: Option<RepoPayload>,
}

#[derive(Debug, Deserialize)]
pub struct MembershipEvent {
    pub action: Option<String>,
    pub scope: Option<String>,
    pub member: Option<UserRef>,
    pub team: Option<TeamPayload>,
    pub organization: Option<OrgRef>,
}

#[derive(Debug, Deserialize)]
pub struct OrgMembershipPayload {
    pub user: Option<UserRef>,
    pub role: Option<String>,
    pub state: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OrganizationEvent {
    pub action: Option<String>,
    pub membership: Option<OrgMembershipPayload>,
    pub organization: Option<OrgRef>,
}

#[derive(Debug, Deserialize)]
pub struct PermissionChange {
    pub to: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct MemberChanges {
    pub permission: Option<PermissionChange>,
}

#[derive(Debug, Deserialize)]
pub struct MemberEvent {
    pub action: Option<String>,
    pub member: Option<UserRef>,
    pub changes: Option<MemberChanges>,
    pub repository: RepoPayload,
}

#[derive(Debug, Deserialize)]
pub struct RepositoryEvent {
    pub action: Option<String>,
    pub repository: RepoPayload,
    /// What `renamed` and `transferred` changed.
    pub changes: Option<RepositoryChanges>,
}

/// `changes` of a `repository` event: the old name (`renamed`) or the old
/// owner (`transferred`, an organisation or a user).
#[derive(Debug, Deserialize)]
pub struct RepositoryChanges {
    pub repository: Option<RenamedFrom>,
    pub owner: Option<OwnerChange>,
}

#[derive(Debug, Deserialize)]
pub struct RenamedFrom {
    pub name: Option<FromValue>,
}

#[derive(Debug, Deserialize)]
pub struct FromValue {
    pub from: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct OwnerChange {
    pub from: Option<OwnerFrom>,
}

#[derive(Debug, Deserialize)]
pub struct OwnerFrom {
    pub organization: Option<OrgRef>,
    pub user: Option<UserRef>,
}

#[derive(Debug, Deserialize)]
pub struct CommitAuthor {
    pub name: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PushCommit {
    pub id: String,
    #[serde(default)]
    pub message: String,
    pub timestamp: Option<GhTime>,
    pub author: Option<CommitAuthor>,
}

#[derive(Debug, Deserialize)]
pub struct PushEvent {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub after: Option<String>,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub commits: Vec<PushCommit>,
    pub repository: RepoPayload,
}

#[derive(Debug, Deserialize)]
pub struct RefEvent {
    #[serde(rename = "ref")]
    pub git_ref: String,
    pub ref_type: String,
    pub repository: RepoPayload,
}

#[derive(Debug, Deserialize)]
pub struct WorkflowRunPayload {
    pub id: i64,
    pub name: Option<String>,
    pub workflow_id: Option<i64>,
    pub head_branch: Option<String>,
    pub head_sha: Option<String>,
    pub event: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    pub run_number: Option<i64>,
    pub run_attempt: Option<i64>,
    pub actor: Option<UserRef>,
    pub created_at: GhTime,
    pub updated_at: GhTime,
    pub run_started_at: Option<GhTime>,
}

#[derive(Debug, Deserialize)]
pub struct WorkflowRunEvent {
    pub action: Option<String>,
    pub workflow_run: WorkflowRunPayload,
    pub repository: RepoPayload,
}

#[derive(Debug, Deserialize)]
pub struct WorkflowJobPayload {
    pub id: i64,
    pub run_id: i64,
    #[serde(default)]
    pub name: String,
    pub workflow_name: Option<String>,
    pub head_branch: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    #[serde(default)]
    pub labels: Vec<String>,
    pub runner_name: Option<String>,
    pub runner_group_name: Option<String>,
    pub created_at: Option<GhTime>,
    pub started_at: Option<GhTime>,
    pub completed_at: Option<GhTime>,
}

#[derive(Debug, Deserialize)]
pub struct WorkflowJobEvent {
    pub action: Option<String>,
    pub workflow_job: WorkflowJobPayload,
    pub repository: RepoPayload,
}

#[derive(Debug, Deserialize)]
pub struct DeploymentPayload {
    pub id: i64,
    pub sha: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub environment: Option<String>,
    pub task: Option<String>,
    pub creator: Option<UserRef>,
    pub created_at: GhTime,
    pub updated_at: GhTime,
}

#[derive(Debug, Deserialize)]
pub struct DeploymentEvent {
    pub action: Option<String>,
    pub deployment: DeploymentPayload,
    pub repository: RepoPayload,
}

#[derive(Debug, Deserialize)]
pub struct DeploymentStatusPayload {
    pub id: i64,
    pub state: String,
    pub environment: Option<String>,
    pub creator: Option<UserRef>,
    pub created_at: GhTime,
    pub updated_at: GhTime,
}

#[derive(Debug, Deserialize)]
pub struct DeploymentStatusEvent {
    pub action: Option<String>,
    pub deployment_status: DeploymentStatusPayload,
    pub deployment: DeploymentPayload,
    pub repository: RepoPayload,
}

#[derive(Debug, Deserialize)]
pub struct InstallationRepo {
    pub id: Option<i64>,
    pub full_name: String,
    pub private: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct InstallationEvent {
    pub action: Option<String>,
    pub repositories: Option<Vec<InstallationRepo>>,
    pub repositories_added: Option<Vec<InstallationRepo>>,
}

#[derive(Debug, Deserialize)]
pub struct PingEvent {
    pub repository: Option<RepoPayload>,
    pub organization: Option<OrgRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Timestamp, serde_json::Error> {
        serde_json::from_str::<GhTime>(json).map(|g| g.0)
    }

    #[test]
    fn epoch_seconds_are_taken_within_the_years_a_text_can_say() {
        assert_eq!(parse("1700000000").unwrap().to_rfc3339(), "2023-11-14T22:13:20+00:00");
        assert_eq!(parse("253402300799").unwrap(), parse("\"9999-12-31T23:59:59Z\"").unwrap());
        assert_eq!(parse("-62135596800").unwrap(), parse("\"0001-01-01T00:00:00Z\"").unwrap());
        // Beyond year 9999 (chrono holds up to 262143, where adding a week overflows): refused.
        for far in ["253402300800", "8210298412799", "-62135596801", "1e300", "18446744073709551615"] {
            assert!(parse(far).is_err(), "{far}");
        }
    }
}
