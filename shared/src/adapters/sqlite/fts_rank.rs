//! `octo_bm25`: FTS5's own bm25 (same formula, k1 1.2, b 0.75, the column
//! weights of [`WEIGHTS`]) with the phrases' document counts given by the
//! caller instead of counted at query time (shared/docs/search.md,
//! "Ranking"). FTS5's `bm25()` runs every phrase of the query over the whole
//! index, once a statement, to count the documents holding it — ≈ 9 ms for a
//! word in 457,000 documents, whatever the `LIMIT` — and offers no way to
//! pass counts in; an auxiliary function registered through `fts5_api` can.
//!
//! `octo_bm25(search_text, counts, phrases)`: `counts` a blob of
//! little-endian `i64`, the number of documents holding each of the query's
//! first phrases, in the query's order; `phrases` how many phrases the
//! caller's query has in all. The phrases after the counted ones get no
//! weight (the search puts its words first; the tags and the excluded words
//! after them have no instance in a text column of a matching row, so bm25
//! gives them nothing either). When FTS5's phrase count differs from
//! `phrases` (a phrase the tokenizer found empty and dropped), every phrase
//! is counted as `bm25()` does: the score is then exactly bm25's.

use std::ffi::{c_int, c_void};
use std::ptr;

use rusqlite::{Connection, ffi};

/// The weights of the columns title, body, extra and tags.
pub(super) const WEIGHTS: [f64; 4] = [10.0, 2.0, 1.0, 0.0];
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Register `octo_bm25` on `conn`.
pub(super) fn register(conn: &Connection) -> rusqlite::Result<()> {
    // SAFETY: `handle` is the live connection `conn` owns; the statement is
    // prepared, stepped and finalized on it here, and the pointer bound to it
    // (`api`) outlives the statement. `fts5()` writes the `fts5_api` pointer
    // through the bound pointer (the documented way to reach it:
    // https://sqlite.org/fts5.html#extending_fts5); that struct lives as long
    // as the connection, which is as long as the function is registered.
    unsafe {
        let db = conn.handle();
        let mut stmt = ptr::null_mut();
        check(db, ffi::sqlite3_prepare_v2(db, c"SELECT fts5(?1)".as_ptr(), -1, &mut stmt, ptr::null_mut()))?;
        let mut api: *mut ffi::fts5_api = ptr::null_mut();
        let bound = ffi::sqlite3_bind_pointer(stmt, 1, (&raw mut api).cast::<c_void>(), c"fts5_api_ptr".as_ptr(), None);
        if bound == ffi::SQLITE_OK {
            ffi::sqlite3_step(stmt);
        }
        let finalized = ffi::sqlite3_finalize(stmt);
        check(db, bound)?;
        check(db, finalized)?;
        let create = match api.as_ref() {
            Some(a) if a.iVersion >= 2 => a.xCreateFunction,
            _ => None,
        };
        let Some(create) = create else {
            return Err(rusqlite::Error::SqliteFailure(
                ffi::Error::new(ffi::SQLITE_ERROR),
                Some("this SQLite has no FTS5 extension API".to_owned()),
            ));
        };
        check(db, create(api, c"octo_bm25".as_ptr(), ptr::null_mut(), Some(octo_bm25), None))
    }
}

/// `rc` as a result, with the connection's message when it failed.
unsafe fn check(db: *mut ffi::sqlite3, rc: c_int) -> rusqlite::Result<()> {
    if rc == ffi::SQLITE_OK {
        return Ok(());
    }
    // SAFETY: `db` is a live connection; its message is copied at once.
    let msg = unsafe { std::ffi::CStr::from_ptr(ffi::sqlite3_errmsg(db)) }.to_string_lossy().into_owned();
    Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(msg)))
}

/// What a statement computes once: the average document length and each
/// phrase's IDF; `freq` is the row's scratch space.
struct Data {
    avgdl: f64,
    idf: Vec<f64>,
    freq: Vec<f64>,
}

unsafe extern "C" fn free_data(p: *mut c_void) {
    // SAFETY: `p` is the `Box<Data>` handed to `xSetAuxdata` below, freed once.
    drop(unsafe { Box::from_raw(p.cast::<Data>()) });
}

unsafe extern "C" fn count_row(
    _api: *const ffi::Fts5ExtensionApi,
    _fts: *mut ffi::Fts5Context,
    n: *mut c_void,
) -> c_int {
    // SAFETY: `n` is the `i64` `xQueryPhrase` was given below.
    unsafe { *n.cast::<i64>() += 1 };
    ffi::SQLITE_OK
}

