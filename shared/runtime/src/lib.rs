//! `weft-runtime`: the process shell every Weft binary runs in.
//!
//! - [`cli`]: parse the command line, run until a signal, drain, exit code.
//! - [`config`]: flags ↔ `WEFT_*` environment ↔ YAML file, settings every control
//!   plane shares.
//! - [`supervise`]: named components in one set; the first to fail stops the rest.
//! - [`health`]: what each component reports for `/ready`.
//! - [`kuma_metrics`]: what metrics named as Kuma's share (its `zone` label, its
//!   default buckets, counters without `_total`).
//! - [`shutdown`], [`telemetry`].

pub mod cli;
pub mod config;
pub mod health;
pub mod kuma_metrics;
pub mod shutdown;
pub mod supervise;
pub mod telemetry;
