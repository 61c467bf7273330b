//! Runs Kuma's own validator test tables against Weft's decoder and validator.
//!
//! ```text
//! cargo run -p weft-model --example kuma_validators -- <kuma checkout> [--verbose]
//! ```
//!
//! The checkout is a plain tree of `kumahq/kuma` (for example
//! `git -C <mirror> archive v2.14.3 pkg | tar -x -C <dir>`). Nothing of it is
//! copied into Weft: the cases are read from the Go test files at run time.
//!
//! Kuma's tables come in three shapes, all read here:
//! - `DescribeTable(...)` with `Entry(desc, yaml)` or `Entry(desc, testCase{...})`:
//!   the YAML is the spec alone (a policy's `spec:`, or a Mesh's fields); a table
//!   whose name says "pass" holds valid cases, the others hold an `expected:`
//!   violations document, or name `testdata/<file>.input.yaml` whose
//!   `<file>.output.yaml` (absent: valid) holds the violations;
//! - `DescribeValidCases(New..., Entry(desc, yaml))`: whole resources, valid;
//! - `DescribeErrorCases(New..., ErrorCase(desc, Violation{...}, yaml),
//!   ErrorCases(desc, []Violation{...}, yaml))`: whole resources, invalid.
//!
//! For each invalid case the harness checks that Weft refuses it and names every
//! field Kuma names. A Kuma field counts as named when Weft reports that path or
//! a path inside it, after undoing Kuma's path quirks (see [`kuma_quirks`]).

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use weft_model::resource::{Resource, ResourceType, Violation};

/// The files the harness reads, relative to the checkout, and the type each tests.
const TABLES: &[(&str, &str)] = &[
    (
        "pkg/core/resources/apis/mesh/mesh_validator_test.go",
        "Mesh",
    ),
    (
        "pkg/plugins/policies/meshaccesslog/api/v1alpha1/validator_test.go",
        "MeshAccessLog",
    ),
    (
        "pkg/plugins/policies/meshcircuitbreaker/api/v1alpha1/validator_test.go",
        "MeshCircuitBreaker",
    ),
    (
        "pkg/plugins/policies/meshfaultinjection/api/v1alpha1/validator_test.go",
        "MeshFaultInjection",
    ),
    (
        "pkg/plugins/policies/meshhealthcheck/api/v1alpha1/validator_test.go",
        "MeshHealthCheck",
    ),
    (
        "pkg/plugins/policies/meshhttproute/api/v1alpha1/validation_test.go",
        "MeshHTTPRoute",
    ),
    (
        "pkg/plugins/policies/meshloadbalancingstrategy/api/v1alpha1/validator_test.go",
        "MeshLoadBalancingStrategy",
    ),
    (
        "pkg/plugins/policies/meshmetric/api/v1alpha1/validator_test.go",
        "MeshMetric",
    ),
    (
        "pkg/plugins/policies/meshpassthrough/api/v1alpha1/validator_test.go",
        "MeshPassthrough",
    ),
    (
        "pkg/plugins/policies/meshproxypatch/api/v1alpha1/validator_test.go",
        "MeshProxyPatch",
    ),
    (
        "pkg/plugins/policies/meshratelimit/api/v1alpha1/validator_test.go",
        "MeshRateLimit",
    ),
    (
        "pkg/plugins/policies/meshretry/api/v1alpha1/validator_test.go",
        "MeshRetry",
    ),
    (
        "pkg/plugins/policies/meshtcproute/api/v1alpha1/validator_test.go",
        "MeshTCPRoute",
    ),
    (
        "pkg/plugins/policies/meshtimeout/api/v1alpha1/validator_test.go",
        "MeshTimeout",
    ),
    (
        "pkg/plugins/policies/meshtls/api/v1alpha1/validator_test.go",
        "MeshTLS",
    ),
    (
        "pkg/plugins/policies/meshtrace/api/v1alpha1/validator_test.go",
        "MeshTrace",
    ),
    (
        "pkg/plugins/policies/meshtrafficpermission/api/v1alpha1/validator_test.go",
        "MeshTrafficPermission",
    ),
];

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(root) = args.next().map(PathBuf::from) else {
        eprintln!("usage: kuma_validators <kuma checkout> [--verbose]");
        std::process::exit(2);
    };
    let verbose = args.any(|a| a == "--verbose" || a == "-v");
    let mut total = Tally::default();
    let mut table = String::new();
    let mut details = String::new();
    for (file, ty) in TABLES {
        let ty = ResourceType::from_name(ty).unwrap_or_else(|| panic!("Weft has no type {ty}"));
        let path = root.join(file);
        let source = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                std::process::exit(1);
            }
        };
        let cases = read_cases(&source, path.parent().unwrap_or(Path::new(".")));
        let mut tally = Tally::default();
        for case in &cases {
            let outcome = run(ty, case);
            tally.add(case, &outcome);
            if verbose && !outcome.passes(case) {
                let _ = writeln!(details, "\n### {ty}: {}\n", case.desc);
                let _ = writeln!(details, "```yaml\n{}\n```", case.input.trim_matches('\n'));
                match &case.expected {
                    None => {
                        let _ = writeln!(details, "Kuma: valid");
                    }
                    Some(v) => {
                        for (f, m) in v {
                            let _ = writeln!(details, "- Kuma: `{f}`: {m}");
                        }
                    }
                }
                match &outcome.result {
                    Ok(()) => {
                        let _ = writeln!(details, "- Weft: accepted");
                    }
                    Err(vs) => {
                        for v in vs {
                            let _ = writeln!(details, "- Weft: `{}`: {}", v.field, v.reason);
                        }
                    }
                }
            }
        }
        let _ = writeln!(table, "| {ty} | {} |", tally.row());
        total.merge(&tally);
    }
    println!("| type | valid accepted | invalid refused | Kuma's fields named |");
    println!("|---|---|---|---|");
    print!("{table}");
    println!("| **all** | {} |", total.row());
    if verbose {
        print!("{details}");
    }
}

