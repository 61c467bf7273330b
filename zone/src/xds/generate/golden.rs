//! Golden files for the generated Envoy configuration (docs/policies.md, "Golden
//! files").
//!
//! Each `zone/tests/golden/<case>.yaml` is a mesh state — the Mesh, Dataplanes and
//! policies as `---`-separated documents — whose first line names the proxy
//! (`# proxy: <dataplane name>`). `<case>.json` beside it is that proxy's whole
//! snapshot (every xDS type, resources by name) as Envoy proto3 JSON. Any difference
//! fails with the command to see it; `WEFT_BLESS=1 cargo test -p weft-zone --lib
//! golden` rewrites the JSON files, to be reviewed like code. Every case is also run
//! through `envoy --mode validate`, so the goldens are configurations Envoy accepts.

use super::tests::envoy_validate;
use super::{MeshView, generate, generate_config, json};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use weft_model::resource::{Resource, ResourceType, parse_document};

/// Set to rewrite the golden JSON files from the current generator.
const BLESS: &str = "WEFT_BLESS";
const REGENERATE: &str = "WEFT_BLESS=1 cargo test -p weft-zone --lib golden";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// One case: the mesh state and the proxy to generate.
struct Case {
    name: String,
    view: MeshView,
    proxy: Arc<Resource>,
}

fn load_case(path: &Path) -> Case {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_else(|| panic!("{}: not a UTF-8 name", path.display()))
        .to_string();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let proxy_name = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("# proxy:"))
        .map(str::trim)
        .unwrap_or_else(|| panic!("{name}: the first line must be `# proxy: <dataplane name>`"));
    let mut mesh = None;
    let mut resources = Vec::new();
    for (i, doc) in documents(&text).into_iter().enumerate() {
        let value = parse_document(doc.as_bytes(), false)
            .unwrap_or_else(|e| panic!("{name}, document {i}: {e}"));
        let res =
            Resource::from_value(value).unwrap_or_else(|e| panic!("{name}, document {i}: {e}"));
        res.validate()
            .unwrap_or_else(|e| panic!("{name}, document {i}: {e}"));
        match res.resource_type() {
            ResourceType::Mesh => mesh = Some(Arc::new(res)),
            _ => resources.push(Arc::new(res)),
        }
    }
    let mesh = mesh.unwrap_or_else(|| panic!("{name}: no Mesh document"));
    let proxy = resources
        .iter()
        .find(|r| r.resource_type() == ResourceType::Dataplane && r.meta.name == proxy_name)
        .cloned()
        .unwrap_or_else(|| panic!("{name}: no Dataplane {proxy_name:?}"));
    Case {
        name,
        view: MeshView::new(mesh, resources),
        proxy,
    }
}

/// The YAML documents of a `---`-separated stream (comment-only ones dropped).
fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(doc) = docs.last_mut() {
            doc.push_str(line);
            doc.push('\n');
        }
    }
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// The proxy's snapshot as pretty JSON: type URL → resource name → Envoy JSON.
/// serde_json's maps are sorted and versions are left out (content hashes, covered
/// by their own tests), so the text depends on the configuration alone.
fn render(case: &Case) -> String {
    let snap = generate(&case.view, &case.proxy).unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let mut types = Map::new();
    for type_url in snap.type_urls() {
        let mut by_name = Map::new();
        for (name, entry) in snap.get(type_url).into_iter().flat_map(|t| t.iter()) {
            let v = json::any_to_json(&entry.payload)
                .unwrap_or_else(|e| panic!("{}: {type_url} {name}: {e}", case.name));
            by_name.insert(name.to_string(), v);
        }
        types.insert(type_url.to_string(), Value::Object(by_name));
    }
    let doc = serde_json::json!({
        "proxy": format!("{}/{}", case.view.mesh.meta.name, case.proxy.meta.name),
        "resources": types,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

/// Where the two texts first differ, with a few lines of each around it.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let at = w
        .iter()
        .zip(&g)
        .position(|(a, b)| a != b)
        .unwrap_or(w.len().min(g.len()));
    let around = |lines: &[&str]| {
        lines
            .iter()
            .enumerate()
            .skip(at.saturating_sub(3))
            .take(7)
            .map(|(i, l)| format!("{:>6} {l}", i + 1))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "first difference at line {} ({} lines checked in, {} generated)\n--- checked in:\n{}\n+++ generated:\n{}",
        at + 1,
        w.len(),
        g.len(),
        around(&w),
        around(&g)
    )
}

#[test]
fn golden_envoy_config() {
    // Every golden case generates exactly its checked-in Envoy JSON, and Envoy accepts it.
    let dir = golden_dir();
    let bless = std::env::var_os(BLESS).is_some();
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    inputs.sort();
    assert!(
        inputs.len() >= 5,
        "golden cases missing in {}",
        dir.display()
    );
    let out_dir = std::env::temp_dir().join(format!("weft-golden-{}", std::process::id()));
    let mut failures = Vec::new();
    for input in &inputs {
        let case = load_case(input);
        envoy_validate(&generate_config(&case.view, &case.proxy).unwrap());
        let got = render(&case);
        assert_eq!(
            got,
            render(&case),
            "{}: generation is not deterministic",
            case.name
        );
        let golden = input.with_extension("json");
        if bless {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if want != got {
            std::fs::create_dir_all(&out_dir).unwrap();
            let actual = out_dir.join(format!("{}.json", case.name));
            std::fs::write(&actual, &got).unwrap();
            failures.push(format!(
                "{}: generated config differs from {}\n{}\nsee all of it: diff -u {} {}",
                case.name,
                golden.display(),
                first_difference(&want, &got),
                golden.display(),
                actual.display()
            ));
        }
    }
    // A golden whose case is gone is stale.
    for entry in std::fs::read_dir(&dir).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") && !p.with_extension("yaml").exists() {
            if bless {
                std::fs::remove_file(&p).unwrap();
            } else {
                failures.push(format!(
                    "{}: no case {} beside it",
                    p.display(),
                    p.with_extension("yaml").display()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended, regenerate with `{REGENERATE}` and review the diff.",
        failures.join("\n\n")
    );
}

#[test]
fn documents_split_on_separators() {
    // A `---` line separates documents; comment-only documents are dropped.
    let docs = documents("# proxy: a\n# about\ntype: Mesh\n---\n# only a comment\n---\ntype: X\n");
    assert_eq!(docs, vec!["# proxy: a\n# about\ntype: Mesh\n", "type: X\n"]);
}
