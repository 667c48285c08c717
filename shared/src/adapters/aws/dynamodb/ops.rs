//! The DynamoDB calls the store makes: Query with a sort-key range, batched
//! reads and writes (retrying unprocessed items), conditional updates, and
//! the mapping of SDK errors to [`StoreError`].

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, PutRequest, ReturnValue, ReturnValuesOnConditionCheckFailure,
    Select, WriteRequest,
};
use aws_smithy_runtime_api::http::Response;

use super::DynamoStore;
use super::codec::{Attrs, Item, Update, key_of};
use super::meter::{after, item_size};
use crate::adapters::aws::is_retryable;
use crate::ports::StoreError;

/// An SDK error as a store error: retryable (throttling, 5xx, timeouts) or not.
pub(super) fn sdk_error<E>(what: &'static str) -> impl FnOnce(SdkError<E, Response>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| {
        let retryable = is_retryable(&e);
        let e = anyhow::Error::new(e).context(what);
        if retryable { StoreError::Unavailable(e) } else { StoreError::Internal(e) }
    }
}

/// A stored item that does not read back as what was written.
pub(super) fn corrupt(e: anyhow::Error) -> StoreError {
    StoreError::Internal(e.context("a stored item is malformed"))
}

/// A sort-key condition of a Query.
#[derive(Debug, Clone)]
pub(super) enum Range {
    All,
    Prefix(String),
    Below(String),
    Above(String),
    AtLeast(String),
    Between(String, String),
}

/// One Query: a partition of the table or of a GSI, a sort-key range, a direction.
#[derive(Debug, Clone)]
pub(super) struct Query {
    pub index: Option<&'static str>,
    pub pk: String,
    pub range: Range,
    pub forward: bool,
    /// Items per request (the Query's `Limit`); reads stop early when the caller has enough.
    pub page: i32,
    /// Index queries only: hand over the index entries (keys) as read,
    /// instead of the base items they point at.
    pub keys_only: bool,
    /// Write shards of the partition (`{pk}#{nn}`, `key::shard`); 1: not sharded.
    pub shards: u32,
}

impl Query {
    pub fn table(pk: impl Into<String>, range: Range) -> Self {
        Self { index: None, pk: pk.into(), range, forward: true, page: 1000, keys_only: false, shards: 1 }
    }
    pub fn index(index: &'static str, pk: impl Into<String>, range: Range) -> Self {
        Self { index: Some(index), pk: pk.into(), range, forward: true, page: 1000, keys_only: false, shards: 1 }
    }
    /// A per-kind index partition written in [`key::SHARDS`](super::codec::key::SHARDS)
    /// shards, read as one: the shards merged in key order.
    pub fn sharded(index: &'static str, base: impl Into<String>, range: Range) -> Self {
        Self { shards: super::codec::key::SHARDS, ..Self::index(index, base, range) }
    }
    /// One shard of a sharded query, as a plain one.
    fn shard(&self, n: u32) -> Self {
        Self { pk: format!("{}#{n:02}", self.pk), shards: 1, ..self.clone() }
    }
    /// Read the index entries only (their keys), not the base items.
    pub fn keys(mut self) -> Self {
        self.keys_only = true;
        self
    }
    pub fn backward(mut self) -> Self {
        self.forward = false;
        self
    }
    pub fn page(mut self, n: usize) -> Self {
        self.page = i32::try_from(n.clamp(1, 1000)).unwrap_or(1000);
        self
    }
    /// The sort-key attribute of this Query's index.
    pub fn sk_name(&self) -> String {
        self.index.map_or_else(|| "sk".to_owned(), |i| format!("{i}sk"))
    }
}

const BATCH_ATTEMPTS: u32 = 8;

pub(super) async fn backoff(attempt: u32) {
    let ms = 25u64 << attempt.min(6);
    tokio::time::sleep(Duration::from_millis(ms + fastrand::u64(0..ms))).await;
}

/// Items by their table key.
pub(super) type ByKey = std::collections::HashMap<(String, String), Item>;

