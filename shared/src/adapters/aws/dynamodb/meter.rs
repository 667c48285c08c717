//! The cost meter: write and read request units counted as DynamoDB on-demand
//! bills them, from the items' sizes. moto answers `ReturnConsumedCapacity`
//! with a constant (1 or 0.5 a call, whatever was written), so the units are
//! computed here, by AWS's rules (`shared/docs/dynamodb.md`, "Cost"):
//!
//! - a write costs 1 WRU per started KB of the larger of the item before and
//!   after it, on the table; a failed condition costs the same as the write
//!   would have (at least 1);
//! - each GSI whose entry changes costs 1 WRU per started KB of the entry
//!   (keys and projected attributes): an entry added or removed is one write,
//!   a key change is a delete plus a put (two), an entry whose projection is
//!   unchanged costs nothing; a transactional write costs twice;
//! - a strongly consistent read costs 1 RRU per started 4 KB (GetItem: of the
//!   item; BatchGetItem: per item; Query: of all the items a page read), an
//!   eventually consistent one (every GSI Query) half that.
//!
//! The meter is off in production (`DynamoStore::new`); `make bench-cost` and
//! the cost tests attach one (`DynamoStore::with_meter`). With
//! `OCTOSCOPE_METER_TRACE` set, each metered request is printed to stderr
//! (which meter, the items' keys, the units): what a bench's units are spent
//! on, item kind by item kind (shared/docs/dynamodb.md, "Where the units go").

use std::sync::atomic::{AtomicU64, Ordering};

use aws_sdk_dynamodb::types::AttributeValue;

use super::codec::{Effect, Item};
use super::{INDEXES, Projected, projection};

/// Request units consumed through one store, in thousandths.
#[derive(Debug, Default)]
pub struct CostMeter {
    wru: AtomicU64,
    rru: AtomicU64,
}

impl CostMeter {
    pub fn new() -> CostMeter {
        CostMeter::default()
    }

