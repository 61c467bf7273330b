//! `weft-dp`: the dataplane agent (see run.rs).
