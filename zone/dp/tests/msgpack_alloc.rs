//! The MessagePack decoder never allocates from a length prefix alone: bytes
//! allocated while decoding stay within a constant times the input's length plus a
//! fixed allowance per nesting level, whatever lengths the headers declare. Counted
//! by a tracking global allocator, so this binary holds ONE test (no other thread
//! allocates meanwhile); an allocation past a hard ceiling aborts the binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cap::Cap;
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use std::alloc::System;
use weft_dp::msgpack::{MAX_DEPTH, Value, decode};

#[global_allocator]
static ALLOC: Cap<System> = Cap::new(System, usize::MAX);

/// Far above any legitimate decoding of the inputs here; an allocation past it fails.
const CEILING: usize = 256 * 1024 * 1024;

/// What decoding `len` bytes may allocate: every element kept costs at most a
/// `Value` (doubled by vector growth, pairs for maps, lossy UTF-8 up to three bytes
/// per byte), and each open array or map reserves at most 1024 slots ahead.
fn allowed(len: usize) -> usize {
    let slot = 2 * std::mem::size_of::<Value>();
    8 * slot * len + (MAX_DEPTH + 2) * 1024 * slot + 64 * 1024
}

/// Bytes allocated while decoding `buf` (dropping the result included).
fn allocated_by_decode(buf: &[u8]) -> usize {
    let before = ALLOC.total_allocated();
    ALLOC.set_limit(ALLOC.allocated() + CEILING).unwrap();
    let result = decode(buf);
    drop(result);
    ALLOC.set_limit(usize::MAX).unwrap();
    ALLOC.total_allocated() - before
}

#[test]
fn decoding_allocates_in_proportion_to_the_input() {
    // Allocation while decoding is bounded by the input's length, never by a declared length.
    let cfg = common::config(512);
    let mut runner = TestRunner::new(cfg.clone());
    let inputs = prop_oneof![
        common::length_bombs(),
        proptest::collection::vec(any::<u8>(), 0..512),
        (common::value(), any::<u64>(), common::edits()).prop_map(|(v, w, e)| {
            let mut buf = Vec::new();
            common::encode(&v, &mut w.clone(), &mut buf);
            common::mutate(buf, &e)
        }),
    ];
    runner
        .run(&inputs, |buf| {
            let used = allocated_by_decode(&buf);
            prop_assert!(
                used <= allowed(buf.len()),
                "decoding {} bytes allocated {used} (allowed {})",
                buf.len(),
                allowed(buf.len())
            );
            Ok(())
        })
        .unwrap();
    // The worst a header can do: the largest declared lengths, nested to the limit.
    for header in [
        &[0xdd, 0xff, 0xff, 0xff, 0xff][..],
        &[0xdf, 0xff, 0xff, 0xff, 0xff],
        &[0xdc, 0xff, 0xff],
    ] {
        let buf = header.repeat(MAX_DEPTH + 1);
        let used = allocated_by_decode(&buf);
        assert!(used <= allowed(buf.len()), "{header:02x?}: {used}");
    }
    for header in [
        &[0xdb, 0xff, 0xff, 0xff, 0xff][..],
        &[0xc6, 0xff, 0xff, 0xff, 0xff],
        &[0xc9, 0xff, 0xff, 0xff, 0xff],
    ] {
        assert!(allocated_by_decode(header) <= allowed(header.len()));
    }
}
