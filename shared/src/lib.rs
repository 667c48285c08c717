//! Octoscope: GitHub engineering analytics that is complete.
//!
//! This crate holds the product's core: domain types, webhook verification and
//! normalisation, ports (small traits), services over those ports, and the
//! adapters behind cargo features so that each binary links only what it uses.

pub mod adapters;
#[cfg(feature = "api")]
pub mod api;
pub mod config;
pub mod domain;
pub mod error;
pub mod ports;
pub mod read;
pub mod services;
pub mod webhook;