/// One case of a Kuma table.
struct Case {
    desc: String,
    /// The YAML as Kuma's test feeds it.
    input: String,
    /// Whether `input` is a spec alone (DescribeTable) or a whole resource.
    spec_only: bool,
    /// The resource name a file-based case sets.
    name: Option<String>,
    /// `None`: valid; `Some`: Kuma's (field, message) violations.
    expected: Option<Vec<(String, String)>>,
}

struct Outcome {
    result: Result<(), Vec<Violation>>,
    /// Kuma's fields Weft named (only for invalid cases).
    named: usize,
}

impl Outcome {
    fn passes(&self, case: &Case) -> bool {
        match (&case.expected, &self.result) {
            (None, Ok(())) => true,
            (Some(v), Err(_)) => self.named == v.len(),
            _ => false,
        }
    }
}

#[derive(Default)]
struct Tally {
    valid: usize,
    valid_ok: usize,
    invalid: usize,
    invalid_ok: usize,
    fields: usize,
    fields_ok: usize,
}

impl Tally {
    fn add(&mut self, case: &Case, o: &Outcome) {
        match &case.expected {
            None => {
                self.valid += 1;
                self.valid_ok += usize::from(o.result.is_ok());
            }
            Some(v) => {
                self.invalid += 1;
                self.invalid_ok += usize::from(o.result.is_err());
                self.fields += v.len();
                self.fields_ok += o.named;
            }
        }
    }

    fn merge(&mut self, o: &Tally) {
        self.valid += o.valid;
        self.valid_ok += o.valid_ok;
        self.invalid += o.invalid;
        self.invalid_ok += o.invalid_ok;
        self.fields += o.fields;
        self.fields_ok += o.fields_ok;
    }

    fn row(&self) -> String {
        format!(
            "{}/{} | {}/{} | {}/{}",
            self.valid_ok, self.valid, self.invalid_ok, self.invalid, self.fields_ok, self.fields
        )
    }
}

