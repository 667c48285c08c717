//! Paging cursors (`?cursor=`), opaque to clients but read back from them:
//! decoded as every key the stores page by, and handed to the SQLite store's
//! lists.
//!
//! Invariants: a cursor that decodes re-encodes to one that decodes to the same
//! key; a list given any cursor answers a page or `BadCursor`, nothing else.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use octoscope::domain::RepoName;
use octoscope::ports::{
    CompletenessStore, DeliveryFilter, JobStore, PageRequest, PullFilter, ReadModel, StoreError, decode_cursor,
    encode_cursor,
};
use octoscope_fuzz::{App, runtime};
use serde::Serialize;
use serde::de::DeserializeOwned;

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(runtime);
static APP: LazyLock<App> = LazyLock::new(|| RT.block_on(App::with_demo()));

fn round_trip<K: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(cursor: &str) {
    if let Ok(key) = decode_cursor::<K>(cursor) {
        let again = encode_cursor(&key);
        let back: K = decode_cursor(&again).expect("a re-encoded cursor decodes");
        assert_eq!(back, key, "cursor {cursor:?} does not survive a round trip");
    }
}

fn page_or_bad_cursor<T>(what: &str, r: Result<T, StoreError>) {
    if let Err(e) = r {
        assert!(matches!(e, StoreError::BadCursor), "{what}: a cursor gave {e:?}, not BadCursor");
    }
}

fuzz_target!(
    // The demo organisation is loaded before the first input, outside its time limit.
    init: {
        LazyLock::force(&APP);
    },
    |data: &[u8]| {
    let Ok(cursor) = std::str::from_utf8(data) else { return };
    round_trip::<i64>(cursor);
    round_trip::<String>(cursor);
    round_trip::<(String, String)>(cursor);
    round_trip::<(String, i64)>(cursor);
    round_trip::<(String, String, i64)>(cursor);

    let page = PageRequest { cursor: Some(cursor.to_owned()), ..PageRequest::first(5) };
    let store = &APP.store;
    RT.block_on(async {
        page_or_bad_cursor("repos", store.list_repos(&page).await);
        page_or_bad_cursor("deliveries", store.list_deliveries(&DeliveryFilter::default(), &page).await);
        page_or_bad_cursor("workflow runs", store.list_workflow_runs(None, &page).await);
        page_or_bad_cursor("pulls", store.list_pulls(&PullFilter::default(), &page).await);
        page_or_bad_cursor("teams", store.list_teams(None, &page).await);
        let repo = RepoName::parse("acme-demo/api").unwrap();
        page_or_bad_cursor("commits", store.list_commits(&repo, None, &page).await);
        page_or_bad_cursor("checks", store.list_checks(&page).await);
        page_or_bad_cursor("jobs", store.list_jobs(&page).await);
    });
});
