//! How a NACK names the resources it rejects.
//!
//! A NACK is a request whose `error_detail` is set. Weft's receiver puts a
//! human-readable summary in `error_detail.message` and, in `error_detail.details`,
//! one `envoy.service.discovery.v3.ResourceError` (packed in an `Any`) per rejected
//! resource, carrying its name and reason. A NACK without such details (Envoy's)
//! rejects the whole response.

use envoy_types::pb::envoy::service::discovery::v3::{ResourceError, ResourceName};
use envoy_types::pb::google::protobuf::Any;
use envoy_types::pb::google::rpc::Status;
use prost::{Message, Name};

/// `google.rpc.Code.INTERNAL`, the code Envoy puts on its NACKs; Weft does the same.
pub const NACK_CODE: i32 = 13;
/// `google.rpc.Code.INVALID_ARGUMENT`, on each rejected resource's own status.
const RESOURCE_CODE: i32 = 3;
/// At most this many rejections are spelled out in the summary message.
const MESSAGE_LISTS: usize = 10;
/// A reason longer than this (in bytes) is cut, so one NACK stays small.
const MAX_REASON: usize = 4096;

/// One resource the receiver refused, and why (a validation error, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub name: String,
    pub reason: String,
    /// The resource's type when it may differ from the update being applied: the
    /// commit that ends the initial sync rejects resources of every type, and each
    /// is NACKed in its own type's answer. `None`: the update's type.
    pub type_url: Option<String>,
}

impl Rejection {
    /// A rejection of a resource of the update being applied.
    pub fn new(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Rejection {
            name: name.into(),
            reason: reason.into(),
            type_url: None,
        }
    }

    /// A rejection of a resource of `type_url`.
    pub fn of_type(
        type_url: impl Into<String>,
        name: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Rejection {
            type_url: Some(type_url.into()),
            ..Rejection::new(name, reason)
        }
    }
}

/// The `error_detail` of a NACK rejecting `rejections` of `type_url`, encoding to
/// at most `budget` bytes: reasons are shortened first, then (only if the names
/// alone do not fit) fewer resources are named.
pub(crate) fn nack_status(type_url: &str, rejections: &[Rejection], budget: usize) -> Status {
    for cap in [MAX_REASON, 512, 64, 0] {
        let st = build(type_url, rejections, cap);
        if st.encoded_len() <= budget {
            return st;
        }
    }
    let mut n = rejections.len();
    loop {
        n /= 2;
        let st = build(type_url, &rejections[..n], 0);
        if n == 0 || st.encoded_len() <= budget {
            return st;
        }
    }
}

fn build(type_url: &str, rejections: &[Rejection], cap: usize) -> Status {
    let mut message = format!("{} {} resource(s) rejected: ", rejections.len(), type_url);
    for (i, r) in rejections.iter().take(MESSAGE_LISTS).enumerate() {
        if i > 0 {
            message.push_str("; ");
        }
        message.push_str(&r.name);
        message.push_str(": ");
        message.push_str(cut(&r.reason, cap));
    }
    if rejections.len() > MESSAGE_LISTS {
        message.push_str(&format!("; and {} more", rejections.len() - MESSAGE_LISTS));
    }
    let details = rejections
        .iter()
        .map(|r| {
            let err = ResourceError {
                resource_name: Some(ResourceName {
                    name: r.name.clone(),
                    dynamic_parameter_constraints: None,
                }),
                error_detail: Some(Status {
                    code: RESOURCE_CODE,
                    message: cut(&r.reason, cap).to_string(),
                    details: Vec::new(),
                }),
            };
            Any {
                type_url: ResourceError::type_url(),
                value: err.encode_to_vec(),
            }
        })
        .collect();
    Status {
        code: NACK_CODE,
        message,
        details,
    }
}

/// The resources a NACK names, or `None` when it names none (the whole response
/// is rejected). Details that do not decode as `ResourceError` are skipped.
pub(crate) fn rejected_names(status: &Status) -> Option<Vec<String>> {
    let wanted = ResourceError::type_url();
    let names: Vec<String> = status
        .details
        .iter()
        .filter(|d| d.type_url == wanted)
        .filter_map(|d| ResourceError::decode(d.value.as_slice()).ok())
        .filter_map(|e| e.resource_name.map(|n| n.name))
        .collect();
    (!names.is_empty()).then_some(names)
}

fn cut(reason: &str, cap: usize) -> &str {
    if reason.len() <= cap {
        return reason;
    }
    let mut end = cap;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_status_details() {
        // Every rejected name put into a NACK is read back by the sender, in order.
        let rs: Vec<Rejection> = (0..15)
            .map(|i| Rejection::new(format!("r{i}"), "bad"))
            .collect();
        let st = nack_status("Mesh", &rs, usize::MAX);
        assert_eq!(st.code, NACK_CODE);
        assert!(
            st.message
                .starts_with("15 Mesh resource(s) rejected: r0: bad; r1: bad")
        );
        assert!(st.message.ends_with("; and 5 more"));
        let names = rejected_names(&st).unwrap_or_default();
        assert_eq!(names, rs.iter().map(|r| r.name.clone()).collect::<Vec<_>>());
    }

    #[test]
    fn status_without_details_rejects_everything() {
        // Envoy's NACK (message only) names no resource.
        let st = Status {
            code: 13,
            message: "Invalid duration".into(),
            details: vec![],
        };
        assert_eq!(rejected_names(&st), None);
    }

    #[test]
    fn long_reasons_are_cut_on_a_char_boundary() {
        // A reason never makes a NACK huge, and cutting never splits a character.
        let long = "é".repeat(MAX_REASON);
        let st = nack_status("T", &[Rejection::new("x", long)], usize::MAX);
        assert!(st.message.len() < MAX_REASON + 100);
        assert!(st.message.ends_with('é'));
    }

    #[test]
    fn nack_fits_its_budget_by_shortening_reasons_then_names() {
        // However many rejections, the status fits the budget; names go before reasons only
        // when the names alone are too many.
        let rs: Vec<Rejection> = (0..200)
            .map(|i| Rejection::new(format!("resource-{i}"), "x".repeat(3000)))
            .collect();
        let full = nack_status("T", &rs, usize::MAX);
        assert!(full.encoded_len() > 600_000);
        let st = nack_status("T", &rs, 64 * 1024);
        assert!(st.encoded_len() <= 64 * 1024);
        assert_eq!(rejected_names(&st).map(|n| n.len()), Some(200));
        let tiny = nack_status("T", &rs, 2048);
        assert!(tiny.encoded_len() <= 2048);
        let named = rejected_names(&tiny).map(|n| n.len()).unwrap_or(0);
        assert!(named > 0 && named < 200);
    }
}
