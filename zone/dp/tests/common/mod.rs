//! MessagePack test input shared by the fuzz tests: a reference encoder that picks
//! among the valid header widths, generated values, and byte-level mutations.

#![allow(dead_code)]

use proptest::prelude::*;
use weft_dp::msgpack::Value;

/// Cases per property: `default`, or `PROPTEST_CASES` when set.
pub fn config(default: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A value the decoder can produce (floats are never NaN, so values compare equal).
pub fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Int(i128::from(i))),
        any::<u64>().prop_map(|i| Value::Int(i128::from(i))),
        (-40i128..200).prop_map(Value::Int),
        any::<f64>()
            .prop_filter("not NaN", |f| !f.is_nan())
            .prop_map(Value::Float),
        any::<f32>()
            .prop_filter("not NaN", |f| !f.is_nan())
            .prop_map(|f| Value::Float(f64::from(f))),
        "\\PC{0,40}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bin),
        (any::<i8>(), proptest::collection::vec(any::<u8>(), 0..20))
            .prop_map(|(t, d)| Value::Ext(t, d)),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..4).prop_map(Value::Map),
        ]
    })
}

/// Next pseudo-random choice in `0..n` from `state` (picks header widths).
fn choose(state: &mut u64, n: u64) -> u64 {
    *state = state
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407);
    (*state >> 33) % n
}

/// Encodes `v`, choosing among the header widths that fit by `state`.
pub fn encode(v: &Value, state: &mut u64, out: &mut Vec<u8>) {
    match v {
        Value::Nil => out.push(0xc0),
        Value::Bool(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(i) => encode_int(*i, state, out),
        Value::Float(f) => {
            let narrow = f64::from(*f as f32);
            if narrow.to_bits() == f.to_bits() && choose(state, 2) == 0 {
                out.push(0xca);
                out.extend((*f as f32).to_bits().to_be_bytes());
            } else {
                out.push(0xcb);
                out.extend(f.to_bits().to_be_bytes());
            }
        }
        Value::Str(s) => {
            header(s.len(), Some((0xa0, 31)), [0xd9, 0xda, 0xdb], state, out);
            out.extend(s.as_bytes());
        }
        Value::Bin(b) => {
            header(b.len(), None, [0xc4, 0xc5, 0xc6], state, out);
            out.extend(b);
        }
        Value::Array(items) => {
            header(items.len(), Some((0x90, 15)), [0, 0xdc, 0xdd], state, out);
            for x in items {
                encode(x, state, out);
            }
        }
        Value::Map(pairs) => {
            header(pairs.len(), Some((0x80, 15)), [0, 0xde, 0xdf], state, out);
            for (k, x) in pairs {
                encode(k, state, out);
                encode(x, state, out);
            }
        }
        Value::Ext(t, d) => {
            let fixed = match d.len() {
                1 => Some(0xd4),
                2 => Some(0xd5),
                4 => Some(0xd6),
                8 => Some(0xd7),
                16 => Some(0xd8),
                _ => None,
            };
            match fixed {
                Some(b) if choose(state, 2) == 0 => out.push(b),
                _ => header(d.len(), None, [0xc7, 0xc8, 0xc9], state, out),
            }
            out.push(*t as u8);
            out.extend(d);
        }
    }
}

/// A length header: the fix form (`base | n` up to `max`) or one of the 8/16/32-bit
/// forms (`wide[0]` 0 when there is no 8-bit form), any that fits.
fn header(n: usize, fix: Option<(u8, usize)>, wide: [u8; 3], state: &mut u64, out: &mut Vec<u8>) {
    let mut forms = Vec::new();
    if let Some((_, max)) = fix
        && n <= max
    {
        forms.push(0);
    }
    if wide[0] != 0 && n <= 0xff {
        forms.push(1);
    }
    if n <= 0xffff {
        forms.push(2);
    }
    forms.push(3);
    match forms[choose(state, forms.len() as u64) as usize] {
        0 => out.push(fix.map_or(0, |(base, _)| base) | n as u8),
        1 => out.extend([wide[0], n as u8]),
        2 => {
            out.push(wide[1]);
            out.extend((n as u16).to_be_bytes());
        }
        _ => {
            out.push(wide[2]);
            out.extend((n as u32).to_be_bytes());
        }
    }
}

fn encode_int(i: i128, state: &mut u64, out: &mut Vec<u8>) {
    let mut forms: Vec<u8> = Vec::new();
    if (0..=0x7f).contains(&i) {
        forms.push(0x00);
    }
    if (-32..0).contains(&i) {
        forms.push(0xe0);
    }
    if i >= 0 {
        for (b, max) in [
            (0xcc, u64::from(u8::MAX)),
            (0xcd, u64::from(u16::MAX)),
            (0xce, u64::from(u32::MAX)),
            (0xcf, u64::MAX),
        ] {
            if i <= i128::from(max) {
                forms.push(b);
            }
        }
    }
    for (b, min, max) in [
        (0xd0, i64::from(i8::MIN), i64::from(i8::MAX)),
        (0xd1, i64::from(i16::MIN), i64::from(i16::MAX)),
        (0xd2, i64::from(i32::MIN), i64::from(i32::MAX)),
        (0xd3, i64::MIN, i64::MAX),
    ] {
        if (i128::from(min)..=i128::from(max)).contains(&i) {
            forms.push(b);
        }
    }
    let form = forms[choose(state, forms.len() as u64) as usize];
    match form {
        0x00 | 0xe0 => out.push(i as i8 as u8),
        0xcc => out.extend([0xcc, i as u8]),
        0xcd => {
            out.push(0xcd);
            out.extend((i as u16).to_be_bytes());
        }
        0xce => {
            out.push(0xce);
            out.extend((i as u32).to_be_bytes());
        }
        0xcf => {
            out.push(0xcf);
            out.extend((i as u64).to_be_bytes());
        }
        0xd0 => out.extend([0xd0, i as i8 as u8]),
        0xd1 => {
            out.push(0xd1);
            out.extend((i as i16).to_be_bytes());
        }
        0xd2 => {
            out.push(0xd2);
            out.extend((i as i32).to_be_bytes());
        }
        _ => {
            out.push(0xd3);
            out.extend((i as i64).to_be_bytes());
        }
    }
}

/// Byte-level edits (flip, delete, insert, truncate); positions modulo the length.
pub fn edits() -> impl Strategy<Value = Vec<(u8, usize, Vec<u8>)>> {
    let data = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..6),
        // Headers declaring the largest lengths, with nothing behind them.
        prop::sample::select(vec![
            vec![0xdd, 0xff, 0xff, 0xff, 0xff],
            vec![0xdf, 0xff, 0xff, 0xff, 0xff],
            vec![0xdb, 0xff, 0xff, 0xff, 0xff],
            vec![0xc6, 0xff, 0xff, 0xff, 0xff],
            vec![0xc9, 0xff, 0xff, 0xff, 0xff],
            vec![0xdc, 0xff, 0xff],
            vec![0x9f],
            vec![0x8f],
        ]),
    ];
    proptest::collection::vec((any::<u8>(), any::<usize>(), data), 1..5)
}