fn run(ty: ResourceType, case: &Case) -> Outcome {
    let result = decode(ty, case);
    let named = match (&case.expected, &result) {
        (Some(kuma), Err(weft)) => kuma
            .iter()
            .filter(|(field, _)| {
                let want = kuma_quirks(field);
                weft.iter().any(|v| {
                    v.field == want
                        || v.field.starts_with(&format!("{want}."))
                        || v.field.starts_with(&format!("{want}["))
                })
            })
            .count(),
        _ => 0,
    };
    Outcome { result, named }
}

/// Builds the universal document from the case's YAML and reads it as the API does.
fn decode(ty: ResourceType, case: &Case) -> Result<(), Vec<Violation>> {
    let parsed: Value = if case.input.trim().is_empty() {
        Value::Object(Map::new())
    } else {
        serde_yaml_ng::from_str(&case.input).map_err(|e| {
            vec![Violation {
                field: String::new(),
                reason: format!("harness: the case's YAML does not parse: {e}"),
            }]
        })?
    };
    let mut body = match parsed {
        Value::Object(m) => m,
        Value::Null => Map::new(),
        other => {
            return Err(vec![Violation {
                field: String::new(),
                reason: format!("harness: the case is not a map: {other}"),
            }]);
        }
    };
    let meta = ["type", "name", "mesh", "labels"];
    let mut doc = Map::new();
    if !case.spec_only {
        for k in meta {
            if let Some(v) = body.remove(k) {
                doc.insert(k.to_string(), v);
            }
        }
    }
    doc.insert("type".into(), Value::String(ty.name().into()));
    let name = case.name.clone().unwrap_or_else(|| "kuma-case".into());
    doc.entry("name").or_insert(Value::String(name));
    if ty.is_mesh_scoped() {
        doc.entry("mesh").or_insert(Value::String("default".into()));
    }
    if ty == ResourceType::Mesh {
        doc.extend(body);
    } else if let Some(spec) = body.remove("spec").filter(|_| body.is_empty()) {
        doc.insert("spec".into(), spec);
    } else {
        doc.insert("spec".into(), Value::Object(body));
    }
    Resource::read(Value::Object(doc))
        .map(drop)
        .map_err(|e| e.violations().to_vec())
}

/// Kuma's field paths where they are not the YAML's path, rewritten to it.
/// Each rule is one of Kuma's quirks, seen in its tables.
fn kuma_quirks(field: &str) -> String {
    let mut f = field.to_string();
    for (quirk, real) in [
        // MeshMetric names list items by their Go type: `backends.backend[0]`,
        // and a Prometheus port outside its `prometheus` section.
        (".backends.backend[0].port", ".backends[0].prometheus.port"),
        (".backends.backend[", ".backends["),
        (".applications.application[", ".applications["),
        (".sidecar.profiles.exclude.", ".sidecar.profiles.exclude"),
        (".sidecar.profiles.include.", ".sidecar.profiles.include"),
        // MeshRetry and others: the Go field `conf` under `default`.
        (".default.conf.", ".default."),
        // Mesh backends: the proto field `config` for the YAML's `conf`.
        (".config.", ".conf."),
        // Mesh: the data-plane certificate rotation of the (only) CA backend.
        ("mtls.dpcert.", "mtls.backends[0].dpCert."),
    ] {
        f = f.replace(quirk, real);
    }
    if let Some(rest) = f.strip_suffix(".default.conf") {
        f = format!("{rest}.default");
    }
    // MeshHTTPRoute: `remove` is a list of names, Kuma adds `.name`.
    if let Some(i) = f.find(".remove[")
        && let Some(rest) = f.strip_suffix(".name")
        && rest.len() > i
    {
        f = rest.to_string();
    }
    // MeshFaultInjection: `http` is a list of faults; Kuma counts per fault
    // kind (`http.abort[0]`) where the YAML has `http[0].abort`.
    for kind in ["abort", "delay", "responseBandwidth"] {
        let quirk = format!(".http.{kind}[");
        if let Some(i) = f.find(&quirk) {
            let after = &f[i + quirk.len()..];
            if let Some(close) = after.find(']') {
                let index = &after[..close];
                let tail = &after[close + 1..];
                f = format!("{}.http[{index}].{kind}{tail}", &f[..i]);
            }
        }
    }
    // MeshTrafficPermission: rules' `allow`/`deny` lists are under `default`.
    for list in ["allow", "allowWithShadowDeny", "deny"] {
        let quirk = format!("].{list}[");
        if f.starts_with("spec.rules[") && f.contains(&quirk) && !f.contains(".default.") {
            f = f.replacen(&quirk, &format!("].default.{list}["), 1);
        }
    }
    f
}

