//! `weft-shared`: the vocabulary every Weft component speaks.
//!
//! - [`resource`]: Kuma-format resources, their validation and canonical encoding.
//! - [`store`]: the `ResourceStore` trait with its sled and in-memory backends.

pub mod resource;
pub mod store;