pub fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, Vec<u8>)]) -> Vec<u8> {
    for (kind, at, data) in edits {
        let len = bytes.len();
        let i = if len == 0 { 0 } else { at % len };
        match kind % 4 {
            0 => {
                if let Some(b) = bytes.get_mut(i) {
                    *b ^= data.first().copied().unwrap_or(1) | 1;
                }
            }
            1 => {
                let end = (i + data.len().max(1)).min(len);
                bytes.drain(i.min(len)..end);
            }
            2 => {
                bytes.splice(i..i, data.iter().copied());
            }
            _ => bytes.truncate(i),
        }
    }
    bytes
}

/// Input made of headers with huge declared lengths (arrays, maps, strings, bins,
/// exts at every width) and little else: what would make a decoder that trusts
/// length prefixes allocate without bound.
pub fn length_bombs() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        prop::sample::select(vec![
            0xc4u8, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf,
        ])
        .prop_flat_map(|b| {
            let width = match b {
                0xc4 | 0xc7 | 0xd9 => 1,
                0xc5 | 0xc8 | 0xda | 0xdc | 0xde => 2,
                _ => 4,
            };
            proptest::collection::vec(prop_oneof![Just(0xffu8), any::<u8>()], width).prop_map(
                move |len| {
                    let mut v = vec![b];
                    v.extend(len);
                    v
                },
            )
        }),
        prop::sample::select(vec![
            vec![0x9f],
            vec![0x8f],
            vec![0xbf],
            vec![0x01],
            vec![0xc0]
        ]),
    ];
    proptest::collection::vec(piece, 1..64).prop_map(|pieces| pieces.concat())
}