// ---- reading Go test files ------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
}

fn tokenize(src: &str) -> Vec<Tok> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i] as char;
        if c.is_whitespace() {
            i += 1;
        } else if src[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if src[i..].starts_with("/*") {
            i = src[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
        } else if c == '`' {
            let end = src[i + 1..].find('`').map_or(b.len(), |e| i + 1 + e);
            out.push(Tok::Str(src[i + 1..end].to_string()));
            i = end + 1;
        } else if c == '"' {
            // A Go interpreted string: `\n`, `\t`, and an escaped character itself.
            let mut s = String::new();
            let mut rest = src[i + 1..].char_indices();
            let mut end = src.len() - i - 1;
            while let Some((at, ch)) = rest.next() {
                match ch {
                    '"' => {
                        end = at;
                        break;
                    }
                    '\\' => match rest.next() {
                        Some((_, 'n')) => s.push('\n'),
                        Some((_, 't')) => s.push('\t'),
                        Some((_, other)) => s.push(other),
                        None => {}
                    },
                    _ => s.push(ch),
                }
            }
            let j = i + 1 + end;
            out.push(Tok::Str(s));
            i = j + 1;
        } else if c == '\'' {
            let end = src[i + 1..].find('\'').map_or(b.len(), |e| i + 1 + e);
            i = end + 1;
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < b.len() && ((b[i] as char).is_alphanumeric() || b[i] == b'_' || b[i] == b'.')
            {
                i += 1;
            }
            out.push(Tok::Ident(src[start..i].to_string()));
        } else {
            out.push(Tok::Punct(c));
            i += c.len_utf8();
        }
    }
    out
}