/// The caller's document counts: the blob of argument 0, when argument 1
/// says as many phrases as the query has.
unsafe fn given_counts(n_val: c_int, vals: *mut *mut ffi::sqlite3_value, n_phrase: usize) -> Option<Vec<i64>> {
    if n_val < 2 {
        return None;
    }
    // SAFETY: SQLite passes `n_val` valid values; a blob's bytes are valid
    // for its length until the value changes (they are copied at once).
    unsafe {
        let (counts, phrases) = (*vals, *vals.add(1));
        if usize::try_from(ffi::sqlite3_value_int64(phrases)).ok() != Some(n_phrase) {
            return None;
        }
        let len = usize::try_from(ffi::sqlite3_value_bytes(counts)).ok()?;
        let blob = ffi::sqlite3_value_blob(counts).cast::<u8>();
        if len == 0 || blob.is_null() {
            return Some(Vec::new());
        }
        let bytes = std::slice::from_raw_parts(blob, len);
        let counts: Vec<i64> =
            bytes.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or_default())).collect();
        (counts.len() <= n_phrase).then_some(counts)
    }
}

/// The statement's [`Data`], computed on its first row.
unsafe fn data(
    api: &ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    n_val: c_int,
    vals: *mut *mut ffi::sqlite3_value,
) -> Result<*mut Data, c_int> {
    let missing = ffi::SQLITE_MISUSE;
    // SAFETY: the callbacks are FTS5's own, called with the context it gave.
    unsafe {
        let p = (api.xGetAuxdata.ok_or(missing)?)(fts, 0).cast::<Data>();
        if !p.is_null() {
            return Ok(p);
        }
        let n_phrase = usize::try_from((api.xPhraseCount.ok_or(missing)?)(fts)).unwrap_or(0);
        let (mut n_row, mut n_token) = (0i64, 0i64);
        rc((api.xRowCount.ok_or(missing)?)(fts, &mut n_row))?;
        rc((api.xColumnTotalSize.ok_or(missing)?)(fts, -1, &mut n_token))?;
        let given = given_counts(n_val, vals, n_phrase);
        let mut idf = vec![0.0; n_phrase];
        for (i, idf) in idf.iter_mut().enumerate() {
            let hits = match &given {
                Some(counts) => match counts.get(i) {
                    Some(&n) => n,
                    None => continue,
                },
                None => {
                    let mut n = 0i64;
                    let query = api.xQueryPhrase.ok_or(missing)?;
                    rc(query(fts, i as c_int, (&raw mut n).cast::<c_void>(), Some(count_row)))?;
                    n
                }
            };
            *idf = bm25_idf(n_row, hits);
        }
        let set = api.xSetAuxdata.ok_or(missing)?;
        let d = Box::into_raw(Box::new(Data {
            avgdl: n_token as f64 / n_row.max(1) as f64,
            idf,
            freq: vec![0.0; n_phrase],
        }));
        // When it fails, `xSetAuxdata` has called the destructor itself.
        rc(set(fts, d.cast::<c_void>(), Some(free_data)))?;
        Ok(d)
    }
}

/// FTS5's IDF: `ln((N - n + 0.5) / (n + 0.5))`, at least 1e-6. A kept
/// count can exceed the rows now indexed (documents deleted since it was
/// counted): `n` is taken as at most `N`, never a logarithm of a negative
/// (NaN, which SQLite returns as NULL).
fn bm25_idf(rows: i64, hits: i64) -> f64 {
    let hits = hits.clamp(0, rows.max(0));
    let idf = ((rows - hits) as f64 + 0.5).ln() - (hits as f64 + 0.5).ln();
    if idf > 0.0 { idf } else { 1e-6 }
}

fn rc(code: c_int) -> Result<(), c_int> {
    if code == ffi::SQLITE_OK { Ok(()) } else { Err(code) }
}

unsafe fn score(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    n_val: c_int,
    vals: *mut *mut ffi::sqlite3_value,
) -> Result<f64, c_int> {
    let missing = ffi::SQLITE_MISUSE;
    // SAFETY: FTS5 calls this with its API and the row's context; the
    // `Data` is this statement's, used by one call at a time.
    unsafe {
        let api = api.as_ref().ok_or(missing)?;
        let d = &mut *data(api, fts, n_val, vals)?;
        d.freq.fill(0.0);
        let mut n_inst: c_int = 0;
        rc((api.xInstCount.ok_or(missing)?)(fts, &mut n_inst))?;
        let inst = api.xInst.ok_or(missing)?;
        for i in 0..n_inst {
            let (mut phrase, mut col, mut off) = (0, 0, 0);
            rc(inst(fts, i, &mut phrase, &mut col, &mut off))?;
            let w = usize::try_from(col).ok().and_then(|c| WEIGHTS.get(c)).copied().unwrap_or(1.0);
            if let Some(f) = usize::try_from(phrase).ok().and_then(|p| d.freq.get_mut(p)) {
                *f += w;
            }
        }
        let mut n_tok: c_int = 0;
        rc((api.xColumnSize.ok_or(missing)?)(fts, -1, &mut n_tok))?;
        let norm = K1 * (1.0 - B + B * f64::from(n_tok) / d.avgdl);
        let score: f64 = d.idf.iter().zip(&d.freq).map(|(idf, f)| idf * (f * (K1 + 1.0)) / (f + norm)).sum();
        Ok(-score)
    }
}

