//! The conditional-request cache of REST reads.

use super::*;

/// Answers to REST GETs kept by URL with their `ETag`, so a repeated read is
/// sent as a conditional request: a `304 Not Modified` (which GitHub does not
/// count against the rate limit) is answered from here. Bounded by entries
/// and bytes; the oldest entries go first.
pub(crate) struct EtagCache {
    pub(super) inner: Mutex<CacheInner>,
    pub(super) max_entries: usize,
    pub(super) max_bytes: usize,
}

#[derive(Default)]
pub(super) struct CacheInner {
    pub(super) entries: HashMap<String, Cached>,
    /// Insertion order, oldest first (a key appears once).
    pub(super) order: VecDeque<String>,
    pub(super) bytes: usize,
}

#[derive(Clone)]
pub(super) struct Cached {
    pub(super) etag: http::HeaderValue,
    pub(super) headers: HeaderMap,
    pub(super) body: Vec<u8>,
}

impl EtagCache {
    /// Entries kept at most, and bytes of bodies kept at most.
    pub const DEFAULT_ENTRIES: usize = 2_048;
    pub const DEFAULT_BYTES: usize = 64 * 1024 * 1024;

    pub fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self { inner: Mutex::new(CacheInner::default()), max_entries, max_bytes }
    }

    pub(super) fn get(&self, key: &str) -> Option<Cached> {
        self.inner.lock().ok()?.entries.get(key).cloned()
    }

    pub(super) fn put(&self, key: &str, value: Cached) {
        if value.body.len() > self.max_bytes / 8 || self.max_entries == 0 {
            return; // one huge answer would push out everything else
        }
        let Ok(mut inner) = self.inner.lock() else { return };
        if let Some(old) = inner.entries.remove(key) {
            inner.bytes -= old.body.len();
            inner.order.retain(|k| k != key);
        }
        inner.bytes += value.body.len();
        inner.entries.insert(key.to_owned(), value);
        inner.order.push_back(key.to_owned());
        while inner.entries.len() > self.max_entries || inner.bytes > self.max_bytes {
            let Some(oldest) = inner.order.pop_front() else { break };
            if let Some(gone) = inner.entries.remove(&oldest) {
                inner.bytes -= gone.body.len();
            }
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.inner.lock().map(|i| i.entries.len()).unwrap_or_default()
    }
}
