//! The subset of MessagePack the access-log sink reads: every type decoded into a
//! [`Value`] (nesting bounded), with "need more bytes" told apart from bad input so
//! a stream can be decoded as it arrives; and the one map it writes (a Fluentd ack).

/// A decoded MessagePack value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Bin(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Ext(i8, Vec<u8>),
}

impl Value {
    /// The text of a `str` (or UTF-8 `bin`) value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Bin(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The value under the string key `key` of a map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("the message is not complete yet")]
    Incomplete,
    #[error("not MessagePack: {0}")]
    Invalid(String),
}

/// Deepest nesting accepted (arrays / maps inside each other).
pub const MAX_DEPTH: usize = 32;

/// Decodes one value from the front of `buf`: the value and how many bytes it took.
pub fn decode(buf: &[u8]) -> Result<(Value, usize), DecodeError> {
    let mut r = Reader { buf, pos: 0 };
    let v = r.value(0)?;
    Ok((v, r.pos))
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Incomplete)?;
        let s = self.buf.get(self.pos..end).ok_or(DecodeError::Incomplete)?;
        self.pos = end;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, DecodeError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    fn len(&mut self, n: usize) -> Result<usize, DecodeError> {
        let l = self.uint(n)?;
        let l = usize::try_from(l).map_err(|_| DecodeError::Invalid("length too large".into()))?;
        // Each element takes at least one byte: a length past the buffer's end is
        // only known to be complete once those bytes arrive, so do not pre-allocate.
        Ok(l)
    }

    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, DecodeError> {
        Ok(self.take(n)?.to_vec())
    }

    fn str(&mut self, n: usize) -> Result<Value, DecodeError> {
        let b = self.take(n)?;
        Ok(Value::Str(String::from_utf8_lossy(b).into_owned()))
    }

    fn array(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            out.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(out))
    }

    fn map(&mut self, n: usize, depth: usize) -> Result<Value, DecodeError> {
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let k = self.value(depth + 1)?;
            let v = self.value(depth + 1)?;
            out.push((k, v));
        }
        Ok(Value::Map(out))
    }

    fn ext(&mut self, n: usize) -> Result<Value, DecodeError> {
        let ty = self.take(1)?[0] as i8;
        Ok(Value::Ext(ty, self.bytes(n)?))
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::Invalid(format!(
                "nested deeper than {MAX_DEPTH} levels"
            )));
        }
        let b = self.take(1)?[0];
        Ok(match b {
            0x00..=0x7f => Value::Int(i128::from(b)),
            0x80..=0x8f => self.map(usize::from(b & 0x0f), depth)?,
            0x90..=0x9f => self.array(usize::from(b & 0x0f), depth)?,
            0xa0..=0xbf => self.str(usize::from(b & 0x1f))?,
            0xc0 => Value::Nil,
            0xc1 => return Err(DecodeError::Invalid("the reserved byte 0xc1".into())),
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4 => {
                let n = self.len(1)?;
                Value::Bin(self.bytes(n)?)
            }
            0xc5 => {
                let n = self.len(2)?;
                Value::Bin(self.bytes(n)?)
            }
            0xc6 => {
                let n = self.len(4)?;
                Value::Bin(self.bytes(n)?)
            }
            0xc7 => {
                let n = self.len(1)?;
                self.ext(n)?
            }
            0xc8 => {
                let n = self.len(2)?;
                self.ext(n)?
            }
            0xc9 => {
                let n = self.len(4)?;
                self.ext(n)?
            }
            0xca => Value::Float(f64::from(f32::from_bits(self.uint(4)? as u32))),
            0xcb => Value::Float(f64::from_bits(self.uint(8)?)),
            0xcc => Value::Int(i128::from(self.uint(1)?)),
            0xcd => Value::Int(i128::from(self.uint(2)?)),
            0xce => Value::Int(i128::from(self.uint(4)?)),
            0xcf => Value::Int(i128::from(self.uint(8)?)),
            0xd0 => Value::Int(i128::from(self.uint(1)? as u8 as i8)),
            0xd1 => Value::Int(i128::from(self.uint(2)? as u16 as i16)),
            0xd2 => Value::Int(i128::from(self.uint(4)? as u32 as i32)),
            0xd3 => Value::Int(i128::from(self.uint(8)? as i64)),
            0xd4 => self.ext(1)?,
            0xd5 => self.ext(2)?,
            0xd6 => self.ext(4)?,
            0xd7 => self.ext(8)?,
            0xd8 => self.ext(16)?,
            0xd9 => {
                let n = self.len(1)?;
                self.str(n)?
            }
            0xda => {
                let n = self.len(2)?;
                self.str(n)?
            }
            0xdb => {
                let n = self.len(4)?;
                self.str(n)?
            }
            0xdc => {
                let n = self.len(2)?;
                self.array(n, depth)?
            }
            0xdd => {
                let n = self.len(4)?;
                self.array(n, depth)?
            }
            0xde => {
                let n = self.len(2)?;
                self.map(n, depth)?
            }
            0xdf => {
                let n = self.len(4)?;
                self.map(n, depth)?
            }
            0xe0..=0xff => Value::Int(i128::from(b as i8)),
        })
    }
}

