//! A small JSON-schema checker for OpenAPI 3.1 response schemas, enough to
//! hold Weft's answers against Kuma's `openapi.yaml` (the harness
//! `examples/kuma_openapi.rs`): `$ref` (to `#/...` in the same document),
//! `allOf`, `oneOf`/`anyOf` (any alternative that matches), `type` (a name or
//! a list of names; `integer` is a whole number), `nullable`, `required`,
//! `properties`, `additionalProperties` (a schema or `false`), `items` and
//! `enum`. Formats, examples and descriptions are not checked.
//!
//! Two leniencies, because Kuma's own answers need them (its golden files in
//! `pkg/api-server/testdata`): an optional property holding `null` counts as
//! absent (Kuma lists answer `"next": null` where the spec says `next: {type:
//! string}`), and a protobuf timestamp, which the spec describes as the
//! message (`{seconds, nanos}`), may be its JSON form, an RFC 3339 string
//! (`"connectTime": "2019-07-01T00:00:00Z"`).

use serde_json::Value;
use std::fmt;

/// One way an answer differs from its schema, at a JSON path (`$.items[0].name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub at: String,
    pub reason: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.reason)
    }
}

/// How deep `$ref`s may nest before the checker stops (a schema that refers to
/// itself without consuming the value would loop otherwise).
const MAX_DEPTH: usize = 64;

/// An OpenAPI document (already read from YAML or JSON).
pub struct OpenApi {
    root: Value,
}

impl OpenApi {
    pub fn new(root: Value) -> Self {
        OpenApi { root }
    }

    /// The path templates the document lists (`/meshes/{mesh}/dataplanes`, ...).
    pub fn paths(&self) -> Vec<String> {
        self.root["paths"]
            .as_object()
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The JSON schema of the `status` answer of `method` on `path` (a template
    /// as the document writes it), with a name for it: the last `$ref` on the
    /// way (`#/components/schemas/DataplaneOverview` → `DataplaneOverview`), or
    /// the response's name for an inline schema. `None` when the document has
    /// no such answer.
    pub fn response_schema(
        &self,
        path: &str,
        method: &str,
        status: u16,
    ) -> Option<(String, Value)> {
        let op = self.root["paths"].get(path)?.get(method.to_lowercase())?;
        let responses = op.get("responses")?;
        let mut resp = responses.get(status.to_string())?.clone();
        let mut name = format!("{method} {path} {status}");
        for _ in 0..MAX_DEPTH {
            match resp.get("$ref").and_then(Value::as_str) {
                Some(r) => {
                    name = ref_name(r).to_string();
                    resp = self.resolve(r)?.clone();
                }
                None => break,
            }
        }
        let content = resp.get("content")?;
        let media = content
            .get("application/json")
            .or_else(|| content.as_object().and_then(|c| c.values().next()))?;
        let schema = media.get("schema")?.clone();
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            name = ref_name(r).to_string();
        }
        Some((name, schema))
    }

    /// What a `#/a/b/c` reference points at.
    pub fn resolve(&self, reference: &str) -> Option<&Value> {
        let pointer = reference.strip_prefix('#')?;
        let pointer = pointer.replace("~1", "/").replace("~0", "~");
        self.root.pointer(&pointer)
    }

    /// Every way `value` differs from `schema`, each at its JSON path.
    pub fn check(&self, schema: &Value, value: &Value) -> Vec<Violation> {
        let mut out = Vec::new();
        self.walk(schema, value, "$", 0, &mut out);
        out
    }

    fn walk(
        &self,
        schema: &Value,
        value: &Value,
        at: &str,
        depth: usize,
        out: &mut Vec<Violation>,
    ) {
        let fail = |out: &mut Vec<Violation>, reason: String| {
            out.push(Violation {
                at: at.to_string(),
                reason,
            })
        };
        if depth > MAX_DEPTH {
            fail(out, "schema nests too deep to check".into());
            return;
        }
        let Some(s) = schema.as_object() else {
            // `true` (or an empty schema written as anything else) accepts all.
            if schema == &Value::Bool(false) {
                fail(out, "no value is allowed here".into());
            }
            return;
        };
        if let Some(r) = s.get("$ref").and_then(Value::as_str) {
            match self.resolve(r) {
                Some(target) => self.walk(target, value, at, depth + 1, out),
                None => fail(out, format!("unresolvable $ref {r}")),
            }
        }
        if value.is_null() && s.get("nullable") == Some(&Value::Bool(true)) {
            return;
        }
        if value.is_string() && is_timestamp_message(s) {
            return;
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.walk(sub, value, at, depth + 1, out);
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(alts) = s.get(key).and_then(Value::as_array) {
                let mut best: Option<Vec<Violation>> = None;
                for alt in alts {
                    let mut v = Vec::new();
                    self.walk(alt, value, at, depth + 1, &mut v);
                    if v.is_empty() {
                        best = None;
                        break;
                    }
                    if best.as_ref().is_none_or(|b| v.len() < b.len()) {
                        best = Some(v);
                    }
                }
                if let Some(b) = best {
                    fail(
                        out,
                        format!("matches none of the {} alternatives of {key}", alts.len()),
                    );
                    out.extend(b);
                }
            }
        }
        if let Some(t) = s.get("type") {
            let names: Vec<&str> = match t {
                Value::String(n) => vec![n.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !names.is_empty() && !names.iter().any(|n| has_type(value, n)) {
                fail(
                    out,
                    format!("expected {}, found {}", names.join(" or "), type_of(value)),
                );
                return;
            }
        }
        if let Some(e) = s.get("enum").and_then(Value::as_array)
            && !e.contains(value)
        {
            fail(
                out,
                format!("{value} is not one of {}", Value::Array(e.clone())),
            );
        }
        if let Some(obj) = value.as_object() {
            let required: Vec<&str> = s
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for r in &required {
                if !obj.contains_key(*r) {
                    fail(out, format!("missing required property {r:?}"));
                }
            }
            let props = s.get("properties").and_then(Value::as_object);
            for (k, v) in obj {
                let child = format!("{at}.{k}");
                match props.and_then(|p| p.get(k)) {
                    Some(_) if v.is_null() && !required.contains(&k.as_str()) => {}
                    Some(p) => self.walk(p, v, &child, depth + 1, out),
                    None => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) => out.push(Violation {
                            at: child,
                            reason: "property not allowed here".into(),
                        }),
                        Some(extra @ Value::Object(_)) => {
                            self.walk(extra, v, &child, depth + 1, out)
                        }
                        _ => {}
                    },
                }
            }
        }
        if let (Some(items), Some(arr)) = (s.get("items"), value.as_array()) {
            for (i, v) in arr.iter().enumerate() {
                self.walk(items, v, &format!("{at}[{i}]"), depth + 1, out);
            }
        }
    }
}

/// A protobuf `Timestamp` as the spec writes it: an object of exactly
/// `seconds` and `nanos`.
fn is_timestamp_message(s: &serde_json::Map<String, Value>) -> bool {
    s.get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| p.len() == 2 && p.contains_key("seconds") && p.contains_key("nanos"))
}

