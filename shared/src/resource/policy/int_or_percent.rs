//! Percentages as Kuma writes them: Kubernetes `IntOrString` holding a decimal
//! number, so `50`, `"50"` and `"0.5"` are all accepted (`api/common/v1alpha1/decimal.go`).
//!
//! A [`Percentage`] keeps the form the user wrote (integer or string, with the
//! exact digits) so serialization gives back the same bytes; validation parses the
//! decimal without floats and checks the inclusive range 0–100.

use crate::resource::validate::{Path, ValidationErrors};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An int-or-string percentage, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Percentage {
    /// Written as a JSON / YAML integer: `50`.
    Int(i64),
    /// Written as a string holding a decimal number: `"50"`, `"0.5"`.
    Text(String),
}

/// Kuma's reason for a string that is not a number.
pub const NOT_A_NUMBER: &str = "string must be a valid number";
/// Kuma's reason for a value outside 0–100.
pub const OUT_OF_RANGE: &str = "must be in inclusive range [0.0, 100.0]";

/// A parsed non-float decimal: sign, integer digits, fraction digits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    int: String,
    frac: String,
}

impl Decimal {
    fn parse(text: &str) -> Option<Decimal> {
        let t = text.trim();
        let (negative, rest) = match t.as_bytes().first() {
            Some(b'-') => (true, &t[1..]),
            Some(b'+') => (false, &t[1..]),
            _ => (false, t),
        };
        let (int, frac) = rest.split_once('.').unwrap_or((rest, ""));
        let digits = |s: &str| s.bytes().all(|c| c.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
            return None;
        }
        Some(Decimal {
            negative,
            int: int.trim_start_matches('0').to_string(),
            frac: frac.trim_end_matches('0').to_string(),
        })
    }

    fn is_zero(&self) -> bool {
        self.int.is_empty() && self.frac.is_empty()
    }

    /// `0 <= self <= 100`.
    fn in_percent_range(&self) -> bool {
        if self.is_zero() {
            return true;
        }
        if self.negative {
            return false;
        }
        // `int` has no leading zeros, so three digits means at least 100.
        match self.int.len() {
            0..=2 => true,
            3 => self.int == "100" && self.frac.is_empty(),
            _ => false,
        }
    }
}

impl Percentage {
    fn decimal(&self) -> Option<Decimal> {
        match self {
            Percentage::Int(i) => Decimal::parse(&i.to_string()),
            Percentage::Text(s) => Decimal::parse(s),
        }
    }

    /// Checks the value is a number between 0 and 100 inclusive.
    pub fn check(&self, path: &Path, errs: &mut ValidationErrors) {
        match self.decimal() {
            None => errs.add(path, NOT_A_NUMBER),
            Some(d) if !d.in_percent_range() => errs.add(path, OUT_OF_RANGE),
            Some(_) => {}
        }
    }

    /// Checks with custom reasons (some policies word them differently).
    pub fn check_with(
        &self,
        path: &Path,
        not_a_number: &str,
        out_of_range: &str,
        errs: &mut ValidationErrors,
    ) {
        match self.decimal() {
            None => errs.add(path, not_a_number),
            Some(d) if !d.in_percent_range() => errs.add(path, out_of_range),
            Some(_) => {}
        }
    }

    /// The value in parts per million (Envoy's `FractionalPercent` MILLION),
    /// truncating digits past the fourth decimal; `None` when invalid or out of range.
    pub fn per_million(&self) -> Option<u32> {
        let d = self.decimal()?;
        if !d.in_percent_range() {
            return None;
        }
        let int: u32 = if d.int.is_empty() {
            0
        } else {
            d.int.parse().ok()?
        };
        let mut frac4: String = d.frac.chars().take(4).collect();
        while frac4.len() < 4 {
            frac4.push('0');
        }
        let frac: u32 = frac4.parse().ok()?;
        Some(int * 10_000 + frac)
    }
}

impl From<i64> for Percentage {
    fn from(v: i64) -> Self {
        Percentage::Int(v)
    }
}

impl From<&str> for Percentage {
    fn from(v: &str) -> Self {
        Percentage::Text(v.to_string())
    }
}

impl fmt::Display for Percentage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Percentage::Int(i) => write!(f, "{i}"),
            Percentage::Text(s) => f.write_str(s),
        }
    }
}

impl Serialize for Percentage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Percentage::Int(i) => s.serialize_i64(*i),
            Percentage::Text(t) => s.serialize_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for Percentage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Percentage;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string holding a decimal number, e.g. 50 or \"0.5\"")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Percentage, E> {
                Ok(Percentage::Int(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Percentage, E> {
                i64::try_from(v)
                    .map(Percentage::Int)
                    .map_err(|_| E::custom("integer is too large for a percentage"))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Percentage, E> {
                Ok(Percentage::Text(v.to_string()))
            }

            fn visit_string<E: de::Error>(self, v: String) -> Result<Percentage, E> {
                Ok(Percentage::Text(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs_of(p: &Percentage) -> Vec<String> {
        let mut e = ValidationErrors::new();
        p.check(&Path::root().field("p"), &mut e);
        e.violations().iter().map(|v| v.reason.clone()).collect()
    }

    // Integers and decimal strings in 0..=100 are accepted; the rest is refused with Kuma's reasons.
    #[test]
    fn range_and_syntax() {
        for ok in [
            Percentage::Int(0),
            Percentage::Int(100),
            "50".into(),
            "0.5".into(),
            "100.000".into(),
            "099.9".into(),
            ".5".into(),
            "-0".into(),
        ] {
            assert!(errs_of(&ok).is_empty(), "{ok} should pass");
        }
        for bad in [
            Percentage::Int(101),
            Percentage::Int(-1),
            "100.01".into(),
            "-0.1".into(),
            "1000".into(),
        ] {
            assert_eq!(errs_of(&bad), vec![OUT_OF_RANGE], "{bad}");
        }
        for bad in ["", "abc", "1.2.3", "5%", "1e2", "."] {
            assert_eq!(errs_of(&bad.into()), vec![NOT_A_NUMBER], "{bad:?}");
        }
    }

    // The written form survives a round trip: an int stays an int, a string a string.
    #[test]
    fn keeps_form() {
        for text in ["50", "\"50\"", "\"0.50\""] {
            let p: Percentage = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&p).unwrap(), text);
        }
        assert!(serde_json::from_str::<Percentage>("0.5").is_err());
        let y: Percentage = serde_yaml_ng::from_str("'12.5'").unwrap();
        assert_eq!(y, Percentage::Text("12.5".into()));
    }

    // Parts per million are exact for up to four decimals, with no float rounding.
    #[test]
    fn per_million() {
        assert_eq!(Percentage::Int(50).per_million(), Some(500_000));
        assert_eq!(Percentage::from("0.0001").per_million(), Some(1));
        assert_eq!(Percentage::from("100").per_million(), Some(1_000_000));
        assert_eq!(Percentage::from("12.34567").per_million(), Some(123_456));
        assert_eq!(Percentage::from("101").per_million(), None);
    }
}
