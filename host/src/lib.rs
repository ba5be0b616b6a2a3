//! The Yiwang host: the plugin runtime and the city services it offers through
//! the `yiwang:gov` WIT package, with the HTTP API and the `yiwang` CLI on top.
//!
//! See ARCHITECTURE.md at the repository root for the map of this crate.

pub mod api;
pub mod app;
pub mod audit;
pub mod bundled;
pub mod bus;
pub mod calendar;
pub mod cases;
pub mod clock;
pub mod demo;
pub mod evaluation;
pub mod data;
pub mod db;
pub mod error;
pub mod identity;
pub mod media;
pub mod messaging;
pub mod metrics;
pub mod protocols;
pub mod runtime;
pub mod schedule;
pub mod services;
pub mod space;
pub mod ticks;
