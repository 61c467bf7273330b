//! What `apply -f` reads: files, every file of a directory, or stdin; `{{ key }}`
//! replaced by `-v key=value` as kumactl does; YAML split into its `---`
//! documents (each sent as written, so YAML stays YAML), JSON as one resource, a
//! JSON array, or a list (`{"items": [...]}`, what `get <plural> -o json` prints).

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read stdin: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("{source_name}: variable {name:?} is used but not given: add -v {name}=VALUE")]
    MissingVar { source_name: String, name: String },
    #[error("{source_name}: not valid YAML: {reason}")]
    Yaml { source_name: String, reason: String },
    #[error("{source_name}: not valid JSON: {source}")]
    Json {
        source_name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{source_name}: {reason}")]
    Shape { source_name: String, reason: String },
    #[error("{0}: no resources in it")]
    Empty(String),
}

/// One resource to PUT.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Where it came from, for messages: `file.yaml#2`.
    pub source: String,
    /// The resource, parsed (type, name, mesh are read from it).
    pub value: Value,
    /// The text to send.
    pub body: String,
    pub json: bool,
}

impl Document {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.value.get(name).and_then(Value::as_str)
    }

    pub fn content_type(&self) -> &'static str {
        if self.json {
            "application/json"
        } else {
            "application/yaml"
        }
    }
}

