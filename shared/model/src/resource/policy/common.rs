//! Building blocks shared by the targetRef policies: the `to[]` / `from[]` /
//! `rules[]` items and the checks every directional policy makes, as sequences
//! the policies call instead of repeating them: [`check_directional`] (top-level
//! targetRef and section rules), [`check_inbound_or_gateway`] (MeshRateLimit,
//! MeshFaultInjection), [`check_outbound`] (outbound-only policies) and
//! [`check_single_item`] (policies with one `default`).

use super::checks::{check_gateway_split, len, non_empty};
use super::matches::{MatchRule, check_match_rules};
use super::targetref::{Slot, SlotRules, TargetRef, TargetRefKind, check_target_ref};
use crate::resource::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

/// `spec.to[]`: configuration for traffic to the destinations `targetRef` names.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct To<C> {
    pub target_ref: TargetRef,
    pub default: C,
}

/// `spec.from[]`: configuration for traffic from the clients `targetRef` names.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct From<C> {
    pub target_ref: TargetRef,
    pub default: C,
}

/// `spec.rules[]` (Kuma 2.10+): configuration for every inbound the policy selects.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule<C> {
    pub default: C,
}

impl Default for TargetRef {
    fn default() -> Self {
        TargetRef::mesh()
    }
}

/// The top-level targetRef, defaulting to `kind: Mesh` when omitted.
pub fn top_or_mesh(target_ref: &Option<TargetRef>) -> TargetRef {
    target_ref.clone().unwrap_or_default()
}

/// Kinds a policy accepts in each slot, and whether `sectionName` is allowed at top.
#[derive(Debug, Clone, Copy)]
pub struct Kinds<'a> {
    pub top: &'a [TargetRefKind],
    pub to: &'a [TargetRefKind],
    pub from: &'a [TargetRefKind],
    /// Inbound policies may narrow a Dataplane targetRef to one inbound.
    pub inbound: bool,
}

impl<'a> Kinds<'a> {
    /// Kinds with `inbound` unset; [`check_directional`] works it out from the sections.
    pub const fn new(
        top: &'a [TargetRefKind],
        to: &'a [TargetRefKind],
        from: &'a [TargetRefKind],
    ) -> Self {
        Kinds {
            top,
            to,
            from,
            inbound: false,
        }
    }

    /// A policy with a top-level targetRef only (single-item policies, routes).
    pub const fn top_only(top: &'a [TargetRefKind]) -> Self {
        Kinds::new(top, &[], &[])
    }
}

/// Checks the top-level targetRef (if present) against the policy's allowed kinds.
pub fn check_top(
    path: &Path,
    target_ref: &Option<TargetRef>,
    kinds: Kinds<'_>,
    errs: &mut ValidationErrors,
) {
    if let Some(tr) = target_ref {
        let rules = SlotRules {
            slot: Slot::Top,
            allowed: kinds.top,
            section_name_allowed: kinds.inbound,
        };
        check_target_ref(&path.field("targetRef"), tr, rules, errs);
    }
}

/// Checks every `to[]` item: its targetRef against `kinds.to`, its conf with `Validate`.
pub fn check_to<C: Validate>(
    path: &Path,
    to: &Option<Vec<To<C>>>,
    kinds: Kinds<'_>,
    errs: &mut ValidationErrors,
) {
    for (i, item) in to.iter().flatten().enumerate() {
        let p = path.field("to").index(i);
        check_to_target_ref(&p.field("targetRef"), &item.target_ref, kinds.to, errs);
        item.default.validate(&p.field("default"), errs);
    }
}

/// Checks a targetRef in the `to[]` slot (or a backend's) against `allowed`.
pub fn check_to_target_ref(
    path: &Path,
    target_ref: &TargetRef,
    allowed: &[TargetRefKind],
    errs: &mut ValidationErrors,
) {
    let rules = SlotRules {
        slot: Slot::To,
        allowed,
        section_name_allowed: false,
    };
    check_target_ref(path, target_ref, rules, errs);
}

/// Checks every `from[]` item: its targetRef against `kinds.from`, its conf with `Validate`.
pub fn check_from<C: Validate>(
    path: &Path,
    from: &Option<Vec<From<C>>>,
    kinds: Kinds<'_>,
    errs: &mut ValidationErrors,
) {
    for (i, item) in from.iter().flatten().enumerate() {
        let p = path.field("from").index(i);
        let rules = SlotRules {
            slot: Slot::From,
            allowed: kinds.from,
            section_name_allowed: false,
        };
        check_target_ref(&p.field("targetRef"), &item.target_ref, rules, errs);
        item.default.validate(&p.field("default"), errs);
    }
}

/// Checks every `rules[]` item's conf.
pub fn check_rules<C: Validate>(
    path: &Path,
    rules: &Option<Vec<Rule<C>>>,
    errs: &mut ValidationErrors,
) {
    for (i, item) in rules.iter().flatten().enumerate() {
        item.default
            .validate(&path.field("rules").index(i).field("default"), errs);
    }
}

/// Kuma's section rules: at least one of `to` / `from` / `rules` is set and
/// non-empty; `rules` excludes `from` (and `to` where `rules_excludes_to`).
pub fn check_sections(
    path: &Path,
    to: Option<usize>,
    from: Option<usize>,
    rules: Option<usize>,
    rules_excludes_to: bool,
    errs: &mut ValidationErrors,
) {
    let set = |n: Option<usize>| n.is_some_and(|n| n > 0);
    if !set(to) && !set(from) && !set(rules) {
        errs.add(
            path,
            "at least one of 'from', 'to' or 'rules' has to be defined",
        );
        return;
    }
    check_rules_exclude_from(path, set(from), set(rules), errs);
    if rules_excludes_to && set(rules) && set(to) {
        errs.add(&path.field("to"), "must be empty when 'rules' is defined");
    }
}

