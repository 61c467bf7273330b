//! Kuma's "int or decimal string" numbers (`50`, `"50.5"`): percentages, the
//! success-rate standard deviation factor, the least-request active bias.
//!
//! An [`IntOrString`] keeps the form the user wrote so serialization gives the same
//! bytes back; [`IntOrString::decimal`] reads it as an exact decimal, and the
//! `check_*` helpers report a bad value with its path, in Kuma's words.

use crate::resource::validate::{Path, ValidationErrors};
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;

/// Kuma's `HasToBeInPercentageRange`.
pub const PERCENTAGE_RANGE: &str = "must be in inclusive range [0.0, 100.0]";
/// Kuma's `StringHasToBeValidNumber`.
pub const NOT_A_NUMBER: &str = "string must be a valid number";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IntOrString {
    Int(i64),
    String(String),
}

impl Default for IntOrString {
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

/// An exact decimal: `mantissa / 10^scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

/// Most fraction digits we keep; more is refused as not a usable number.
const MAX_SCALE: u32 = 18;

impl Decimal {
    pub fn mantissa(self) -> i128 {
        self.mantissa
    }

    pub fn scale(self) -> u32 {
        self.scale
    }

    pub fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    /// Exact comparison with an integer.
    pub fn cmp_int(self, n: i64) -> Ordering {
        match 10i128
            .checked_pow(self.scale)
            .and_then(|p| i128::from(n).checked_mul(p))
        {
            Some(scaled) => self.mantissa.cmp(&scaled),
            // `n * 10^scale` overflows only when |n| dwarfs any mantissa we accept.
            None => 0.cmp(&n),
        }
    }

    /// `[-]digits[.digits]` or `[-].digits`, as Kuma's decimal parser reads them.
    pub fn parse(text: &str) -> Option<Decimal> {
        let s = text.trim();
        let (negative, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
            return None;
        }
        let frac = frac.trim_end_matches('0');
        let scale = u32::try_from(frac.len()).ok().filter(|s| *s <= MAX_SCALE)?;
        let mut mantissa: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mantissa = mantissa
                .checked_mul(10)?
                .checked_add(i128::from(b - b'0'))?;
        }
        Some(Decimal {
            mantissa: if negative { -mantissa } else { mantissa },
            scale,
        })
    }
}

impl IntOrString {
    /// The value as an exact decimal, or `None` for a string that is not a number.
    pub fn decimal(&self) -> Option<Decimal> {
        match self {
            IntOrString::Int(i) => Some(Decimal {
                mantissa: i128::from(*i),
                scale: 0,
            }),
            IntOrString::String(s) => Decimal::parse(s),
        }
    }

    /// A percentage: a number in `[0, 100]`; `allow_zero: false` also refuses 0.
    pub fn check_percentage(&self, path: &Path, allow_zero: bool, errs: &mut ValidationErrors) {
        let Some(d) = self.decimal() else {
            errs.add(path, NOT_A_NUMBER);
            return;
        };
        if d.cmp_int(0) == Ordering::Less || d.cmp_int(100) == Ordering::Greater {
            errs.add(path, PERCENTAGE_RANGE);
        } else if !allow_zero && d.is_zero() {
            errs.add(path, "must be greater than 0");
        }
    }

    /// A number strictly above zero.
    pub fn check_positive(&self, path: &Path, errs: &mut ValidationErrors) {
        match self.decimal() {
            None => errs.add(path, NOT_A_NUMBER),
            Some(d) if d.cmp_int(0) != Ordering::Greater => {
                errs.add(path, "must be greater than 0")
            }
            Some(_) => {}
        }
    }

    /// A number at least `min`.
    pub fn check_at_least(&self, path: &Path, min: i64, errs: &mut ValidationErrors) {
        match self.decimal() {
            None => errs.add(path, NOT_A_NUMBER),
            Some(d) if d.cmp_int(min) == Ordering::Less => {
                errs.add(path, format!("must be greater than or equal to {min}"))
            }
            Some(_) => {}
        }
    }
}

impl From<i64> for IntOrString {
    fn from(i: i64) -> Self {
        IntOrString::Int(i)
    }
}

impl From<&str> for IntOrString {
    fn from(s: &str) -> Self {
        IntOrString::String(s.to_string())
    }
}

impl fmt::Display for IntOrString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IntOrString::Int(i) => write!(f, "{i}"),
            IntOrString::String(s) => f.write_str(s),
        }
    }
}

impl Serialize for IntOrString {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            IntOrString::Int(i) => s.serialize_i64(*i),
            IntOrString::String(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for IntOrString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntOrStringVisitor)
    }
}

struct IntOrStringVisitor;

impl Visitor<'_> for IntOrStringVisitor {
    type Value = IntOrString;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer or a decimal number written as a string (e.g. 50 or \"50.5\")")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrString, E> {
        Ok(IntOrString::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrString, E> {
        i64::try_from(v)
            .map(IntOrString::Int)
            .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrString, E> {
        Ok(IntOrString::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<IntOrString, E> {
        Ok(IntOrString::String(v))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn check(v: &IntOrString, allow_zero: bool) -> Vec<String> {
        let mut errs = ValidationErrors::new();
        v.check_percentage(&Path::root().field("p"), allow_zero, &mut errs);
        errs.violations().iter().map(|v| v.reason.clone()).collect()
    }

    // Both forms are read, and each is written back exactly as it came.
    #[test]
    fn keeps_the_written_form() {
        for text in ["50", "\"50.5\"", "\"50\"", "0", "\"007.50\""] {
            let v: IntOrString = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&v).unwrap(), text);
        }
    }

    // A bare float is refused at decode time: Kuma wants decimals as strings.
    #[test]
    fn refuses_floats() {
        let err = serde_json::from_str::<IntOrString>("50.5").unwrap_err();
        assert!(
            err.to_string()
                .contains("decimal number written as a string")
        );
        assert!(serde_json::from_str::<IntOrString>("true").is_err());
    }

    // Percentages: [0, 100] inclusive, compared exactly (no float rounding).
    #[test]
    fn percentage_range() {
        for ok in ["0", "100", "99.999999", "100.000", "0.5", ".5"] {
            assert!(check(&IntOrString::from(ok), true).is_empty(), "{ok}");
        }
        assert!(check(&IntOrString::Int(100), true).is_empty());
        for bad in ["100.0000001", "-0.1", "101"] {
            assert_eq!(check(&IntOrString::from(bad), true), vec![PERCENTAGE_RANGE]);
        }
        assert_eq!(check(&IntOrString::Int(-1), true), vec![PERCENTAGE_RANGE]);
        assert_eq!(check(&IntOrString::from("abc"), true), vec![NOT_A_NUMBER]);
        assert_eq!(check(&IntOrString::from("1.2.3"), true), vec![NOT_A_NUMBER]);
        assert_eq!(check(&IntOrString::from(""), true), vec![NOT_A_NUMBER]);
        assert_eq!(
            check(&IntOrString::from("0.0"), false),
            vec!["must be greater than 0"]
        );
    }

    // Exact decimals compare correctly against integers either side.
    #[test]
    fn decimal_comparison() {
        let d = Decimal::parse("2.50").unwrap();
        assert_eq!((d.mantissa(), d.scale()), (25, 1));
        assert_eq!(d.cmp_int(2), Ordering::Greater);
        assert_eq!(d.cmp_int(3), Ordering::Less);
        assert_eq!(Decimal::parse("-3").unwrap().cmp_int(-3), Ordering::Equal);
        assert!(Decimal::parse("1e3").is_none());
    }
}