/// The base items of index `entries` (of `index`, keys only) found in
/// `items`, in the entries' order; an item that has since left the entry's
/// place in the index (GSIs are eventually consistent) is dropped.
pub(super) fn placed<'a>(index: &str, entries: &[Item], items: &'a ByKey) -> Vec<&'a Item> {
    let (pk_name, sk_name) = (format!("{index}pk"), format!("{index}sk"));
    entries
        .iter()
        .filter_map(|e| {
            let item = items.get(&(e.str("pk")?, e.str("sk")?))?;
            (item.get(&pk_name) == e.get(&pk_name) && item.get(&sk_name) == e.get(&sk_name)).then_some(item)
        })
        .collect()
}

/// Items by their table key (an item without one left out).
pub(super) fn by_key(items: impl IntoIterator<Item = Item>) -> ByKey {
    items.into_iter().filter_map(|i| Some(((i.str("pk")?, i.str("sk")?), i))).collect()
}

impl DynamoStore {
    /// A Query request for `q`'s partition and sort-key range (table, index,
    /// key condition); reads of the base table are strongly consistent.
    fn keyed(&self, q: &Query) -> QueryFluentBuilder {
        let pk_name = q.index.map_or_else(|| "pk".to_owned(), |i| format!("{i}pk"));
        let mut req = self
            .client
            .query()
            .table_name(&self.table)
            .set_index_name(q.index.map(str::to_owned))
            .consistent_read(q.index.is_none())
            .expression_attribute_names("#pk", &pk_name)
            .expression_attribute_values(":pk", AttributeValue::S(q.pk.clone()));
        let cond = match &q.range {
            Range::All => "#pk = :pk".to_owned(),
            Range::Prefix(p) => {
                req = req.expression_attribute_values(":a", AttributeValue::S(p.clone()));
                "#pk = :pk AND begins_with(#sk, :a)".to_owned()
            }
            Range::Below(v) | Range::Above(v) | Range::AtLeast(v) => {
                req = req.expression_attribute_values(":a", AttributeValue::S(v.clone()));
                let op = match q.range {
                    Range::Below(_) => "<",
                    Range::Above(_) => ">",
                    _ => ">=",
                };
                format!("#pk = :pk AND #sk {op} :a")
            }
            Range::Between(lo, hi) => {
                req = req
                    .expression_attribute_values(":a", AttributeValue::S(lo.clone()))
                    .expression_attribute_values(":b", AttributeValue::S(hi.clone()));
                "#pk = :pk AND #sk BETWEEN :a AND :b".to_owned()
            }
        };
        if !matches!(q.range, Range::All) {
            req = req.expression_attribute_names("#sk", q.sk_name());
        }
        req.key_condition_expression(cond)
    }

