//! Ports: the small traits services depend on. Each has a real adapter per
//! mode (SQLite and files on one machine; DynamoDB, S3, SQS, ECS, SSM on
//! AWS), and services only ever see `Arc<dyn Port>`.

pub mod archive;
pub mod clock;
pub mod github;
pub mod indexing;
pub mod jobs;
pub mod notify;
pub mod paging;
pub mod search;
pub mod secrets;
pub mod store;

pub use archive::*;
pub use clock::*;
pub use github::*;
pub use indexing::*;
pub use jobs::*;
pub use notify::*;
pub use paging::*;
pub use search::*;
pub use secrets::*;
pub use store::*;
// The errors that cross these ports.
pub use crate::error::{
    ArchiveError, GapFailure, GitHubError, LaunchError, QueueError, ResyncError, SecretUnavailable, StoreError,
};
