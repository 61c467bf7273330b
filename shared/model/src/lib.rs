//! `weft-model`: the vocabulary every Weft component speaks, with no IO.
//!
//! - [`resource`]: Kuma-format resources, their validation and canonical encoding.
//! - [`rules`]: which policies select a proxy and how their confs merge, and the
//!   default policies a new mesh gets.
//! - [`proxy`]: what the zone's bootstrap and `weft-dp` agree on about a proxy.

pub mod proxy;
pub mod resource;
pub mod rules;