    /// One page of `q` from `start`, as stored (index entries, not base
    /// items), and where the next page starts.
    async fn raw_page(&self, q: &Query, start: Option<Item>) -> Result<(Vec<Item>, Option<Item>), StoreError> {
        let out = self
            .keyed(q)
            .scan_index_forward(q.forward)
            .limit(q.page)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error("querying the store"))?;
        let items = out.items.unwrap_or_default();
        self.metered_query(&items, q.index.is_none());
        Ok((items, out.last_evaluated_key.filter(|k| !k.is_empty())))
    }

    /// Run `q`, handing items to `each` in key order until it returns false
    /// or the range ends. Reads of the base table are strongly consistent.
    pub(super) async fn query_each(&self, q: &Query, mut each: impl FnMut(Item) -> bool) -> Result<(), StoreError> {
        if q.shards > 1 {
            return self.query_merged(q, &mut each).await;
        }
        let mut start: Option<Item> = None;
        loop {
            let (items, next) = self.raw_page(q, start.take()).await?;
            let items = match q.index {
                Some(index) if !q.keys_only => self.hydrate(index, &q.pk, items).await?,
                _ => items,
            };
            for item in items {
                if !each(item) {
                    return Ok(());
                }
            }
            match next {
                Some(k) => start = Some(k),
                None => return Ok(()),
            }
        }
    }

    /// A sharded query: every shard read page by page (concurrently), their
    /// entries merged in sort-key order, handed over (as base items) a page at a time.
    async fn query_merged(&self, q: &Query, each: &mut impl FnMut(Item) -> bool) -> Result<(), StoreError> {
        struct Shard {
            q: Query,
            buffer: VecDeque<Item>,
            start: Option<Item>,
            done: bool,
        }
        let sk = q.sk_name();
        let mut shards: Vec<Shard> =
            (0..q.shards).map(|n| Shard { q: q.shard(n), buffer: VecDeque::new(), start: None, done: false }).collect();
        let mut batch = Vec::new();
        loop {
            let refill: Vec<usize> =
                (0..shards.len()).filter(|&i| shards[i].buffer.is_empty() && !shards[i].done).collect();
            let reads = refill
                .iter()
                .map(|&i| {
                    let (q, start) = (shards[i].q.clone(), shards[i].start.take());
                    Box::pin(async move { self.raw_page(&q, start).await })
                        as Task<'_, Result<(Vec<Item>, Option<Item>), StoreError>>
                })
                .collect();
            for (i, page) in refill.into_iter().zip(run_bounded(reads, 16).await) {
                let (items, next) = page?;
                shards[i].buffer.extend(items);
                shards[i].done = next.is_none();
                shards[i].start = next;
            }
            let heads = shards.iter().enumerate().filter_map(|(i, s)| Some((i, s.buffer.front()?.str(&sk))));
            let next = if q.forward { heads.min_by(|a, b| a.1.cmp(&b.1)) } else { heads.max_by(|a, b| a.1.cmp(&b.1)) };
            let last = next.is_none();
            if let Some((i, _)) = next {
                batch.extend(shards[i].buffer.pop_front());
            }
            if last || batch.len() >= q.page.max(1) as usize {
                let items = match q.index {
                    Some(index) if !q.keys_only => {
                        let mut out = Vec::with_capacity(batch.len());
                        // Entries of one shard hydrate against that shard's partition key.
                        let found = self.hydrate_any(index, std::mem::take(&mut batch)).await?;
                        out.extend(found);
                        out
                    }
                    _ => std::mem::take(&mut batch),
                };
                for item in items {
                    if !each(item) {
                        return Ok(());
                    }
                }
            }
            if last {
                return Ok(());
            }
        }
    }

    /// [`hydrate`](Self::hydrate) of entries from several partitions: each
    /// checked against the partition its entry was read from ([`placed`]).
    async fn hydrate_any(&self, index: &str, entries: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let keys = entries.iter().filter_map(|e| Some(key_of(e.str("pk")?, e.str("sk")?))).collect();
        let found = by_key(self.batch_get(keys).await?);
        Ok(placed(index, &entries, &found).into_iter().cloned().collect())
    }

    fn metered_query(&self, items: &[Item], consistent: bool) {
        if let Some(m) = &self.meter {
            m.query_page(items.iter().map(item_size).sum(), consistent);
        }
    }

    /// The base items of a page of index entries (KEYS_ONLY indexes), in the
    /// page's order. An entry whose item has since left that place in the
    /// index (GSIs are eventually consistent) is dropped: the item is read
    /// where it is now.
    async fn hydrate(&self, index: &str, pk: &str, entries: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let pk_name = format!("{index}pk");
        let entries = entries.into_iter().filter(|e| e.str(&pk_name).as_deref() == Some(pk)).collect();
        self.hydrate_any(index, entries).await
    }

    pub(super) async fn query_all(&self, q: &Query) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        self.query_each(q, |i| {
            items.push(i);
            true
        })
        .await?;
        Ok(items)
    }

    /// How many items `q`'s range holds (`Select: COUNT`; still reads them).
    pub(super) async fn count_in(&self, q: &Query) -> Result<u64, StoreError> {
        if q.shards > 1 {
            let mut total = 0;
            for n in 0..q.shards {
                total += Box::pin(self.count_in(&q.shard(n))).await?;
            }
            return Ok(total);
        }
        let mut total = 0u64;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .keyed(q)
                .select(Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(sdk_error("counting items"))?;
            total += u64::try_from(out.count).unwrap_or(0);
            if let Some(m) = &self.meter {
                // A COUNT returns no items: index entries (keys only) are about 150 bytes.
                m.query_page(usize::try_from(out.scanned_count).unwrap_or(0) * 150, q.index.is_none());
            }
            match out.last_evaluated_key {
                Some(k) if !k.is_empty() => start = Some(k),
                _ => return Ok(total),
            }
        }
    }

    /// An item by key, strongly consistent.
    pub(super) async fn get(&self, key: Item) -> Result<Option<Item>, StoreError> {
        self.get_with(key, true).await
    }

    /// [`Self::get`], strongly consistent or not (half the read units).
    pub(super) async fn get_with(&self, key: Item, consistent: bool) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(consistent)
            .send()
            .await
            .map_err(sdk_error("reading an item"))?;
        if let Some(m) = &self.meter {
            m.keyed_read(&out.item.iter().collect::<Vec<_>>(), 1, consistent);
        }
        Ok(out.item)
    }

    /// Items by key, 100 per BatchGetItem, unprocessed keys retried; absent keys
    /// are simply not returned (in no particular order). Strongly consistent.
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        self.batch_get_with(keys, true).await
    }

    /// [`Self::batch_get`], strongly consistent or not (half the read units).
    pub(super) async fn batch_get_with(&self, mut keys: Vec<Item>, consistent: bool) -> Result<Vec<Item>, StoreError> {
        // BatchGetItem refuses a request naming one key twice.
        let mut seen = std::collections::HashSet::new();
        keys.retain(|k| seen.insert((format!("{:?}", k.get("pk")), format!("{:?}", k.get("sk")))));
        let mut found = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(consistent)
                    .build()
                    .map_err(|e| StoreError::Internal(e.into()))?,
            );
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                let request_len = request.keys.len();
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(sdk_error("reading items in a batch"))?;
                let got = out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default();
                pending = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)).filter(|k| !k.keys.is_empty());
                if let Some(m) = &self.meter {
                    let asked = request_len - pending.as_ref().map_or(0, |k| k.keys.len());
                    m.keyed_read(&got.iter().collect::<Vec<_>>(), asked, consistent);
                }
                found.extend(got);
                if pending.is_some() {
                    attempt += 1;
                    if attempt >= BATCH_ATTEMPTS {
                        return Err(StoreError::Unavailable(anyhow::anyhow!("batch read left keys unprocessed")));
                    }
                    backoff(attempt).await;
                }
            }
        }
        Ok(found)
    }

    /// Puts and deletes, 25 per BatchWriteItem, unprocessed items retried with backoff.
    pub(super) async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = chunk.to_vec();
            let mut attempt = 0;
            while !pending.is_empty() {
                let sent = if self.meter.is_some() { pending.clone() } else { Vec::new() };
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(sdk_error("writing items in a batch"))?;
                let left = out.unprocessed_items.and_then(|mut u| u.remove(&self.table)).unwrap_or_default();
                if let Some(m) = &self.meter {
                    // Puts here create items (commits, checks); deletes drop whole items.
                    for done in sent.iter().filter(|r| !left.contains(r)) {
                        match (&done.put_request, &done.delete_request) {
                            (Some(p), _) => m.write(None, Some(&p.item)),
                            (_, Some(d)) => m.write(Some(&d.key), None),
                            _ => {}
                        }
                    }
                }
                pending = left;
                if !pending.is_empty() {
                    attempt += 1;
                    if attempt >= BATCH_ATTEMPTS {
                        return Err(StoreError::Unavailable(anyhow::anyhow!("batch write left items unprocessed")));
                    }
                    backoff(attempt).await;
                }
            }
        }
        Ok(())
    }

    /// One `UpdateItem`; false if its condition failed (an older write, skipped).
    pub(super) async fn update(&self, key: Item, u: Update) -> Result<bool, StoreError> {
        Ok(self.update_item(key, u).await?.is_some())
    }

    /// One `UpdateItem`: the item as it was before (`Some(None)`: created),
    /// or None if its condition failed (an older write, skipped).
    pub(super) async fn update_item(&self, key: Item, u: Update) -> Result<Option<Option<Item>>, StoreError> {
        Ok(self.update_item_or_current(key, u).await?.ok())
    }

    /// [`update_item`](Self::update_item), with the item that failed the
    /// condition (`Err`, when DynamoDB returned it).
    pub(super) async fn update_item_or_current(
        &self,
        key: Item,
        u: Update,
    ) -> Result<Result<Option<Item>, Option<Item>>, StoreError> {
        let metered = self.meter.as_ref().map(|_| (key.clone(), u.effects.clone()));
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(u.expression())
            .set_condition_expression(u.condition_expression())
            .set_expression_attribute_names(Some(u.names).filter(|m| !m.is_empty()))
            .set_expression_attribute_values(Some(u.values).filter(|m| !m.is_empty()))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let old = out.attributes.filter(|a| !a.is_empty());
                if let (Some(m), Some((key, effects))) = (&self.meter, metered) {
                    m.write(old.as_ref(), Some(&after(&key, old.as_ref(), &effects)));
                }
                Ok(Ok(old))
            }
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(f)) => {
                    if let Some(m) = &self.meter {
                        m.failed_write(f.item.as_ref());
                    }
                    Ok(Err(f.item.clone()))
                }
                _ => Err(sdk_error("writing an item")(e)),
            },
        }
    }

    /// Delete `key` if `condition` holds (or unconditionally); false if it did not hold.
    pub(super) async fn delete(&self, key: Item, condition: Option<Update>) -> Result<bool, StoreError> {
        let mut req = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(c) = condition {
            req = req
                .set_condition_expression(c.condition_expression())
                .set_expression_attribute_names(Some(c.names).filter(|m| !m.is_empty()))
                .set_expression_attribute_values(Some(c.values).filter(|m| !m.is_empty()));
        }
        match req.send().await {
            Ok(out) => {
                if let Some(m) = &self.meter {
                    let old = out.attributes.filter(|a| !a.is_empty());
                    m.write(old.as_ref(), None);
                }
                Ok(true)
            }
            Err(e) => match e.as_service_error() {
                Some(aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(f)) => {
                    if let Some(m) = &self.meter {
                        m.failed_write(f.item.as_ref());
                    }
                    Ok(false)
                }
                _ => Err(sdk_error("deleting an item")(e)),
            },
        }
    }
}