fn ref_name(r: &str) -> &str {
    r.rsplit('/').next().unwrap_or(r)
}

fn has_type(v: &Value, name: &str) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> OpenApi {
        OpenApi::new(json!({
            "paths": {"/things": {"get": {"responses": {"200": {"$ref": "#/components/responses/ThingList"}}}}},
            "components": {
                "responses": {"ThingList": {"content": {"application/json": {"schema": {
                    "type": "object",
                    "required": ["items"],
                    "properties": {
                        "items": {"type": "array", "items": {"$ref": "#/components/schemas/Thing"}},
                        "next": {"type": "string"}
                    }
                }}}}},
                "schemas": {
                    "Meta": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
                    "Thing": {"allOf": [
                        {"$ref": "#/components/schemas/Meta"},
                        {"type": "object", "properties": {
                            "kind": {"type": "string", "enum": ["A", "B"]},
                            "size": {"type": ["integer", "null"]},
                            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                            "port": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                            "since": {"type": "object", "properties": {"seconds": {"type": "integer"}, "nanos": {"type": "integer"}}}
                        }}
                    ]}
                }
            }
        }))
    }

    fn check(value: Value) -> Vec<String> {
        let d = doc();
        let (name, schema) = d.response_schema("/things", "GET", 200).unwrap();
        assert_eq!(name, "ThingList");
        d.check(&schema, &value)
            .iter()
            .map(|v| v.to_string())
            .collect()
    }

    #[test]
    fn a_conforming_answer_has_no_violation() {
        // Every keyword the checker knows accepts a value that fits it; a null
        // optional property counts as absent, a timestamp may be RFC 3339 text.
        let v = check(
            json!({"items": [{"name": "a", "kind": "A", "size": null, "tags": {"k": "v"}, "port": "http", "since": "2019-07-01T00:00:00Z"}], "next": null}),
        );
        assert!(v.is_empty(), "{v:?}");
    }

    #[test]
    fn each_violation_is_named_at_its_json_path() {
        // A missing required field (through allOf and $ref), a wrong type, a value
        // outside the enum, a bad map value and no matching oneOf alternative.
        let v = check(
            json!({"items": [{"kind": "C", "size": 1.5, "tags": {"k": 1}, "port": true}], "next": 3}),
        );
        assert_eq!(
            v,
            [
                "$.items[0]: missing required property \"name\"",
                "$.items[0].kind: \"C\" is not one of [\"A\",\"B\"]",
                "$.items[0].port: matches none of the 2 alternatives of oneOf",
                "$.items[0].port: expected integer, found boolean",
                "$.items[0].size: expected integer or null, found number",
                "$.items[0].tags.k: expected string, found number",
                "$.next: expected string, found number",
            ]
        );
    }

    #[test]
    fn additional_properties_false_refuses_extra_fields() {
        // `additionalProperties: false` names the unexpected property.
        let d = OpenApi::new(json!({}));
        let schema =
            json!({"type": "object", "properties": {"a": {}}, "additionalProperties": false});
        let v = d.check(&schema, &json!({"a": 1, "b": 2}));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].at, "$.b");
    }
}
