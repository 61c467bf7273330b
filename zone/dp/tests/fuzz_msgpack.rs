//! Fuzzing of weft-dp's MessagePack decoder (the access-log sink reads what Envoy
//! writes to its socket) and of the forward-protocol reading on top of it, with
//! proptest: arbitrary bytes, round trips of generated values through every header
//! width, truncations, and mutations of valid input. The decoder must never panic;
//! a complete value must decode the same with anything after it, and every strict
//! prefix of it must ask for more bytes (`Incomplete`), so a stream decodes as it
//! arrives. Allocation bounds are in `msgpack_alloc.rs`.
//!
//! `PROPTEST_CASES=100000 cargo test -p weft-dp --test fuzz_msgpack` runs longer.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{config, edits, encode, length_bombs, mutate, value};
use proptest::prelude::*;
use weft_dp::msgpack::{DecodeError, Value, decode, write_str};
use weft_dp::sink::parse_message;

/// What must hold for any input: no panic; a decoded value took 1..=len bytes,
/// decodes alike from exactly those bytes, and each strict prefix is Incomplete;
/// the sink's message reading copes with whatever was decoded.
fn check(buf: &[u8]) -> Result<(), TestCaseError> {
    match decode(buf) {
        Ok((v, used)) => {
            prop_assert!(
                used >= 1 && used <= buf.len(),
                "used {used} of {}",
                buf.len()
            );
            // Compared as text: a decoded NaN is not equal to itself.
            let again = decode(&buf[..used]);
            prop_assert_eq!(
                format!("{again:?}"),
                format!("{:?}", Ok::<_, DecodeError>((&v, used)))
            );
            for cut in 0..used {
                prop_assert_eq!(
                    decode(&buf[..cut]),
                    Err(DecodeError::Incomplete),
                    "prefix {}",
                    cut
                );
            }
            let _ = parse_message(v);
        }
        Err(DecodeError::Incomplete) => {}
        Err(DecodeError::Invalid(why)) => prop_assert!(!why.is_empty()),
    }
    Ok(())
}

/// An access-log message as Envoy's Fluentd logger sends it (Forward mode).
fn forward(tag: &str, lines: &[String], chunk: Option<&str>) -> Vec<u8> {
    let mut out = vec![if chunk.is_some() { 0x93 } else { 0x92 }];
    write_str(&mut out, tag);
    out.push(0xdc);
    out.extend((lines.len() as u16).to_be_bytes());
    for l in lines {
        out.extend([0x92, 0xce, 0, 0, 0, 1, 0x81]);
        write_str(&mut out, "message");
        write_str(&mut out, l);
    }
    if let Some(c) = chunk {
        out.push(0x81);
        write_str(&mut out, "chunk");
        write_str(&mut out, c);
    }
    out
}

proptest! {
    #![proptest_config(config(1024))]

    // Arbitrary bytes.
    #[test]
    fn arbitrary_bytes(buf in proptest::collection::vec(any::<u8>(), 0..256)) {
        check(&buf)?;
    }

    // Headers declaring huge lengths with little behind them: Incomplete or Invalid, promptly.
    #[test]
    fn length_prefixes(buf in length_bombs()) {
        check(&buf)?;
    }
}

proptest! {
    #![proptest_config(config(512))]

    // Any value, encoded with any valid header widths, decodes to itself, with trailing bytes ignored.
    #[test]
    fn round_trip(v in value(), widths in any::<u64>(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
        let mut buf = Vec::new();
        encode(&v, &mut widths.clone(), &mut buf);
        let n = buf.len();
        prop_assert_eq!(decode(&buf), Ok((v.clone(), n)));
        buf.extend(&tail);
        prop_assert_eq!(decode(&buf), Ok((v, n)));
        check(&buf)?;
    }

    // A valid encoding with a few bytes flipped, removed, inserted or cut off.
    #[test]
    fn mutated_values(v in value(), widths in any::<u64>(), e in edits()) {
        let mut buf = Vec::new();
        encode(&v, &mut widths.clone(), &mut buf);
        check(&mutate(buf, &e))?;
    }

    // A forward-protocol message, whole, cut anywhere or mutated: the sink's reading
    // gets the lines and the chunk back from the whole one and never panics on the rest.
    #[test]
    fn forward_messages(
        lines in proptest::collection::vec("\\PC{0,30}", 0..4),
        chunk in proptest::option::of("[a-zA-Z0-9]{1,12}"),
        e in edits(),
    ) {
        let msg = forward("weft.tcp.127.0.0.1:5170", &lines, chunk.as_deref());
        let (v, used) = decode(&msg).unwrap();
        prop_assert_eq!(used, msg.len());
        let (tag, got, ack) = parse_message(v).unwrap();
        prop_assert_eq!(tag, "weft.tcp.127.0.0.1:5170");
        prop_assert_eq!(got.len(), lines.len());
        prop_assert_eq!(ack, chunk);
        check(&msg)?;
        check(&mutate(msg, &e))?;
    }
}

#[test]
fn nesting_is_bounded() {
    // Arrays and maps nested past MAX_DEPTH are Invalid however they are written, not a stack overflow.
    for open in [
        &[0x91u8][..],
        &[0x81, 0xc0],
        &[0xdc, 0, 1],
        &[0xdf, 0, 0, 0, 1, 0xc0],
    ] {
        let buf: Vec<u8> = open
            .iter()
            .copied()
            .cycle()
            .take(open.len() * 100_000)
            .collect();
        assert!(
            matches!(decode(&buf), Err(DecodeError::Invalid(_))),
            "{open:02x?}"
        );
    }
    let _ = Value::Nil;
}
