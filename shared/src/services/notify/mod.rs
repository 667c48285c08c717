//! Notifications (shared/docs/notifications.md): which transitions the
//! rules care about ([`decide`]), and sending what was decided.

pub mod decide;
pub mod message;
pub mod send;