/// Replaces every `{{ key }}` (spaces optional) with its value; a placeholder
/// whose key is not in `vars` is an error naming it.
pub fn substitute(
    text: &str,
    vars: &BTreeMap<String, String>,
    source_name: &str,
) -> Result<String, ManifestError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let key = after[..end].trim();
        let is_key = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if is_key {
            let value = vars.get(key).ok_or_else(|| ManifestError::MissingVar {
                source_name: source_name.into(),
                name: key.into(),
            })?;
            out.push_str(value);
        } else {
            out.push_str(&rest[start..start + 2 + end + 2]);
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The `---`-separated documents of a YAML text, as written (blank and
/// comment-only documents dropped).
pub fn split_yaml(text: &str) -> Vec<String> {
    let mut docs = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let separator = line == "---"
            || line.starts_with("--- ")
            || line.starts_with("---\t")
            || line.starts_with("---#");
        if separator {
            docs.push(std::mem::take(&mut cur));
        } else if line.trim_end() == "..." {
            // End-of-document marker: the document ends here.
            docs.push(std::mem::take(&mut cur));
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    docs.push(cur);
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

fn looks_like_json(text: &str) -> bool {
    matches!(text.trim_start().chars().next(), Some('{') | Some('['))
}

/// The resources of one input text.
pub fn documents(text: &str, source_name: &str) -> Result<Vec<Document>, ManifestError> {
    let mut out = Vec::new();
    if looks_like_json(text) {
        let v: Value = serde_json::from_str(text).map_err(|source| ManifestError::Json {
            source_name: source_name.into(),
            source,
        })?;
        for (i, item) in items_of(v, source_name)?.into_iter().enumerate() {
            let body = serde_json::to_string(&item).map_err(|source| ManifestError::Json {
                source_name: source_name.into(),
                source,
            })?;
            out.push(Document {
                source: format!("{source_name}#{}", i + 1),
                value: item,
                body,
                json: true,
            });
        }
    } else {
        for (i, doc) in split_yaml(text).into_iter().enumerate() {
            let name = format!("{source_name}#{}", i + 1);
            let v: Value = serde_yaml_ng::from_str(&doc).map_err(|e| ManifestError::Yaml {
                source_name: name.clone(),
                reason: e.to_string(),
            })?;
            if v.get("items").is_some() && v.get("type").is_none() {
                // A list, as `get <plural> -o yaml` prints it: each item in turn.
                for (j, item) in items_of(v, &name)?.into_iter().enumerate() {
                    let body =
                        serde_yaml_ng::to_string(&item).map_err(|e| ManifestError::Yaml {
                            source_name: name.clone(),
                            reason: e.to_string(),
                        })?;
                    out.push(Document {
                        source: format!("{name}.items[{j}]"),
                        value: item,
                        body,
                        json: false,
                    });
                }
            } else {
                check_object(&v, &name)?;
                out.push(Document {
                    source: name,
                    value: v,
                    body: doc,
                    json: false,
                });
            }
        }
    }
    if out.is_empty() {
        return Err(ManifestError::Empty(source_name.into()));
    }
    Ok(out)
}

fn check_object(v: &Value, source_name: &str) -> Result<(), ManifestError> {
    if !v.is_object() {
        return Err(ManifestError::Shape {
            source_name: source_name.into(),
            reason: "a resource must be a mapping with type, name (and mesh)".into(),
        });
    }
    Ok(())
}

/// One resource, an array of them, or a list's `items`.
fn items_of(v: Value, source_name: &str) -> Result<Vec<Value>, ManifestError> {
    let items = match v {
        Value::Array(a) => a,
        Value::Object(mut m) if !m.contains_key("type") && m.contains_key("items") => {
            match m.remove("items") {
                Some(Value::Array(a)) => a,
                _ => {
                    return Err(ManifestError::Shape {
                        source_name: source_name.into(),
                        reason: "`items` must be a list of resources".into(),
                    });
                }
            }
        }
        other => vec![other],
    };
    for (i, item) in items.iter().enumerate() {
        check_object(item, &format!("{source_name}[{i}]"))?;
    }
    Ok(items)
}

/// The texts to apply: `-` is stdin (read once), a directory is each of its
/// files in name order (not recursing), anything else a file.
pub fn read_inputs(
    inputs: &[String],
    stdin: &mut dyn Read,
) -> Result<Vec<(String, String)>, ManifestError> {
    let mut out = Vec::new();
    for input in inputs {
        if input == "-" {
            let mut text = String::new();
            stdin
                .read_to_string(&mut text)
                .map_err(ManifestError::Stdin)?;
            out.push(("stdin".to_string(), text));
            continue;
        }
        let path = Path::new(input);
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| ManifestError::Read {
                path: p.into(),
                source,
            })
        };
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|source| ManifestError::Read {
                    path: path.into(),
                    source,
                })?
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| !n.starts_with('.'))
                })
                .collect();
            files.sort();
            for f in files {
                out.push((f.display().to_string(), read(&f)?));
            }
        } else {
            out.push((input.clone(), read(path)?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // `{{ key }}` and `{{key}}` are replaced; a missing key is named; text that is
    // not a placeholder is left alone.
    #[test]
    fn variables() {
        let v = vars(&[("mesh", "prod"), ("t", "5s")]);
        assert_eq!(
            substitute("mesh: {{ mesh }}\ntimeout: {{t}}\n", &v, "f").unwrap(),
            "mesh: prod\ntimeout: 5s\n"
        );
        let err = substitute("name: {{ nope }}", &v, "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("nope") && err.contains("f.yaml") && err.contains("-v nope="),
            "{err}"
        );
        assert_eq!(
            substitute("a: '{{ not a key }}'", &v, "f").unwrap(),
            "a: '{{ not a key }}'"
        );
        assert_eq!(
            substitute("a: {{ unclosed", &v, "f").unwrap(),
            "a: {{ unclosed"
        );
        assert_eq!(
            substitute("no vars", &BTreeMap::new(), "f").unwrap(),
            "no vars"
        );
    }

    // Documents split at `---` lines only (not inside a value), empty ones dropped.
    #[test]
    fn multi_document_split() {
        let text = "# leading comment\n---\ntype: Mesh\nname: a\n---\n\n---   # c\ntype: Mesh\nname: b\ndesc: 'x---y'\n---\n# only a comment\n";
        let docs = split_yaml(text);
        assert_eq!(docs.len(), 2, "{docs:?}");
        assert_eq!(docs[0], "type: Mesh\nname: a\n");
        assert!(docs[1].contains("x---y"));
        let parsed = documents(text, "f.yaml").unwrap();
        assert_eq!(parsed[1].field("name"), Some("b"));
        assert!(!parsed[0].json);
        assert_eq!(parsed[1].source, "f.yaml#2");
    }

    // JSON: one resource, an array, or a list's items; each sent as JSON.
    #[test]
    fn json_inputs() {
        let one = documents(r#"{"type":"Mesh","name":"a"}"#, "a.json").unwrap();
        assert_eq!(one.len(), 1);
        assert!(one[0].json && one[0].content_type().contains("json"));
        let list = documents(
            r#"{"total":2,"items":[{"type":"Mesh","name":"a"},{"type":"Mesh","name":"b"}],"next":null}"#,
            "l.json",
        )
        .unwrap();
        assert_eq!(
            list.iter()
                .map(|d| d.field("name").unwrap())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        let arr = documents(r#"[{"type":"Mesh","name":"a"}]"#, "arr.json").unwrap();
        assert_eq!(arr.len(), 1);
        assert!(
            documents("{broken", "b.json")
                .unwrap_err()
                .to_string()
                .contains("b.json")
        );
        assert!(documents("[1]", "n.json").is_err());
    }

    // A YAML list (get -o yaml of a plural) applies item by item; bad YAML and
    // non-mappings are named; an empty input is an error.
    #[test]
    fn yaml_lists_and_errors() {
        let docs = documents(
            "items:\n- type: Mesh\n  name: a\n- type: Mesh\n  name: b\ntotal: 2\n",
            "l.yaml",
        )
        .unwrap();
        assert_eq!(docs.len(), 2);
        assert!(docs[1].body.contains("name: b"));
        let err = documents("a: [unclosed\n", "bad.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bad.yaml#1"), "{err}");
        assert!(documents("- 1\n- 2\n", "s.yaml").is_err());
        assert!(matches!(
            documents("# nothing\n", "e.yaml"),
            Err(ManifestError::Empty(_))
        ));
    }

    // A directory is each of its files in name order; `-` reads stdin.
    #[test]
    fn inputs() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("b.yaml"), "B").unwrap();
        std::fs::write(tmp.path().join("a.yaml"), "A").unwrap();
        std::fs::write(tmp.path().join(".hidden"), "H").unwrap();
        let dir = tmp.path().display().to_string();
        let mut stdin: &[u8] = b"S";
        let got = read_inputs(&[dir, "-".into()], &mut stdin).unwrap();
        let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, ["A", "B", "S"]);
        let err = read_inputs(&["/nonexistent/x.yaml".into()], &mut stdin)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/x.yaml"), "{err}");
    }
}
