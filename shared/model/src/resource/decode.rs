//! Decoding a spec in one pass that names every bad field.
//!
//! serde stops at the first error. To name every bad field, [`decode`] decodes,
//! and on an error it records it, repairs the document at that spot and decodes
//! again, until the document decodes:
//! - a value of the wrong type or an unknown enum value is reported at its own path
//!   and removed (a list element is replaced by a stand-in, so that later indices
//!   keep their meaning);
//! - a missing required field is recorded at its own path (not its parent's) and
//!   filled with a stand-in: `{}` first, so that the semantic rules still run on the
//!   empty object and say what it lacks as Kuma's validators do, else `[]`, `""`,
//!   `0`, `false` or the first value an enum accepts.
//!
//! [`Decoded::finish`] then merges the semantic violations: those inside a removed
//! value or a scalar stand-in are dropped (they speak of a value the user did not
//! write), and a missing field nothing else was reported under gets "must be
//! defined". Unknown fields do not fail: each is returned with its path, and the
//! API answers them as warnings.

use super::{Path, SpecType, ValidationErrors, Violation};
use serde_json::{Map, Value};

/// Enough repairs for any real document; a pathological one stops here with what
/// was found so far.
const MAX_REPAIRS: usize = 256;

/// What decoding found, before the semantic rules run.
pub(super) struct Decoded<T> {
    pub spec: Option<T>,
    /// Type and enum errors, each at the bad value's path.
    errors: ValidationErrors,
    /// Paths whose value was removed or replaced because it was bad.
    bad: Vec<String>,
    /// Missing required fields and whether their stand-in was an object or list
    /// (whose own violations are kept).
    missing: Vec<(String, bool)>,
    /// Unknown fields, ignored.
    pub unknown: Vec<String>,
}

/// The stand-ins tried, in order, for a missing required field.
const STAND_INS: usize = 5;
fn stand_in(i: usize) -> Value {
    match i {
        0 => Value::Object(Map::new()),
        1 => Value::Array(Vec::new()),
        2 => Value::String(String::new()),
        3 => Value::from(0),
        _ => Value::Bool(false),
    }
}

pub(super) fn decode<T: SpecType>(value: Value, at: &Path) -> Decoded<T> {
    let mut last = None;
    let mut out = repair_until_decoded(value, at, &mut last);
    // Giving up (a value no stand-in fits, or too many repairs) must still say why.
    if out.spec.is_none() && out.errors.is_empty() {
        let (path, message) = last.unwrap_or_else(|| (at.clone(), "could not be read".to_string()));
        out.errors.add(&path, message);
    }
    out
}

fn repair_until_decoded<T: SpecType>(
    value: Value,
    at: &Path,
    last: &mut Option<(Path, String)>,
) -> Decoded<T> {
    let mut doc = if value.is_null() {
        Value::Object(Map::new())
    } else {
        value
    };
    let mut out = Decoded {
        spec: None,
        errors: ValidationErrors::new(),
        bad: Vec::new(),
        missing: Vec::new(),
        unknown: Vec::new(),
    };
    // The stand-in being tried at a path, and which one.
    let mut probing: Vec<(Vec<Seg>, usize)> = Vec::new();
    for _ in 0..MAX_REPAIRS {
        let mut unknown = Vec::new();
        let mut track = |p: serde_ignored::Path<'_>| unknown.push(ignored_path(&p));
        let de = serde_ignored::Deserializer::new(&doc, &mut track);
        let err = match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(spec) => {
                out.unknown = unknown.into_iter().map(|segs| render(at, &segs)).collect();
                out.spec = Some(spec);
                return out;
            }
            Err(e) => e,
        };
        let segs: Vec<Seg> = err.path().iter().filter_map(Seg::from_serde).collect();
        let message = tidy_serde_message(&err.into_inner().to_string());
        *last = Some((render_path(at, &segs), message.clone()));
        // A YAML scalar where text is expected is that text, as Kuma reads YAML
        // (`retryOn: [500]`, tag values like `port: 6000`).
        if message.starts_with("invalid type")
            && message.contains("expected a string")
            && let Some(slot) = get_mut(&mut doc, &segs)
            && let Some(text) = scalar_text(slot)
        {
            *slot = Value::String(text);
            continue;
        }
        if let Some(field) = missing_field(&message) {
            let mut path = segs.clone();
            path.push(Seg::Key(field.to_string()));
            let Some(Value::Object(parent)) = get_mut(&mut doc, &segs) else {
                out.errors.add(&render_path(at, &path), "must be defined");
                return out;
            };
            parent.insert(field.to_string(), stand_in(0));
            probing.push((path.clone(), 0));
            let rendered = render(at, &path);
            if !out.bad.iter().any(|b| is_within(&rendered, b)) {
                out.missing.push((rendered, true));
            }
            continue;
        }
        // A stand-in of the wrong kind: an enum takes its first value, anything
        // else the next stand-in.
        if let Some(i) = probing.iter().position(|(p, _)| *p == segs) {
            let next = probing[i].1 + 1;
            let replacement = match first_variant(&message) {
                Some(v) if message.starts_with("unknown variant") => Value::String(v),
                _ if next < STAND_INS => stand_in(next),
                _ => {
                    let rendered = render(at, &segs);
                    if !out.bad.iter().any(|b| is_within(&rendered, b)) {
                        out.errors.add(&render_path(at, &segs), message);
                    }
                    return out;
                }
            };
            let rendered = render(at, &segs);
            let container = replacement.is_object() || replacement.is_array();
            if let Some(m) = out.missing.iter_mut().find(|(p, _)| *p == rendered) {
                m.1 = container;
            }
            probing[i].1 = next;
            if let Some(slot) = get_mut(&mut doc, &segs) {
                *slot = replacement;
            }
            continue;
        }
        let Some((last, parent)) = segs.split_last() else {
            // The spec itself has the wrong shape: nothing to repair.
            out.errors.add(at, message);
            return out;
        };
        let rendered = render(at, &segs);
        if !out.bad.iter().any(|b| is_within(&rendered, b)) {
            out.errors.add(&render_path(at, &segs), message);
            out.bad.push(rendered);
        }
        match (get_mut(&mut doc, parent), last) {
            (Some(Value::Object(m)), Seg::Key(k)) => {
                m.remove(k);
            }
            (Some(Value::Array(list)), Seg::Index(i)) if *i < list.len() => {
                list[*i] = stand_in(0);
                probing.push((segs.clone(), 0));
            }
            _ => return out,
        }
    }
    out
}

