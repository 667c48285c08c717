//! The domain: what Octoscope knows about, in its own terms, free of any
//! store, cloud or HTTP type.
//!
//! - [`ids`]: parsed identifiers (repository names, delivery headers);
//! - [`delivery`]: a webhook delivery as the ledger and the archive see it;
//! - [`entities`]: pull requests, reviews, teams, runs, deployments, and the
//!   last-writer-wins [`Change`]s that write them;
//! - [`completeness`]: what the integrity check finds (gaps) and what the
//!   resync does about them (jobs);
//! - [`search`]: the typed search query and what a search finds;
//! - [`search_check`]: the search index compared with the store;
//! - [`notify`]: notification rules, transitions, notifications and attempts.

pub mod completeness;
pub mod delivery;
pub mod entities;
pub mod ids;
pub mod notify;
pub mod search;
pub mod search_check;

pub use completeness::*;
pub use delivery::*;
pub use entities::*;
pub use ids::*;
pub use notify::*;
pub use search::*;
pub use search_check::*;