/// Appends a MessagePack `str`.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let b = s.as_bytes();
    match b.len() {
        n @ 0..=31 => out.push(0xa0 | n as u8),
        n @ 32..=0xff => out.extend([0xd9, n as u8]),
        n @ 0x100..=0xffff => {
            out.push(0xda);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(0xdb);
            out.extend((n.min(u32::MAX as usize) as u32).to_be_bytes());
        }
    }
    out.extend(b);
}

/// `{"ack": chunk}`: the Fluentd forward protocol's acknowledgement.
pub fn ack(chunk: &str) -> Vec<u8> {
    let mut out = vec![0x81];
    write_str(&mut out, "ack");
    write_str(&mut out, chunk);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    // Every family decodes, with the byte count consumed.
    #[test]
    fn decodes_each_type() {
        let cases: Vec<(Vec<u8>, Value)> = vec![
            (vec![0x05], Value::Int(5)),
            (vec![0xff], Value::Int(-1)),
            (vec![0xcd, 0x01, 0x00], Value::Int(256)),
            (
                vec![0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
                Value::Int(-2),
            ),
            (vec![0xc0], Value::Nil),
            (vec![0xc3], Value::Bool(true)),
            (vec![0xa2, b'h', b'i'], Value::Str("hi".into())),
            (vec![0xc4, 0x01, 0x07], Value::Bin(vec![7])),
            (
                vec![0x92, 0x01, 0xa1, b'x'],
                Value::Array(vec![Value::Int(1), Value::Str("x".into())]),
            ),
            (
                vec![0x81, 0xa1, b'k', 0xc2],
                Value::Map(vec![(Value::Str("k".into()), Value::Bool(false))]),
            ),
            (
                vec![0xd7, 0x00, 0, 0, 0, 1, 0, 0, 0, 2],
                Value::Ext(0, vec![0, 0, 0, 1, 0, 0, 0, 2]),
            ),
            (vec![0xcb, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0], Value::Float(1.0)),
        ];
        for (bytes, want) in cases {
            let (v, n) = decode(&bytes).unwrap();
            assert_eq!(v, want, "{bytes:02x?}");
            assert_eq!(n, bytes.len());
        }
    }

    // A truncated value is Incomplete (wait for more), a bad byte or deep nesting Invalid.
    #[test]
    fn incomplete_and_invalid() {
        let full = [0x92, 0xa3, b'a', b'b', b'c', 0x01];
        for cut in 0..full.len() {
            assert_eq!(decode(&full[..cut]).unwrap_err(), DecodeError::Incomplete);
        }
        assert!(matches!(decode(&[0xc1]), Err(DecodeError::Invalid(_))));
        let deep = vec![0x91; MAX_DEPTH + 5];
        assert!(matches!(decode(&deep), Err(DecodeError::Invalid(_))));
        // A huge declared length with no bytes behind it waits instead of allocating.
        assert_eq!(
            decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]).unwrap_err(),
            DecodeError::Incomplete
        );
    }

    // The ack round-trips; long strings use the wider headers.
    #[test]
    fn ack_round_trips() {
        let (v, _) = decode(&ack("c1")).unwrap();
        assert_eq!(v.get("ack").and_then(Value::as_str), Some("c1"));
        let long = "x".repeat(300);
        let mut out = Vec::new();
        write_str(&mut out, &long);
        assert_eq!(decode(&out).unwrap().0.as_str(), Some(long.as_str()));
    }
}