impl<T> Decoded<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Decoded<U> {
        Decoded {
            spec: self.spec.map(f),
            errors: self.errors,
            bad: self.bad,
            missing: self.missing,
            unknown: self.unknown,
        }
    }

    /// Decode errors only (for callers that validate separately).
    pub fn decode_errors(&self) -> ValidationErrors {
        let mut e = self.errors.clone();
        for (m, _) in &self.missing {
            e.add_raw(m, "must be defined");
        }
        e
    }

    /// Merges the semantic violations found on the decoded spec with what
    /// decoding found, as the module documentation says.
    pub fn finish(&self, semantic: &ValidationErrors) -> ValidationErrors {
        let mut out = self.errors.clone();
        let scalar_stand_ins: Vec<&str> = self
            .missing
            .iter()
            .filter(|(_, container)| !container)
            .map(|(p, _)| p.as_str())
            .collect();
        let mut kept: Vec<&Violation> = Vec::new();
        for v in semantic.violations() {
            let inside_bad = self.bad.iter().any(|b| is_within(&v.field, b));
            let inside_scalar = scalar_stand_ins.iter().any(|s| is_within(&v.field, s));
            if !inside_bad && !inside_scalar {
                kept.push(v);
            }
        }
        for (m, _) in &self.missing {
            if !kept.iter().any(|v| is_within(&v.field, m)) {
                out.add_raw(m, "must be defined");
            }
        }
        for v in kept {
            out.add_raw(&v.field, v.reason.clone());
        }
        out
    }
}

/// Whether `path` is `base` or a field or element inside it.
pub(super) fn is_within(path: &str, base: &str) -> bool {
    path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

impl Seg {
    fn from_serde(s: &serde_path_to_error::Segment) -> Option<Seg> {
        match s {
            serde_path_to_error::Segment::Seq { index } => Some(Seg::Index(*index)),
            serde_path_to_error::Segment::Map { key } => Some(Seg::Key(key.clone())),
            _ => None,
        }
    }
}

fn ignored_path(p: &serde_ignored::Path<'_>) -> Vec<Seg> {
    let mut out = match p {
        serde_ignored::Path::Root => return Vec::new(),
        serde_ignored::Path::Seq { parent, .. }
        | serde_ignored::Path::Map { parent, .. }
        | serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => ignored_path(parent),
    };
    match p {
        serde_ignored::Path::Seq { index, .. } => out.push(Seg::Index(*index)),
        serde_ignored::Path::Map { key, .. } => out.push(Seg::Key(key.clone())),
        _ => {}
    }
    out
}

fn render_path(at: &Path, segs: &[Seg]) -> Path {
    let mut p = at.clone();
    for s in segs {
        p = match s {
            Seg::Key(k) if is_plain_field(k) => p.field(k),
            Seg::Key(k) => p.key(k),
            Seg::Index(i) => p.index(*i),
        };
    }
    p
}

fn render(at: &Path, segs: &[Seg]) -> String {
    render_path(at, segs).to_string()
}

/// Field names render as `.name`; other map keys (tags like `kuma.io/service`)
/// as `["key"]`.
fn is_plain_field(k: &str) -> bool {
    !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

fn get_mut<'a>(doc: &'a mut Value, segs: &[Seg]) -> Option<&'a mut Value> {
    segs.iter().try_fold(doc, |v, s| match (v, s) {
        (Value::Object(m), Seg::Key(k)) => m.get_mut(k),
        (Value::Array(l), Seg::Index(i)) => l.get_mut(*i),
        _ => None,
    })
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `missing field `x``.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.split('`').next()
}

/// The first value listed in `unknown variant `x`, expected one of `A`, `B``.
fn first_variant(message: &str) -> Option<String> {
    let (_, expected) = message.split_once("expected")?;
    let start = expected.find('`')? + 1;
    let len = expected[start..].find('`')?;
    Some(expected[start..start + len].to_string())
}

/// serde's messages name Rust types (`u32`, `struct MeshSpec`); say what the user wrote.
pub(super) fn tidy_serde_message(msg: &str) -> String {
    msg.replace("u32", "a non-negative integer")
        .replace("u64", "a non-negative integer")
        .replace("i64", "an integer")
        .replace("i32", "an integer")
        .replace("f64", "a number")
}
