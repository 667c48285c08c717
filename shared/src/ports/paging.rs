//! Pages and cursors: every list the API serves is cursor-paginated, with
//! cursors opaque to clients.

use base64::Engine as _;
use serde::{Serialize, de::DeserializeOwned};

use crate::error::StoreError;

/// A page request: at most `limit` items after the opaque `cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
}

impl PageRequest {
    pub const DEFAULT_LIMIT: usize = 50;
    pub const MAX_LIMIT: usize = 500;
    pub fn first(limit: usize) -> Self {
        Self { limit, cursor: None }
    }
}

/// A page of results: `{"items": [...], "next_cursor": "..." | null}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "api", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// Cursors are the last item's sort key, opaque to clients (base64url JSON).
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    let json = serde_json::to_vec(key).expect("cursor keys serialise");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> Result<K, StoreError> {
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(cursor).map_err(|_| StoreError::BadCursor)?;
    serde_json::from_slice(&json).map_err(|_| StoreError::BadCursor)
}

/// Build a page from up to `limit + 1` rows: the extra row only says there is more.
pub fn page_from<T, K: Serialize>(mut rows: Vec<T>, limit: usize, key: impl Fn(&T) -> K) -> Page<T> {
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|last| encode_cursor(&key(last)))
    } else {
        None
    };
    Page { items: rows, next_cursor }
}