unsafe extern "C" fn octo_bm25(
    api: *const ffi::Fts5ExtensionApi,
    fts: *mut ffi::Fts5Context,
    ctx: *mut ffi::sqlite3_context,
    n_val: c_int,
    vals: *mut *mut ffi::sqlite3_value,
) {
    // SAFETY: the arguments are FTS5's, passed on unchanged.
    unsafe {
        match score(api, fts, n_val, vals) {
            Ok(s) => ffi::sqlite3_result_double(ctx, s),
            Err(code) => ffi::sqlite3_result_error_code(ctx, code),
        }
    }
}

/// The counts blob of `octo_bm25`.
pub(super) fn counts_blob(counts: &[u64]) -> Vec<u8> {
    counts.iter().flat_map(|n| (i64::try_from(*n).unwrap_or(i64::MAX)).to_le_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        register(&conn).unwrap();
        conn.execute_batch(
            "CREATE VIRTUAL TABLE t USING fts5(title, body, extra, tags, tokenize = 'unicode61 remove_diacritics 2');",
        )
        .unwrap();
        let words = ["fix", "rate", "limiter", "the", "cache", "flaky", "test", "parser", "deadlock", "retry"];
        let mut stmt = conn.prepare("INSERT INTO t (title, body, extra, tags) VALUES (?1, ?2, ?3, ?4)").unwrap();
        for i in 0..300usize {
            let pick = |k: usize, n: usize| {
                (0..n).map(|j| words[(i * 7 + k * 3 + j * j) % words.len()]).collect::<Vec<_>>().join(" ")
            };
            stmt.execute((pick(1, 1 + i % 5), pick(2, i % 11), pick(3, i % 3), format!("r{} s{}", i % 4, i % 2)))
                .unwrap();
        }
        drop(stmt);
        conn
    }

    fn count(conn: &Connection, phrase: &str) -> u64 {
        conn.query_row("SELECT count(*) FROM t WHERE t MATCH ?1", [phrase], |r| r.get(0)).unwrap()
    }

    /// Each row's (rowid, bm25, octo_bm25) for `query`, whose first phrases are `counted`.
    fn scores(conn: &Connection, query: &str, counts: &[u64], phrases: i64) -> Vec<(i64, f64, f64)> {
        let mut stmt = conn
            .prepare("SELECT rowid, bm25(t, 10.0, 2.0, 1.0, 0.0), octo_bm25(t, ?2, ?3) FROM t WHERE t MATCH ?1 ORDER BY rowid")
            .unwrap();
        stmt.query_map((query, counts_blob(counts), phrases), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn a_kept_count_above_the_rows_now_indexed_still_scores() {
        // A count kept from before documents were deleted: more than the rows.
        let conn = index();
        let rows = scores(&conn, r#""fix""#, &[1_000_000], 1);
        assert!(!rows.is_empty());
        for (id, _, ours) in rows {
            assert!(ours.is_finite() && ours <= 0.0, "row {id}: {ours}");
        }
    }

    #[test]
    fn with_true_counts_the_score_is_bm25s() {
        let conn = index();
        for (query, words, phrases) in [
            (r#""fix""#, vec![r#""fix""#], 1),
            (r#""fix" "the""#, vec![r#""fix""#, r#""the""#], 2),
            (r#"("rate limiter" "cache") AND tags : "r1""#, vec![r#""rate limiter""#, r#""cache""#], 3),
            (r#"("flaky") NOT ("test" OR "parser")"#, vec![r#""flaky""#], 3),
            (
                r#"({title body extra} : "retry" "deadlock") AND (tags : "s0" OR tags : "s1")"#,
                vec![r#"{title body extra} : "retry""#, r#""deadlock""#],
                4,
            ),
        ] {
            let counts: Vec<u64> = words.iter().map(|p| count(&conn, p)).collect();
            let rows = scores(&conn, query, &counts, phrases);
            assert!(rows.len() > 3, "{query}: {} rows", rows.len());
            for (id, bm25, ours) in rows {
                assert!(
                    (bm25 - ours).abs() <= 1e-9 * bm25.abs().max(1.0),
                    "{query} row {id}: bm25 {bm25}, octo_bm25 {ours}"
                );
            }
        }
    }

    #[test]
    fn the_given_counts_are_used_and_a_phrase_count_that_disagrees_falls_back_to_counting() {
        let conn = index();
        let (fix, the) = (count(&conn, r#""fix""#), count(&conn, r#""the""#));
        // "the" said to be rare: its weight against "fix" changes.
        let rows = scores(&conn, r#""fix" "the""#, &[fix, 1], 2);
        assert!(rows.iter().any(|(_, bm25, ours)| (bm25 - ours).abs() > 1e-6), "the counts given were not used");
        // The caller's phrase count is wrong: FTS5 counts, as bm25 does.
        for (id, bm25, ours) in scores(&conn, r#""fix" "the""#, &[fix, 1], 3) {
            assert!((bm25 - ours).abs() <= 1e-9 * bm25.abs().max(1.0), "row {id}: {bm25} / {ours}");
        }
        assert!(the > 0);
    }
}
