//! Search queries (`GET /api/search?q=…`): any text a user types, parsed
//! into the typed [`SearchQuery`] and run on the SQLite store's FTS5 index
//! over the demo organisation.
//!
//! Invariants: parsing gives a query or a [`QueryError`] (a 400), nothing
//! else; a parsed query answers a page (never an error: no cursor is given,
//! and user text never reaches FTS5's `MATCH` unquoted) of at most the page's
//! size, whose total is at least what it shows; the index holds as many
//! documents after as before.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use octoscope::domain::SearchQuery;
use octoscope::ports::{PageRequest, SearchIndex};
use octoscope_fuzz::{App, runtime};

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(runtime);
static APP: LazyLock<App> = LazyLock::new(|| RT.block_on(App::with_demo()));
/// Everything the demo's index holds, counted once before the first input.
static EVERYTHING: LazyLock<u64> = LazyLock::new(|| count(""));

fn count(q: &str) -> u64 {
    let query = SearchQuery::parse(q).expect("an empty query parses");
    RT.block_on(APP.store.search(&query, &PageRequest::first(1))).expect("the empty query answers").total
}

fuzz_target!(
    // The demo organisation is loaded before the first input, outside its time limit.
    init: {
        LazyLock::force(&EVERYTHING);
    },
    |data: &[u8]| {
    let Ok(q) = std::str::from_utf8(data) else { return };
    let Ok(query) = SearchQuery::parse(q) else { return };
    let page = PageRequest::first(5);
    let found = RT.block_on(APP.store.search(&query, &page));
    let found = match found {
        Ok(found) => found,
        Err(e) => panic!("the query {q:?} parsed but its search failed: {e:?}"),
    };
    assert!(found.items.len() <= 5, "{q:?}: {} results on a page of 5", found.items.len());
    assert!(found.total >= found.items.len() as u64, "{q:?}: total {} under the {} shown", found.total, found.items.len());
    if data.len() % 64 == 0 {
        // Now and then (it costs a search): the index holds what it held.
        assert_eq!(count(""), *EVERYTHING, "the query {q:?} changed the index");
    }
});
