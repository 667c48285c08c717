//! The store on DynamoDB: what every concern's reads share (pages, cursors,
//! item mapping). Each port is implemented in its own file: `ledger.rs`,
//! `apply.rs`, `read.rs`, `completeness.rs` (its integrity reads in
//! `summaries.rs`), `jobs.rs`, `metrics.rs`. Every read is a GetItem,
//! BatchGetItem or Query (see `shared/docs/dynamodb.md`).

use aws_sdk_dynamodb::types::AttributeValue;

use super::DynamoStore;
use super::codec::*;
use super::ops::{Query, corrupt};
use crate::domain::Timestamp;
use crate::ports::{PageRequest, StoreError, decode_cursor, encode_cursor};

/// Free text kept on an item (reasons, errors) is cut to this many bytes.
pub(super) const MAX_TEXT: usize = 4 * 1024;

/// What a page reader does with an item.
pub(super) enum Take {
    Yes,
    No,
    /// Past the range (a prefix ended): stop reading.
    Stop,
}

/// The sort key a cursor carries. DynamoDB sort keys are 1 to 1024 bytes:
/// anything else was never a cursor this store returned.
pub(super) fn cursor(page: &PageRequest) -> Result<Option<String>, StoreError> {
    let sk = page.cursor.as_deref().map(decode_cursor::<String>).transpose()?;
    match sk {
        Some(sk) if sk.is_empty() || sk.len() > 1024 => Err(StoreError::BadCursor),
        sk => Ok(sk),
    }
}

pub(super) fn epoch(t: &Timestamp) -> AttributeValue {
    n(t.timestamp())
}

pub(super) fn views<T>(items: &[Item], f: impl Fn(&Item) -> anyhow::Result<T>) -> Result<Vec<T>, StoreError> {
    items.iter().map(f).collect::<anyhow::Result<Vec<_>>>().map_err(corrupt)
}

impl DynamoStore {
    /// Up to `limit` items of `q` that `take` accepts, and the cursor after
    /// them: the last item's sort key, for a range bound on the next page.
    pub(super) async fn page_of(
        &self,
        q: Query,
        limit: usize,
        mut take: impl FnMut(&Item) -> Take,
    ) -> Result<(Vec<Item>, Option<String>), StoreError> {
        let sk = q.sk_name();
        let q = q.page(limit + 1);
        let mut items = Vec::new();
        self.query_each(&q, |i| match take(&i) {
            Take::Yes => {
                items.push(i);
                items.len() <= limit
            }
            Take::No => true,
            Take::Stop => false,
        })
        .await?;
        Ok(page_cut(items, limit, &sk))
    }

    /// The first item of `q`, reading one.
    pub(super) async fn first(&self, q: &Query) -> Result<Option<Item>, StoreError> {
        let mut first = None;
        self.query_each(&q.clone().page(1), |i| {
            first = Some(i);
            false
        })
        .await?;
        Ok(first)
    }
}

/// Keep `limit` items; if there were more, the cursor is the last kept item's `sk`.
pub(super) fn page_cut(mut items: Vec<Item>, limit: usize, sk: &str) -> (Vec<Item>, Option<String>) {
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().and_then(|i| i.str(sk)).map(|k| encode_cursor(&k))
    } else {
        None
    };
    (items, next)
}
