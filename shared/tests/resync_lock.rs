//! The resync's lock: the same target is never resynced twice at once, and a
//! lock left by a dead job expires.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use octoscope::adapters::clock::SystemClock;
use octoscope::adapters::github::{GitHubClient, GitHubConfig};
use octoscope::adapters::sqlite::SqliteStore;
use octoscope::config::GitHubCredentials;
use octoscope::domain::RepoName;
use octoscope::domain::{GapKind, JobState, ResyncJob, Target};
use octoscope::ports::PageRequest;
use octoscope::ports::store::*;
use octoscope::services::resync::{ResyncError, ResyncService, ResyncStores};
use octoscope_fakehub::{FakeHub, OrgSpec};

#[tokio::test]
async fn a_held_lock_refuses_a_second_job_until_it_expires() {
    // GIVEN a repository whose lock another job holds
    let hub = FakeHub::start(OrgSpec { repos: 1, pulls: 20, teams: 0, ..OrgSpec::default() }).await.unwrap();
    let repo = RepoName::parse(&hub.org().repos[0].full_name()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("s.db")).unwrap());
    let github = GitHubClient::new(GitHubConfig::new(hub.url.clone(), GitHubCredentials::Token(hub.token().into())))
        .await
        .unwrap();
    let resync = ResyncService::new(ResyncStores::of(store.clone()), Arc::new(github), Arc::new(SystemClock));
    let target = Target::Repo(repo.clone());
    assert!(store.try_lock(&target.to_string(), "other-job", Utc::now(), TimeDelta::minutes(5)).await.unwrap());
    hub.reset_counters();
    let job = ResyncJob { id: "job-1".into(), target: target.clone(), kinds: vec![GapKind::Pulls], watermark: None };

    // WHEN a second job starts THEN it is refused, says so in its record, and asks GitHub nothing
    let err = resync.run(&job, |_| {}).await.unwrap_err();
    assert!(matches!(err, ResyncError::Locked(_)) && err.is_retryable(), "{err:?}");
    assert_eq!(hub.total_requests(), 0);
    let jobs = store.list_jobs(&PageRequest::first(5)).await.unwrap().items;
    assert_eq!(jobs[0].state, JobState::Failed);
    assert!(jobs[0].error.as_deref().unwrap().contains("another job"));

    // WHEN the holder died and its lock expired THEN the job runs, and leaves the lock free
    assert!(
        store
            .try_lock(&target.to_string(), "other-job", Utc::now() - TimeDelta::hours(1), TimeDelta::minutes(5))
            .await
            .unwrap()
    );
    let done = resync.run(&job, |_| {}).await.unwrap();
    assert_eq!((done.pulls, done.total_pulls), (20, Some(20)), "the walk knows the total, for an ETA");
    assert!(store.try_lock(&target.to_string(), "third-job", Utc::now(), TimeDelta::minutes(5)).await.unwrap());
    assert_eq!(store.list_jobs(&PageRequest::first(5)).await.unwrap().items[0].state, JobState::Succeeded);
}