/// The index just past the bracket that closes the one at `open`.
fn close_of(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate().skip(open) {
        match t {
            Tok::Punct('(' | '{' | '[') => depth += 1,
            Tok::Punct(')' | '}' | ']') => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
    }
    toks.len()
}

/// Splits a call's arguments (tokens between its parentheses) at top-level commas.
fn args(toks: &[Tok]) -> Vec<&[Tok]> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('(' | '{' | '[') => depth += 1,
            Tok::Punct(')' | '}' | ']') => depth -= 1,
            Tok::Punct(',') if depth == 0 => {
                out.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < toks.len() {
        out.push(&toks[start..]);
    }
    out
}

/// `key: "value"` pairs anywhere in `toks` (struct literal fields).
fn fields(toks: &[Tok]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for w in toks.windows(3) {
        if let [Tok::Ident(k), Tok::Punct(':'), Tok::Str(v)] = w {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

/// Every `{Field: ..., Message: ...}` in `toks`, in order.
fn violations(toks: &[Tok]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut field = None;
    for w in toks.windows(3) {
        if let [Tok::Ident(k), Tok::Punct(':'), Tok::Str(v)] = w {
            match k.as_str() {
                "Field" => field = Some(v.clone()),
                "Message" => {
                    if let Some(f) = field.take() {
                        out.push((f, v.clone()));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn last_str(toks: &[Tok]) -> Option<String> {
    toks.iter().rev().find_map(|t| match t {
        Tok::Str(s) => Some(s.clone()),
        _ => None,
    })
}

fn parse_expected(yaml: &str) -> Vec<(String, String)> {
    let v: Value = serde_yaml_ng::from_str(yaml).unwrap_or(Value::Null);
    v.get("violations")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|x| {
                    let s = |k: &str| x.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    (s("field"), s("message"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The enclosing table kinds, found by scanning call sites.
#[derive(Clone, Copy, PartialEq)]
enum Table {
    Valid,
    Invalid,
    /// A `DescribeTable` whose entries say themselves.
    Mixed,
}

fn read_cases(src: &str, dir: &Path) -> Vec<Case> {
    let toks = tokenize(src);
    let mut cases = Vec::new();
    // (end index, table) of every open table call.
    let mut open: Vec<(usize, Table)> = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        open.retain(|(end, _)| *end > i);
        let (Tok::Ident(name), Some(Tok::Punct('('))) = (&toks[i], toks.get(i + 1)) else {
            i += 1;
            continue;
        };
        let end = close_of(&toks, i + 1);
        match name.as_str() {
            "DescribeTable" => {
                let title = match toks.get(i + 2) {
                    Some(Tok::Str(s)) => s.clone(),
                    _ => String::new(),
                };
                let kind = if title.contains("pass") {
                    Table::Valid
                } else {
                    Table::Mixed
                };
                open.push((end, kind));
            }
            "DescribeValidCases" => open.push((end, Table::Valid)),
            "DescribeErrorCases" => open.push((end, Table::Invalid)),
            "Entry" | "ErrorCase" | "ErrorCases" => {
                if let Some(&(_, table)) = open.last()
                    && let Some(case) = entry(name, &toks[i + 2..end - 1], table, dir)
                {
                    cases.push(case);
                }
                i = end;
                continue;
            }
            _ => {}
        }
        i += 2;
    }
    cases
}

fn entry(call: &str, body: &[Tok], table: Table, dir: &Path) -> Option<Case> {
    let a = args(body);
    let desc = match a.first()?.first()? {
        Tok::Str(s) => s.clone(),
        _ => return None,
    };
    let rest: Vec<Tok> = a[1..].iter().flat_map(|x| x.iter().cloned()).collect();
    match (call, table) {
        ("ErrorCase" | "ErrorCases", _) => Some(Case {
            desc,
            input: last_str(a.last()?)?,
            spec_only: false,
            name: None,
            expected: Some(violations(&rest)),
        }),
        ("Entry", Table::Valid) => {
            let f = fields(&rest);
            let input = f
                .get("mesh")
                .or(f.get("inputYaml"))
                .cloned()
                .or_else(|| last_str(&rest))?;
            Some(Case {
                desc,
                input,
                spec_only: !looks_whole(&rest),
                name: None,
                expected: None,
            })
        }
        ("Entry", Table::Mixed) => {
            let f = fields(&rest);
            if let Some(file) = f.get("file") {
                let input = std::fs::read_to_string(
                    dir.join("testdata").join(format!("{file}.input.yaml")),
                )
                .ok()?;
                let expected = std::fs::read_to_string(
                    dir.join("testdata").join(format!("{file}.output.yaml")),
                )
                .ok()
                .map(|y| parse_expected(&y))
                .filter(|v| !v.is_empty());
                return Some(Case {
                    desc,
                    input,
                    spec_only: true,
                    name: f.get("name").cloned(),
                    expected,
                });
            }
            let input = f
                .get("inputYaml")
                .or(f.get("mesh"))
                .or(f.get("input"))
                .cloned()?;
            let expected = f
                .get("expected")
                .map(|y| parse_expected(y))
                .filter(|v| !v.is_empty());
            Some(Case {
                desc,
                input,
                spec_only: true,
                name: None,
                expected,
            })
        }
        _ => None,
    }
}

/// Whether a valid entry's YAML is a whole resource (has `type:` at its top).
fn looks_whole(toks: &[Tok]) -> bool {
    last_str(toks).is_some_and(|y| {
        serde_yaml_ng::from_str::<Value>(&y)
            .ok()
            .and_then(|v| v.get("type").cloned())
            .is_some()
    })
}
