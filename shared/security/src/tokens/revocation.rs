//! Revoked token ids (`jti`).

use std::collections::BTreeSet;

/// A set of revoked token ids. Stored, as in Kuma, as one comma-separated list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revocations {
    jtis: BTreeSet<String>,
}

impl Revocations {
    pub fn new() -> Self {
        Revocations::default()
    }

    /// Revokes `jti`; returns false when it already was.
    pub fn revoke(&mut self, jti: impl Into<String>) -> bool {
        self.jtis.insert(jti.into())
    }

    /// Takes `jti` off the list (e.g. once the token has expired anyway).
    pub fn unrevoke(&mut self, jti: &str) -> bool {
        self.jtis.remove(jti)
    }

    pub fn is_revoked(&self, jti: &str) -> bool {
        self.jtis.contains(jti)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.jtis.iter().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.jtis.is_empty()
    }

    pub fn len(&self) -> usize {
        self.jtis.len()
    }

    /// Kuma's format: ids separated by commas (no spaces).
    pub fn to_text(&self) -> String {
        self.iter().collect::<Vec<_>>().join(",")
    }

    /// Parses Kuma's format, tolerating whitespace, newlines and empty entries.
    pub fn from_text(text: &str) -> Self {
        Revocations {
            jtis: text
                .split([',', '\n'])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

impl<S: Into<String>> FromIterator<S> for Revocations {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Revocations {
            jtis: iter.into_iter().map(Into::into).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The text form round-trips and reads Kuma's list with a trailing newline.
    #[test]
    fn text_round_trip() {
        let r: Revocations = ["b", "a"].into_iter().collect();
        assert_eq!(r.to_text(), "a,b");
        assert_eq!(Revocations::from_text("a,b\n"), r);
        assert_eq!(Revocations::from_text(" a , ,b,"), r);
        assert!(Revocations::from_text("").is_empty());
    }
}
