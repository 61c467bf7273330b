use super::*;
use crate::resource::policy::meshtimeout;

fn res(yaml: &str) -> Arc<Resource> {
    let v = crate::resource::parse_document(yaml.as_bytes(), false).unwrap();
    let r = Resource::from_value(v).unwrap();
    r.validate().unwrap_or_else(|e| panic!("{e:?}\n{yaml}"));
    Arc::new(r)
}

fn web() -> Arc<Resource> {
    res(r#"
type: Dataplane
mesh: default
name: web-1
labels: {team: a}
networking:
  address: 10.0.0.1
  inbound:
    - port: 8080
      name: main
      tags: {kuma.io/service: web, kuma.io/protocol: http, version: v1}
    - port: 9090
      tags: {kuma.io/service: web-admin}
  outbound:
    - port: 10001
      tags: {kuma.io/service: backend}
"#)
}

fn timeout(name: &str, top: &str, to: &str) -> Arc<Resource> {
    res(&format!(
        "type: MeshTimeout\nmesh: default\nname: {name}\nspec:\n  targetRef: {top}\n  to:\n{to}"
    ))
}

fn req_timeout(m: &Merged) -> Option<String> {
    let c: meshtimeout::Conf = m.typed().unwrap();
    c.http
        .and_then(|h| h.request_timeout)
        .map(|d| d.to_string())
}

#[test]
fn kuma_worked_example_merges_mesh_then_service() {
    // Reference §2.5: a Mesh-wide and a MeshService-targeted policy merge field by field.
    let p_mesh = timeout(
        "p-mesh",
        "{kind: Mesh}",
        "    - targetRef: {kind: Mesh}\n      default: {idleTimeout: 1h, http: {requestTimeout: 15s}}\n",
    );
    let p_web = timeout(
        "p-web",
        "{kind: MeshService, name: web}",
        "    - targetRef: {kind: MeshService, name: backend}\n      default: {http: {requestTimeout: 5s}}\n",
    );
    let rules = ProxyRules::compute(&web(), [&p_web, &p_mesh]);
    let backend = rules.to(ResourceType::MeshTimeout, "backend").unwrap();
    assert_eq!(req_timeout(backend).as_deref(), Some("5s"));
    assert_eq!(backend.conf["idleTimeout"], "1h");
    assert_eq!(backend.origins["/http/requestTimeout"].name, "p-web");
    assert_eq!(backend.origins["/idleTimeout"].name, "p-mesh");
    assert_eq!(backend.origins["/idleTimeout"].entry, "to[0]");
    let redis = rules.to(ResourceType::MeshTimeout, "redis").unwrap();
    assert_eq!(req_timeout(redis).as_deref(), Some("15s"));
    assert_eq!(
        rules.types[&ResourceType::MeshTimeout].matched,
        vec!["p-mesh", "p-web"]
    );
}

#[test]
fn top_level_specificity_beats_to_specificity() {
    // A more specific top-level policy wins even when the weaker one names the service.
    let weak = timeout(
        "weak",
        "{kind: Mesh}",
        "    - targetRef: {kind: MeshService, name: backend}\n      default: {http: {requestTimeout: 1s}}\n",
    );
    let strong = timeout(
        "strong",
        "{kind: MeshSubset, tags: {version: v1}}",
        "    - targetRef: {kind: Mesh}\n      default: {http: {requestTimeout: 9s}}\n",
    );
    let rules = ProxyRules::compute(&web(), [&weak, &strong]);
    let m = rules.to(ResourceType::MeshTimeout, "backend").unwrap();
    // Subset {service: backend} merges both items in policy order: weak then strong.
    assert_eq!(req_timeout(m).as_deref(), Some("9s"));
}

#[test]
fn equal_priority_smaller_name_wins_and_zone_beats_global() {
    // Same kind: the lexicographically smaller display name sorts last and wins; zone origin beats global.
    let a = timeout(
        "aaa",
        "{kind: Mesh}",
        "    - targetRef: {kind: Mesh}\n      default: {http: {requestTimeout: 1s}}\n",
    );
    let z = timeout(
        "zzz",
        "{kind: Mesh}",
        "    - targetRef: {kind: Mesh}\n      default: {http: {requestTimeout: 2s}}\n",
    );
    let rules = ProxyRules::compute(&web(), [&a, &z]);
    let m = rules.to(ResourceType::MeshTimeout, "x").unwrap();
    assert_eq!(req_timeout(m).as_deref(), Some("1s"));
    let mut zz = (*z).clone();
    zz.meta
        .labels
        .insert("kuma.io/origin".into(), "zone".into());
    let mut aa = (*a).clone();
    aa.meta
        .labels
        .insert("kuma.io/origin".into(), "global".into());
    let (zz, aa) = (Arc::new(zz), Arc::new(aa));
    let rules = ProxyRules::compute(&web(), [&aa, &zz]);
    let m = rules.to(ResourceType::MeshTimeout, "x").unwrap();
    assert_eq!(req_timeout(m).as_deref(), Some("2s"));
}

#[test]
fn selection_by_kind() {
    // Top-level kinds select by inbound tags, service, dataplane name/labels/section; shadow is skipped.
    let to = "    - targetRef: {kind: Mesh}\n      default: {idleTimeout: 1h}\n";
    let sel = |top: &str| {
        let p = timeout("p", top, to);
        ProxyRules::compute(&web(), [&p]).has(ResourceType::MeshTimeout)
    };
    assert!(sel("{kind: Mesh}"));
    assert!(sel("{kind: Mesh, proxyTypes: [Sidecar]}"));
    assert!(!sel("{kind: Mesh, proxyTypes: [Gateway]}"));
    assert!(sel("{kind: MeshSubset, tags: {version: v1}}"));
    assert!(sel("{kind: MeshSubset, tags: {version: '*'}}"));
    assert!(!sel("{kind: MeshSubset, tags: {version: v2}}"));
    assert!(sel("{kind: MeshService, name: web-admin}"));
    assert!(!sel("{kind: MeshService, name: backend}"));
    assert!(sel(
        "{kind: MeshServiceSubset, name: web, tags: {version: v1}}"
    ));
    assert!(!sel(
        "{kind: MeshServiceSubset, name: web-admin, tags: {version: v1}}"
    ));
    assert!(sel("{kind: Dataplane, name: web-1}"));
    assert!(!sel("{kind: Dataplane, name: web-2}"));
    assert!(sel("{kind: Dataplane, labels: {team: a}}"));
    assert!(!sel("{kind: Dataplane, labels: {team: b}}"));
    let mut shadow = (*timeout("s", "{kind: Mesh}", to)).clone();
    shadow
        .meta
        .labels
        .insert("kuma.io/effect".into(), "shadow".into());
    assert!(!ProxyRules::compute(&web(), [&Arc::new(shadow)]).has(ResourceType::MeshTimeout));
}

#[test]
fn inbound_rules_per_inbound() {
    // from[] confs apply only to the inbounds the top-level targetRef selected.
    let p = res(r#"
type: MeshTimeout
mesh: default
name: in
spec:
  targetRef: {kind: MeshService, name: web}
  from:
    - targetRef: {kind: Mesh}
      default: {http: {requestTimeout: 3s}}
"#);
    let rules = ProxyRules::compute(&web(), [&p]);
    let m = rules.from(ResourceType::MeshTimeout, 8080).unwrap();
    assert_eq!(req_timeout(m).as_deref(), Some("3s"));
    assert_eq!(m.origins["/http/requestTimeout"].entry, "from[0]");
    assert!(rules.from(ResourceType::MeshTimeout, 9090).is_none());
}

#[test]
fn arrays_replace_and_routes_merge_by_matches() {
    // Merge-patch replaces arrays; MeshHTTPRoute rules with equal matches merge, others accumulate, newest first.
    let o1 = Origin {
        ty: "T".into(),
        name: "a".into(),
        entry: "to[0]".into(),
    };
    let o2 = Origin {
        ty: "T".into(),
        name: "b".into(),
        entry: "to[0]".into(),
    };
    let v1 = serde_json::json!({"list": [1, 2], "obj": {"x": 1}});
    let v2 = serde_json::json!({"list": [3], "obj": {"y": 2}});
    let m = merge::merge_all([(&v1, &o1), (&v2, &o2)], MergeMode::Patch);
    assert_eq!(
        m.conf,
        serde_json::json!({"list": [3], "obj": {"x": 1, "y": 2}})
    );
    assert_eq!(m.origins["/list"].name, "b");
    assert_eq!(m.origin_of("/obj/x").unwrap().name, "a");
    let r1 = serde_json::json!({"rules": [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/a"}}], "default": {"backendRefs": [{"kind": "MeshService", "name": "a"}]}},
        {"matches": [{"path": {"type": "PathPrefix", "value": "/b"}}], "default": {"backendRefs": [{"kind": "MeshService", "name": "b"}]}}
    ]});
    let r2 = serde_json::json!({"rules": [
        {"matches": [{"path": {"type": "PathPrefix", "value": "/b"}}], "default": {"filters": [{"type": "RequestHeaderModifier"}]}}
    ]});
    let m = merge::merge_all([(&r1, &o1), (&r2, &o2)], MergeMode::RoutesByMatches);
    let rules = m.conf["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0]["matches"][0]["path"]["value"], "/b");
    assert_eq!(rules[0]["default"]["backendRefs"][0]["name"], "b");
    assert!(rules[0]["default"]["filters"].is_array());
    assert_eq!(m.origins["/rules/0"].name, "b");
    assert_eq!(m.origins["/rules/1"].name, "a");
}

#[test]
fn default_policies_validate_and_respect_skip() {
    // A new mesh gets Kuma 2.x's four default policies unless skipCreatingInitialPolicies names them.
    let mesh = res("type: Mesh\nname: m1\n");
    let names: Vec<String> = defaults::default_policies(&mesh)
        .unwrap()
        .into_iter()
        .map(|r| r.meta.name)
        .collect();
    assert_eq!(
        names,
        vec![
            "mesh-timeout-all-m1",
            "mesh-gateways-timeout-all-m1",
            "mesh-circuit-breaker-all-m1",
            "mesh-retry-all-m1"
        ]
    );
    let skip = res("type: Mesh\nname: m2\nskipCreatingInitialPolicies: [MeshRetry]\n");
    assert_eq!(defaults::default_policies(&skip).unwrap().len(), 3);
    let none = res("type: Mesh\nname: m3\nskipCreatingInitialPolicies: ['*']\n");
    assert!(defaults::default_policies(&none).unwrap().is_empty());
}

// kuma.io's 2.14 examples select services by `labels: {kuma.io/display-name: x}`:
// that is the MeshService Kuma generates for service `x`, at the top and in `to`.
// Labels that select by anything else select nothing (the API warns).
#[test]
fn mesh_service_by_display_name_label() {
    let by_label = timeout(
        "by-label",
        "{kind: MeshService, labels: {kuma.io/display-name: web}}",
        "    - targetRef: {kind: MeshService, labels: {kuma.io/display-name: backend}}\n      default: {http: {requestTimeout: 3s}}\n",
    );
    let rules = ProxyRules::compute(&web(), [&by_label]);
    let backend = rules.to(ResourceType::MeshTimeout, "backend").unwrap();
    assert_eq!(req_timeout(backend).as_deref(), Some("3s"));
    assert!(rules.to(ResourceType::MeshTimeout, "redis").is_none());

    let other_labels = timeout(
        "other",
        "{kind: Mesh}",
        "    - targetRef: {kind: MeshService, labels: {kuma.io/display-name: backend, kuma.io/zone: east}}\n      default: {http: {requestTimeout: 3s}}\n",
    );
    let rules = ProxyRules::compute(&web(), [&other_labels]);
    assert!(rules.to(ResourceType::MeshTimeout, "backend").is_none());
}
