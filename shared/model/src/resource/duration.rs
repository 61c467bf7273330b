//! Durations as Kuma writes them: Go / Kubernetes duration strings (`5s`, `1h30m`,
//! `250ms`, `0`), plus `d` and `y` where Kuma's mesh CA settings accept them.
//!
//! A [`Duration`] keeps the text the user wrote, so that serialization gives back
//! the same bytes (content hashes stay stable); validation parses it and reports a
//! bad value with its field path instead of failing the whole document.

use super::validate::{Path, ValidationErrors};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(String);

impl Duration {
    pub fn new(text: impl Into<String>) -> Self {
        Duration(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parsed value, or why it does not parse.
    pub fn parse(&self) -> Result<std::time::Duration, DurationError> {
        parse_duration(&self.0)
    }

    /// Checks it parses (Kuma refuses negative durations outright).
    pub fn check(&self, path: &Path, errs: &mut ValidationErrors) {
        if let Err(e) = self.parse() {
            errs.add(path, e.to_string());
        }
    }

    /// Checks it parses and is strictly positive.
    pub fn check_positive(&self, path: &Path, errs: &mut ValidationErrors) {
        match self.parse() {
            Ok(d) if d.is_zero() => errs.add(path, "must be greater than zero"),
            Ok(_) => {}
            Err(e) => errs.add(path, e.to_string()),
        }
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Duration {
    fn from(s: &str) -> Self {
        Duration(s.to_string())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("duration cannot be empty")]
    Empty,
    #[error("duration {0:?} cannot be negative")]
    Negative(String),
    #[error(
        "invalid duration {0:?}: expected a number followed by a unit (ns, us, ms, s, m, h, d, y), e.g. 5s or 1h30m"
    )]
    Syntax(String),
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses `300ms`, `1.5h`, `2h45m`, `0`, `1d`, `10y`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, DurationError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DurationError::Empty);
    }
    if s.starts_with('-') {
        return Err(DurationError::Negative(text.to_string()));
    }
    let s = s.strip_prefix('+').unwrap_or(s);
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let syntax = || DurationError::Syntax(text.to_string());
    let mut total_nanos: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(syntax)?;
        if num_len == 0 {
            return Err(syntax());
        }
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            "y" => 365 * 86_400 * 1_000_000_000,
            _ => return Err(syntax()),
        };
        let (int_part, frac_part) = match num.split_once('.') {
            Some((i, f)) => (i, f),
            None => (num, ""),
        };
        if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
            return Err(syntax());
        }
        let int: u128 = if int_part.is_empty() {
            0
        } else {
            int_part
                .parse()
                .map_err(|_| DurationError::Overflow(text.to_string()))?
        };
        let mut nanos = int
            .checked_mul(unit_nanos)
            .ok_or_else(|| DurationError::Overflow(text.to_string()))?;
        if !frac_part.is_empty() {
            // Up to nanosecond precision of the fraction is enough for any unit we accept.
            let digits = &frac_part[..frac_part.len().min(18)];
            let frac: u128 = digits.parse().map_err(|_| syntax())?;
            let scale = 10u128.pow(digits.len() as u32);
            nanos += frac * unit_nanos / scale;
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| DurationError::Overflow(text.to_string()))?;
        rest = next;
    }
    let secs = u64::try_from(total_nanos / 1_000_000_000)
        .map_err(|_| DurationError::Overflow(text.to_string()))?;
    Ok(std::time::Duration::new(
        secs,
        (total_nanos % 1_000_000_000) as u32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as D;

    // Go's duration syntax parses to the same values Go would give.
    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_duration("0").unwrap(), D::ZERO);
        assert_eq!(parse_duration("0s").unwrap(), D::ZERO);
        assert_eq!(parse_duration("5s").unwrap(), D::from_secs(5));
        assert_eq!(parse_duration("250ms").unwrap(), D::from_millis(250));
        assert_eq!(parse_duration("1h30m").unwrap(), D::from_secs(5400));
        assert_eq!(parse_duration("1.5h").unwrap(), D::from_secs(5400));
        assert_eq!(parse_duration("2us").unwrap(), D::from_micros(2));
        assert_eq!(parse_duration("1d").unwrap(), D::from_secs(86_400));
        assert_eq!(
            parse_duration("10y").unwrap(),
            D::from_secs(10 * 365 * 86_400)
        );
    }

    // Malformed and negative values are refused with a reason, never a panic.
    #[test]
    fn refuses_bad_durations() {
        for bad in [
            "",
            "5",
            "s",
            "5x",
            "1..5s",
            "-1s",
            "5 s",
            "ms5",
            "99999999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should not parse");
        }
    }

    // The original text survives a round trip, so hashes stay stable.
    #[test]
    fn keeps_text() {
        let d: Duration = serde_json::from_str("\"90s\"").unwrap();
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"90s\"");
    }
}
