//! Small builders for Envoy protos the generators share.

use envoy_types::pb::envoy::config::core::v3::{Address, SocketAddress, address, socket_address};
use envoy_types::pb::envoy::r#type::v3::{FractionalPercent, fractional_percent};
use envoy_types::pb::google::protobuf::{Any, Duration as PbDuration, UInt32Value};
use prost::{Message, Name};
use std::time::Duration;

/// Packs `msg` into an `Any` with its `type.googleapis.com/...` URL.
pub fn any<T: Message + Name>(msg: &T) -> Any {
    Any {
        type_url: T::type_url(),
        value: msg.encode_to_vec(),
    }
}

pub fn duration(d: Duration) -> PbDuration {
    PbDuration {
        seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(d.subsec_nanos()).unwrap_or(0),
    }
}

pub fn secs(s: u64) -> PbDuration {
    duration(Duration::from_secs(s))
}

pub fn u32v(v: u32) -> UInt32Value {
    UInt32Value { value: v }
}

pub fn socket(ip: &str, port: u32) -> Address {
    Address {
        address: Some(address::Address::SocketAddress(SocketAddress {
            address: ip.to_string(),
            port_specifier: Some(socket_address::PortSpecifier::PortValue(port)),
            ..SocketAddress::default()
        })),
    }
}

/// `percent` (0–100, may be fractional) as a per-million FractionalPercent.
pub fn fraction(percent: f64) -> FractionalPercent {
    let clamped = percent.clamp(0.0, 100.0);
    FractionalPercent {
        numerator: (clamped * 10_000.0).round() as u32,
        denominator: fractional_percent::DenominatorType::Million as i32,
    }
}

/// Kuma's stat-name sanitizing ([`super::names::stat_name`]).
pub fn sanitize(name: &str) -> String {
    super::names::stat_name(name)
}

use envoy_types::pb::envoy::config::core::v3::{
    HeaderValue, HeaderValueOption, header_value_option,
};

/// A header to set (`overwrite`) or append.
pub fn header(name: &str, value: &str, overwrite: bool) -> HeaderValueOption {
    let action = if overwrite {
        header_value_option::HeaderAppendAction::OverwriteIfExistsOrAdd
    } else {
        header_value_option::HeaderAppendAction::AppendIfExistsOrAdd
    };
    HeaderValueOption {
        header: Some(HeaderValue {
            key: name.to_string(),
            value: value.to_string(),
            ..HeaderValue::default()
        }),
        append_action: action as i32,
        ..HeaderValueOption::default()
    }
}

use envoy_types::pb::envoy::config::route::v3::{HeaderMatcher, header_matcher};
use envoy_types::pb::envoy::r#type::matcher::v3::{RegexMatcher, StringMatcher, string_matcher};
use weft_model::resource::policy::header::{HeaderMatch, HeaderMatchType};

pub fn string_matcher(pattern: string_matcher::MatchPattern) -> StringMatcher {
    StringMatcher {
        match_pattern: Some(pattern),
        ..StringMatcher::default()
    }
}

pub fn regex(re: &str) -> RegexMatcher {
    RegexMatcher {
        regex: re.to_string(),
        ..RegexMatcher::default()
    }
}

/// A Kuma header match as an Envoy route HeaderMatcher.
pub fn header_matcher(m: &HeaderMatch) -> HeaderMatcher {
    use header_matcher::HeaderMatchSpecifier as S;
    use string_matcher::MatchPattern as P;
    let value = m.value.clone().unwrap_or_default();
    let (spec, invert) = match m.r#type.unwrap_or_default() {
        HeaderMatchType::Exact => (S::StringMatch(string_matcher(P::Exact(value))), false),
        HeaderMatchType::Prefix => (S::StringMatch(string_matcher(P::Prefix(value))), false),
        HeaderMatchType::RegularExpression => (
            S::StringMatch(string_matcher(P::SafeRegex(regex(&value)))),
            false,
        ),
        HeaderMatchType::Present => (S::PresentMatch(true), false),
        HeaderMatchType::Absent => (S::PresentMatch(true), true),
    };
    HeaderMatcher {
        name: m.name.clone(),
        header_match_specifier: Some(spec),
        invert_match: invert,
        ..HeaderMatcher::default()
    }
}
