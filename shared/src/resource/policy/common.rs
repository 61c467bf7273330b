//! Building blocks shared by the targetRef policies: the `to[]` / `from[]` /
//! `rules[]` items and the checks every directional policy makes.

use super::targetref::{Slot, SlotRules, TargetRef, TargetRefKind, check_target_ref};
use crate::resource::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

/// `spec.to[]`: configuration for traffic to the destinations `targetRef` names.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct To<C> {
    pub target_ref: TargetRef,
    pub default: C,
}

/// `spec.from[]`: configuration for traffic from the clients `targetRef` names.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct From<C> {
    pub target_ref: TargetRef,
    pub default: C,
}

/// `spec.rules[]` (Kuma 2.10+): configuration for every inbound the policy selects.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
        let rules = SlotRules {
            slot: Slot::To,
            allowed: kinds.to,
            section_name_allowed: false,
        };
        check_target_ref(&p.field("targetRef"), &item.target_ref, rules, errs);
        item.default.validate(&p.field("default"), errs);
    }
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
    if set(rules) && set(from) {
        errs.add(&path.field("from"), "must be empty when 'rules' is defined");
    }
    if rules_excludes_to && set(rules) && set(to) {
        errs.add(&path.field("to"), "must be empty when 'rules' is defined");
    }
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
