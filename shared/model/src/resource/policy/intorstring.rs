//! Kuma's "int or decimal string" numbers (Kubernetes `IntOrString` holding a
//! decimal, `api/common/v1alpha1/decimal.go`): `50`, `"50"`, `"50.5"`. Percentages
//! (faults, mirroring, trace sampling, panic thresholds, failover), the success-rate
//! standard deviation factor and the least-request active bias all use it.
//!
//! An [`IntOrString`] keeps the form the user wrote so serialization gives the same
//! bytes back; [`IntOrString::decimal`] reads it as an exact [`Decimal`] of any
//! precision (no floats), and the `check_*` helpers report a bad value with its
//! path, in Kuma's words unless the policy has its own.

use crate::resource::validate::{Path, ValidationErrors};
use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cmp::Ordering;
use std::fmt;

/// Kuma's `HasToBeInPercentageRange`.
pub const PERCENTAGE_RANGE: &str = "must be in inclusive range [0.0, 100.0]";
/// Kuma's `StringHasToBeValidNumber`.
pub const NOT_A_NUMBER: &str = "string must be a valid number";

/// An int-or-string number, kept as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IntOrString {
    /// Written as a JSON / YAML integer: `50`.
    Int(i64),
    /// Written as a string holding a decimal number: `"50"`, `"0.5"`.
    String(String),
}

impl Default for IntOrString {
    fn default() -> Self {
        IntOrString::Int(0)
    }
}

/// An exact decimal of any precision: a sign, the integer digits without leading
/// zeros and the fraction digits without trailing zeros (zero is two empty parts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decimal {
    negative: bool,
    int: String,
    frac: String,
}

impl Decimal {
    /// `[-|+]digits[.digits]` or `[-|+].digits`, surrounding white space ignored,
    /// as Kuma's decimal parser reads them (no exponents).
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
        Some(Decimal {
            negative,
            int: int.trim_start_matches('0').to_string(),
            frac: frac.trim_end_matches('0').to_string(),
        })
    }

    /// The value times `10^scale`, saturating past `i128`'s range.
    pub fn mantissa(&self) -> i128 {
        let mut m: i128 = 0;
        for b in self.int.bytes().chain(self.frac.bytes()) {
            match m
                .checked_mul(10)
                .and_then(|m| m.checked_add(i128::from(b - b'0')))
            {
                Some(next) => m = next,
                None => {
                    m = i128::MAX;
                    break;
                }
            }
        }
        if self.negative { -m } else { m }
    }

    /// How many fraction digits the value has.
    pub fn scale(&self) -> u32 {
        u32::try_from(self.frac.len()).unwrap_or(u32::MAX)
    }

    pub fn is_zero(&self) -> bool {
        self.int.is_empty() && self.frac.is_empty()
    }

    /// Exact comparison with an integer.
    pub fn cmp_int(&self, n: i64) -> Ordering {
        let negative = self.negative && !self.is_zero();
        match (negative, n < 0) {
            (false, true) => return Ordering::Greater,
            (true, false) => return Ordering::Less,
            _ => {}
        }
        let digits = match n.unsigned_abs() {
            0 => String::new(),
            m => m.to_string(),
        };
        let magnitude = self
            .int
            .len()
            .cmp(&digits.len())
            .then_with(|| self.int.as_str().cmp(digits.as_str()))
            .then(if self.frac.is_empty() {
                Ordering::Equal
            } else {
                Ordering::Greater
            });
        if negative {
            magnitude.reverse()
        } else {
            magnitude
        }
    }

    /// `0 <= self <= 100`.
    pub fn in_percent_range(&self) -> bool {
        self.cmp_int(0) != Ordering::Less && self.cmp_int(100) != Ordering::Greater
    }
}

impl IntOrString {
    /// The value as an exact decimal, or `None` for a string that is not a number.
    pub fn decimal(&self) -> Option<Decimal> {
        match self {
            IntOrString::Int(i) => Decimal::parse(&i.to_string()),
            IntOrString::String(s) => Decimal::parse(s),
        }
    }

    /// A percentage: a number in `[0, 100]`; `allow_zero: false` also refuses 0.
    pub fn check_percentage(&self, path: &Path, allow_zero: bool, errs: &mut ValidationErrors) {
        self.check_percentage_with(path, allow_zero, NOT_A_NUMBER, PERCENTAGE_RANGE, errs);
    }

    /// [`Self::check_percentage`] with a policy's own reasons for a value that is
    /// not a number and for one outside `[0, 100]`.
    pub fn check_percentage_with(
        &self,
        path: &Path,
        allow_zero: bool,
        not_a_number: &str,
        out_of_range: &str,
        errs: &mut ValidationErrors,
    ) {
        match self.decimal() {
            None => errs.add(path, not_a_number),
            Some(d) if !d.in_percent_range() => errs.add(path, out_of_range),
            Some(d) if !allow_zero && d.is_zero() => errs.add(path, "must be greater than 0"),
            Some(_) => {}
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

    /// A percentage in parts per million (Envoy's `FractionalPercent` MILLION),
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

    fn errs_of(p: &IntOrString) -> Vec<String> {
        check(p, true)
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

    // Integers and decimal strings in 0..=100 are accepted; the rest is refused with Kuma's reasons.
    #[test]
    fn range_and_syntax() {
        for ok in [
            IntOrString::Int(0),
            IntOrString::Int(100),
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
            IntOrString::Int(101),
            IntOrString::Int(-1),
            "100.01".into(),
            "-0.1".into(),
            "1000".into(),
        ] {
            assert_eq!(errs_of(&bad), vec![PERCENTAGE_RANGE], "{bad}");
        }
        for bad in ["", "abc", "1.2.3", "5%", "1e2", "."] {
            assert_eq!(errs_of(&bad.into()), vec![NOT_A_NUMBER], "{bad:?}");
        }
    }

    // The written form survives a round trip: an int stays an int, a string a string.
    #[test]
    fn keeps_form() {
        for text in ["50", "\"50\"", "\"0.50\""] {
            let p: IntOrString = serde_json::from_str(text).unwrap();
            assert_eq!(serde_json::to_string(&p).unwrap(), text);
        }
        assert!(serde_json::from_str::<IntOrString>("0.5").is_err());
        let y: IntOrString = serde_yaml_ng::from_str("'12.5'").unwrap();
        assert_eq!(y, IntOrString::String("12.5".into()));
    }

    // Parts per million are exact for up to four decimals, with no float rounding.
    #[test]
    fn per_million() {
        assert_eq!(IntOrString::Int(50).per_million(), Some(500_000));
        assert_eq!(IntOrString::from("0.0001").per_million(), Some(1));
        assert_eq!(IntOrString::from("100").per_million(), Some(1_000_000));
        assert_eq!(IntOrString::from("12.34567").per_million(), Some(123_456));
        assert_eq!(IntOrString::from("101").per_million(), None);
    }
}
