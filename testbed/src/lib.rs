//! Weft's testbed: run control planes for tests, in-process ([`inprocess`]) or
//! as real processes ([`process`]), and talk to their API ([`client`]).
//!
//! ```no_run
//! # async fn demo() {
//! let global = weft_testbed::inprocess::global().await;
//! let (status, body) = global.api.get("/meshes/default").await;
//! # }
//! ```

pub mod ads;
pub mod browser;
pub mod client;
pub mod docs;
pub mod echo;
pub mod inprocess;
pub mod mesh;
pub mod multizone;
pub mod openapi;
pub mod populated;
pub mod process;
pub mod wait;

pub use client::Client;
pub use process::{ControlPlane, Process, TestbedError};
