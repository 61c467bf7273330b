//! Base64 as protobuf's JSON mapping reads `bytes` fields: the standard or the
//! URL-safe alphabet (not both at once), padding optional, line breaks ignored.
//! Errors say where the input is wrong, never what it contains.

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Base64Error {
    #[error("invalid character at offset {offset}")]
    InvalidCharacter { offset: usize },
    #[error("invalid length")]
    InvalidLength,
    #[error("invalid padding")]
    InvalidPadding,
    #[error("mixes the standard (+/) and URL-safe (-_) alphabets")]
    MixedAlphabets,
}

/// Standard alphabet, padded.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(STD[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' | b'-' => Some(62),
        b'/' | b'_' => Some(63),
        _ => None,
    }
}

/// Decodes standard or URL-safe base64, padded or not.
pub fn decode(text: &str) -> Result<Vec<u8>, Base64Error> {
    // Offsets in errors refer to the original text, line breaks included.
    let chars: Vec<(usize, u8)> = text
        .bytes()
        .enumerate()
        .filter(|(_, c)| !matches!(c, b'\r' | b'\n'))
        .collect();
    let std_chars = chars.iter().any(|(_, c)| matches!(c, b'+' | b'/'));
    let url_chars = chars.iter().any(|(_, c)| matches!(c, b'-' | b'_'));
    if std_chars && url_chars {
        return Err(Base64Error::MixedAlphabets);
    }
    let pad = chars.iter().rev().take_while(|(_, c)| *c == b'=').count();
    if pad > 0 && (pad > 2 || !chars.len().is_multiple_of(4)) {
        return Err(Base64Error::InvalidPadding);
    }
    let body = &chars[..chars.len() - pad];
    let mut sextets = Vec::with_capacity(body.len());
    for &(offset, c) in body {
        if c == b'=' {
            return Err(Base64Error::InvalidPadding);
        }
        sextets.push(sextet(c).ok_or(Base64Error::InvalidCharacter { offset })?);
    }
    if sextets.len() % 4 == 1 {
        return Err(Base64Error::InvalidLength);
    }
    let mut out = Vec::with_capacity(sextets.len() * 3 / 4);
    for group in sextets.chunks(4) {
        let mut n: u32 = 0;
        for (i, s) in group.iter().enumerate() {
            n |= u32::from(*s) << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..group.len() - 1]);
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    // RFC 4648 test vectors encode and decode both ways.
    #[test]
    fn rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, b64) in vectors {
            assert_eq!(encode(plain.as_bytes()), b64);
            assert_eq!(decode(b64).unwrap(), plain.as_bytes());
            assert_eq!(decode(b64.trim_end_matches('=')).unwrap(), plain.as_bytes());
        }
    }

    // URL-safe input and wrapped lines decode like their standard equivalents.
    #[test]
    fn url_safe_and_line_breaks() {
        assert_eq!(decode("-_8").unwrap(), decode("+/8").unwrap());
        assert_eq!(decode("Zm9v\nYmFy\r\n").unwrap(), b"foobar");
    }

    // Malformed input is refused with a position, not its content.
    #[test]
    fn refuses_malformed() {
        assert_eq!(
            decode("Zm9v!"),
            Err(Base64Error::InvalidCharacter { offset: 4 })
        );
        assert_eq!(decode("Zm9vY"), Err(Base64Error::InvalidLength));
        assert_eq!(decode("Zg="), Err(Base64Error::InvalidPadding));
        assert_eq!(decode("Zg==="), Err(Base64Error::InvalidPadding));
        assert_eq!(decode("Z=g="), Err(Base64Error::InvalidPadding));
        assert_eq!(decode("+-AA"), Err(Base64Error::MixedAlphabets));
    }
}