pub(super) fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
    let put = PutRequest::builder().set_item(Some(item)).build().map_err(|e| StoreError::Internal(e.into()))?;
    Ok(WriteRequest::builder().put_request(put).build())
}

pub(super) fn delete_request(key: Item) -> Result<WriteRequest, StoreError> {
    let delete = DeleteRequest::builder().set_key(Some(key)).build().map_err(|e| StoreError::Internal(e.into()))?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

/// A boxed future borrowed from the store.
pub(super) type Task<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Run `tasks` with at most `limit` in flight; outputs in the tasks' order.
pub(super) async fn run_bounded<T>(tasks: Vec<Task<'_, T>>, limit: usize) -> Vec<T> {
    let total = tasks.len();
    let mut waiting: VecDeque<(usize, Task<'_, T>)> = tasks.into_iter().enumerate().collect();
    let mut running: Vec<(usize, Task<'_, T>)> = Vec::new();
    let mut out: Vec<Option<T>> = std::iter::repeat_with(|| None).take(total).collect();
    std::future::poll_fn(|cx| {
        loop {
            while running.len() < limit.max(1)
                && let Some(next) = waiting.pop_front()
            {
                running.push(next);
            }
            let mut finished = false;
            let mut i = 0;
            while i < running.len() {
                if let Poll::Ready(v) = running[i].1.as_mut().poll(cx) {
                    let (index, _) = running.swap_remove(i);
                    out[index] = Some(v);
                    finished = true;
                } else {
                    i += 1;
                }
            }
            if running.is_empty() && waiting.is_empty() {
                return Poll::Ready(());
            }
            if !finished {
                return Poll::Pending;
            }
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