/// `rules` replaces `from`: a policy with items in both is refused at `from`.
pub fn check_rules_exclude_from(
    path: &Path,
    from_set: bool,
    rules_set: bool,
    errs: &mut ValidationErrors,
) {
    if from_set && rules_set {
        errs.add(&path.field("from"), "must be empty when 'rules' is defined");
    }
}

/// The `to` / `from` / `rules` sections of a directional policy, for the checks
/// they share; `R` is its `rules[]` item ([`Rule`], [`MatchRule`] or its own).
pub struct Sections<'a, C, R> {
    pub to: &'a Option<Vec<To<C>>>,
    pub from: &'a Option<Vec<From<C>>>,
    pub rules: &'a Option<Vec<R>>,
}

impl<'a, C, R> Sections<'a, C, R> {
    pub fn new(
        to: &'a Option<Vec<To<C>>>,
        from: &'a Option<Vec<From<C>>>,
        rules: &'a Option<Vec<R>>,
    ) -> Self {
        Sections { to, from, rules }
    }

    /// Whether the policy configures inbounds: `from` or `rules` has items.
    pub fn inbound(&self) -> bool {
        non_empty(self.from) || non_empty(self.rules)
    }
}

/// What every directional policy checks first: the top-level targetRef (with
/// `kinds.inbound` set when the sections configure inbounds) and Kuma's section
/// rules ([`check_sections`]). Returns the kinds for the item checks.
pub fn check_directional<'k, C, R>(
    path: &Path,
    target_ref: &Option<TargetRef>,
    sections: &Sections<'_, C, R>,
    kinds: Kinds<'k>,
    rules_excludes_to: bool,
    errs: &mut ValidationErrors,
) -> Kinds<'k> {
    let kinds = Kinds {
        inbound: sections.inbound(),
        ..kinds
    };
    check_top(path, target_ref, kinds, errs);
    check_sections(
        path,
        len(sections.to),
        len(sections.from),
        len(sections.rules),
        rules_excludes_to,
        errs,
    );
    kinds
}

/// The two policies [`check_inbound_or_gateway`] checks, which differ in Kuma 2.14.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InboundOrGateway {
    /// `rules` exclude `to` and `from`, and are refused when gateways are in scope.
    RateLimit,
    /// `rules` exclude `from` only, and are allowed whatever the scope.
    FaultInjection,
}

/// MeshRateLimit and MeshFaultInjection: sidecars take them on their inbounds
/// (`from[]` / `rules[]`), gateways on their outbounds (`to[]`). After
/// [`check_directional`], the sections that do not fit the scope are refused
/// ([`check_gateway_split`]) and the items of those that do are checked.
pub fn check_inbound_or_gateway<C: Validate>(
    path: &Path,
    target_ref: &Option<TargetRef>,
    sections: &Sections<'_, C, MatchRule<C>>,
    kinds: Kinds<'_>,
    policy: InboundOrGateway,
    errs: &mut ValidationErrors,
) {
    let rate_limit = policy == InboundOrGateway::RateLimit;
    let kinds = check_directional(path, target_ref, sections, kinds, rate_limit, errs);
    let split = check_gateway_split(
        path,
        &top_or_mesh(target_ref),
        [
            ("to", non_empty(sections.to)),
            ("from", non_empty(sections.from)),
            ("rules", rate_limit && non_empty(sections.rules)),
        ],
        errs,
    );
    if split.to_ok {
        check_to(path, sections.to, kinds, errs);
    }
    if split.inbound_ok {
        check_from(path, sections.from, kinds, errs);
    }
    if split.inbound_ok || !rate_limit {
        check_match_rules(path, sections.rules, errs);
    }
}

/// Outbound-only policies need `to`; an empty list is allowed (Kuma 2.14: an
/// override that configures nothing for the proxies it selects).
pub fn check_to_not_empty<C>(path: &Path, to: &Option<Vec<To<C>>>, errs: &mut ValidationErrors) {
    if to.is_none() {
        errs.add(&path.field("to"), "must be defined");
    }
}

/// Outbound-only policies (MeshHealthCheck, MeshRetry): the top-level targetRef
/// and every `to[]` item, of which there must be some.
pub fn check_outbound<C: Validate>(
    path: &Path,
    target_ref: &Option<TargetRef>,
    to: &Option<Vec<To<C>>>,
    kinds: Kinds<'_>,
    errs: &mut ValidationErrors,
) {
    check_top(path, target_ref, kinds, errs);
    check_to_not_empty(path, to, errs);
    check_to(path, to, kinds, errs);
}

/// Single-item policies (MeshTrace, MeshMetric, MeshPassthrough, MeshProxyPatch):
/// the top-level targetRef and the one `default` conf.
pub fn check_single_item<C: Validate>(
    path: &Path,
    target_ref: &Option<TargetRef>,
    top: &[TargetRefKind],
    default: &C,
    errs: &mut ValidationErrors,
) {
    check_top(path, target_ref, Kinds::top_only(top), errs);
    default.validate(&path.field("default"), errs);
}

#[cfg(test)]
mod tests {
    use super::*;

    // A policy with no direction at all is refused at the spec's own path.
    #[test]
    fn needs_a_section() {
        let mut errs = ValidationErrors::new();
        check_sections(
            &Path::root().field("spec"),
            None,
            Some(0),
            None,
            true,
            &mut errs,
        );
        assert_eq!(errs.violations()[0].field, "spec");
        let mut errs = ValidationErrors::new();
        check_sections(
            &Path::root().field("spec"),
            Some(1),
            Some(1),
            Some(1),
            true,
            &mut errs,
        );
        let fields: Vec<_> = errs.violations().iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.from", "spec.to"]);
    }
}