    /// Write request units so far.
    pub fn wru(&self) -> f64 {
        self.wru.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// Read request units so far.
    pub fn rru(&self) -> f64 {
        self.rru.load(Ordering::Relaxed) as f64 / 1000.0
    }

    fn add_wru(&self, units: f64) {
        self.wru.fetch_add((units * 1000.0).round() as u64, Ordering::Relaxed);
    }

    fn add_rru(&self, units: f64) {
        self.rru.fetch_add((units * 1000.0).round() as u64, Ordering::Relaxed);
    }

    /// A write that took the item from `old` to `new` (None: absent).
    pub(super) fn write(&self, old: Option<&Item>, new: Option<&Item>) {
        let units = write_units(old, new);
        if traced() {
            let key = |k: &str| new.or(old).and_then(|i| i.get(k)).and_then(|v| v.as_s().ok()).cloned();
            let (pk, sk) = (key("pk").unwrap_or_default(), key("sk").unwrap_or_default());
            let size = new.map_or(0, item_size).max(old.map_or(0, item_size));
            eprintln!("meter: write {:p} {pk} {sk} {size} B: {units} WRU", self);
        }
        self.add_wru(units);
    }

    /// A write whose condition failed: its table units, no index writes.
    pub(super) fn failed_write(&self, old: Option<&Item>) {
        let units = kb(old.map_or(0, item_size)).max(1.0);
        if traced() {
            let key = |k: &str| old.and_then(|i| i.get(k)).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            eprintln!("meter: failed {:p} {} {}: {units} WRU", self, key("pk"), key("sk"));
        }
        self.add_wru(units);
    }

    /// A read of items by key (GetItem, BatchGetItem): per item; an absent one still costs a unit.
    pub(super) fn keyed_read(&self, found: &[&Item], asked: usize, consistent: bool) {
        let half = if consistent { 1.0 } else { 0.5 };
        let units: f64 = found.iter().map(|i| four_kb(item_size(i)).max(1.0)).sum::<f64>()
            + asked.saturating_sub(found.len()) as f64;
        if traced() {
            let key = |i: &Item, k: &str| i.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
            let keys: Vec<String> = found.iter().map(|i| format!("{}|{}", key(i, "pk"), key(i, "sk"))).collect();
            let absent = asked.saturating_sub(found.len());
            eprintln!("meter: read {:p} {} RRU, {absent} absent: {}", self, units * half, keys.join(" "));
        }
        self.add_rru(units * half);
    }

    /// One Query page that read `bytes` of items.
    pub(super) fn query_page(&self, bytes: usize, consistent: bool) {
        let half = if consistent { 1.0 } else { 0.5 };
        if traced() {
            eprintln!("meter: query {:p} {} RRU, {bytes} B", self, four_kb(bytes).max(1.0) * half);
        }
        self.add_rru(four_kb(bytes).max(1.0) * half);
    }
}

/// Whether `OCTOSCOPE_METER_TRACE` is set (read once).
fn traced() -> bool {
    static TRACED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACED.get_or_init(|| std::env::var_os("OCTOSCOPE_METER_TRACE").is_some())
}

fn kb(bytes: usize) -> f64 {
    bytes.div_ceil(1024) as f64
}

fn four_kb(bytes: usize) -> f64 {
    bytes.div_ceil(4096) as f64
}

/// The units of one write (table and indexes), by the rules above.
pub(super) fn write_units(old: Option<&Item>, new: Option<&Item>) -> f64 {
    let size = old.map_or(0, item_size).max(new.map_or(0, item_size));
    let mut units = kb(size).max(1.0);
    for index in INDEXES {
        let (before, after) = (old.and_then(|i| entry(i, index)), new.and_then(|i| entry(i, index)));
        units += match (&before, &after) {
            (None, None) => 0.0,
            (None, Some(a)) => kb(item_size(a)).max(1.0),
            (Some(b), None) => kb(item_size(b)).max(1.0),
            (Some(b), Some(a)) if b == a => 0.0,
            (Some(b), Some(a)) if same_keys(b, a, index) => kb(item_size(a).max(item_size(b))).max(1.0),
            (Some(b), Some(a)) => kb(item_size(b)).max(1.0) + kb(item_size(a)).max(1.0),
        };
    }
    units
}

fn same_keys(a: &Item, b: &Item, index: &str) -> bool {
    let (pk, sk) = (format!("{index}pk"), format!("{index}sk"));
    a.get(&pk) == b.get(&pk) && a.get(&sk) == b.get(&sk)
}

/// An item's entry in `index`: None when it lacks the index's keys (sparse).
pub(super) fn entry(item: &Item, index: &str) -> Option<Item> {
    let (pk, sk) = (format!("{index}pk"), format!("{index}sk"));
    if !item.contains_key(&pk) || !item.contains_key(&sk) {
        return None;
    }
    let keep = |name: &str| match projection(index) {
        Projected::KeysOnly => false,
        Projected::Include(names) => names.contains(&name),
    };
    Some(
        item.iter()
            .filter(|(k, _)| matches!(k.as_str(), "pk" | "sk") || **k == pk || **k == sk || keep(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

/// The item after an update's `effects` are applied to `old` (what DynamoDB would store).
pub(super) fn after(key: &Item, old: Option<&Item>, effects: &[(String, Effect)]) -> Item {
    let mut item = old.cloned().unwrap_or_else(|| key.clone());
    for (attr, effect) in effects {
        match effect {
            Effect::Set(v) => {
                item.insert(attr.clone(), v.clone());
            }
            Effect::Init(v) => {
                item.entry(attr.clone()).or_insert_with(|| v.clone());
            }
            Effect::Remove => {
                item.remove(attr);
            }
            Effect::Add(by) => {
                let was = match item.get(attr) {
                    Some(AttributeValue::N(v)) => v.parse::<i64>().unwrap_or(0),
                    _ => 0,
                };
                item.insert(attr.clone(), AttributeValue::N((was + by).to_string()));
            }
        }
    }
    item
}

/// An item's size as DynamoDB counts it: attribute names plus values.
pub(super) fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::L(v) => 3 + v.iter().map(|x| 1 + value_size(x)).sum::<usize>(),
        AttributeValue::M(m) => 3 + m.iter().map(|(k, x)| 1 + k.len() + value_size(x)).sum::<usize>(),
        _ => 1,
    }
}

/// Numbers: about one byte per two significant digits, plus one.
fn number_size(n: &str) -> usize {
    let digits = n.trim_start_matches(['-', '0']).chars().filter(char::is_ascii_digit).count().max(1);
    digits.div_ceil(2) + 1
}

#[cfg(test)]
mod tests {
    use super::super::codec::{key_of, s};
    use super::*;

    fn item(pairs: &[(&str, &str)]) -> Item {
        let mut i = key_of("P", "S");
        for (k, v) in pairs {
            i.insert((*k).to_owned(), s(*v));
        }
        i
    }

    #[test]
    fn a_new_item_with_one_index_entry_costs_two_units_and_a_rewrite_of_the_same_costs_one() {
        let new = item(&[("gsi1pk", "A"), ("gsi1sk", "1"), ("title", "x")]);
        assert_eq!(write_units(None, Some(&new)), 2.0);
        let retitled = item(&[("gsi1pk", "A"), ("gsi1sk", "1"), ("title", "y")]);
        // KEYS_ONLY: a non-key attribute change writes no index entry
        assert_eq!(write_units(Some(&new), Some(&retitled)), 1.0);
    }

    #[test]
    fn an_index_key_change_is_a_delete_and_a_put() {
        let a = item(&[("gsi1pk", "A"), ("gsi1sk", "1")]);
        let b = item(&[("gsi1pk", "A"), ("gsi1sk", "2")]);
        assert_eq!(write_units(Some(&a), Some(&b)), 3.0);
        let gone = item(&[]);
        assert_eq!(write_units(Some(&a), Some(&gone)), 2.0);
    }

    #[test]
    fn items_over_a_kilobyte_cost_a_unit_per_started_kilobyte() {
        let big = item(&[("body", &"x".repeat(1500))]);
        assert_eq!(write_units(None, Some(&big)), 2.0);
        assert_eq!(item_size(&item(&[("ab", "cde")])), 2 + 1 + 2 + 1 + 2 + 3);
    }
}
