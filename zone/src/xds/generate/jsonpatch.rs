//! RFC 6902 JSON Patch with the options Kuma applies MeshProxyPatch's
//! `jsonPatches` with (evanphx/json-patch: negative array indices, `remove` of a
//! missing path succeeds, `add` creates missing parent objects).

use serde_json::Value;
use weft_model::resource::policy::meshproxypatch::{JsonPatchBlock, JsonPatchOp};

/// Applies `ops` in order to `doc`; on error `doc` may be partly patched.
pub fn apply(doc: &mut Value, ops: &[JsonPatchBlock]) -> Result<(), String> {
    for (i, op) in ops.iter().enumerate() {
        apply_one(doc, op).map_err(|e| format!("jsonPatches[{i}]: {e}"))?;
    }
    Ok(())
}

fn apply_one(doc: &mut Value, op: &JsonPatchBlock) -> Result<(), String> {
    let path = tokens(op.path.as_deref().unwrap_or_default())?;
    let value = || op.value.clone().ok_or("`value` is required".to_string());
    match op.op {
        JsonPatchOp::Add => add(doc, &path, value()?),
        JsonPatchOp::Remove => {
            remove(doc, &path)?;
            Ok(())
        }
        JsonPatchOp::Replace => {
            let v = value()?;
            let target = get_mut(doc, &path).ok_or("path does not exist")?;
            *target = v;
            Ok(())
        }
        JsonPatchOp::Move | JsonPatchOp::Copy => {
            let from = tokens(op.from.as_deref().ok_or("`from` is required")?)?;
            let v = if op.op == JsonPatchOp::Move {
                if path.len() > from.len() && path[..from.len()] == from[..] {
                    return Err("cannot move a value into itself".into());
                }
                remove(doc, &from)?.ok_or("`from` does not exist")?
            } else {
                get_mut(doc, &from).ok_or("`from` does not exist")?.clone()
            };
            add(doc, &path, v)
        }
    }
}

/// A JSON Pointer (RFC 6901) as its unescaped reference tokens.
fn tokens(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("invalid JSON pointer {pointer:?}"));
    };
    Ok(rest
        .split('/')
        .map(|t| t.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// An array index; negative counts from the end.
fn index(token: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    let i: i64 = token
        .parse()
        .map_err(|_| format!("invalid array index {token:?}"))?;
    let i = if i < 0 { i + len as i64 } else { i };
    let max = if allow_end {
        len as i64
    } else {
        len as i64 - 1
    };
    if i < 0 || i > max {
        return Err(format!("array index {token} out of bounds"));
    }
    Ok(i as usize)
}

fn get_mut<'a>(doc: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    let mut cur = doc;
    for t in path {
        cur = match cur {
            Value::Object(o) => o.get_mut(t)?,
            Value::Array(a) => {
                let i = index(t, a.len(), false).ok()?;
                a.get_mut(i)?
            }
            _ => return None,
        };
    }
    Some(cur)
}

fn add(doc: &mut Value, path: &[String], v: Value) -> Result<(), String> {
    let Some((last, parent)) = path.split_last() else {
        *doc = v;
        return Ok(());
    };
    let mut cur = doc;
    for t in parent {
        cur = match cur {
            Value::Object(o) => o
                .entry(t.clone())
                .or_insert_with(|| Value::Object(Default::default())),
            Value::Array(a) => {
                let i = index(t, a.len(), false)?;
                &mut a[i]
            }
            _ => return Err(format!("{t:?}: not an object or array")),
        };
        if cur.is_null() {
            *cur = Value::Object(Default::default());
        }
    }
    match cur {
        Value::Object(o) => {
            o.insert(last.clone(), v);
        }
        Value::Array(a) if last == "-" => a.push(v),
        Value::Array(a) => {
            let i = index(last, a.len(), true)?;
            a.insert(i, v);
        }
        _ => return Err(format!("{last:?}: parent is not an object or array")),
    }
    Ok(())
}

/// Removes the value at `path`; a missing one is no error (`None`).
fn remove(doc: &mut Value, path: &[String]) -> Result<Option<Value>, String> {
    let Some((last, parent)) = path.split_last() else {
        return Err("cannot remove the whole document".into());
    };
    let Some(p) = get_mut(doc, parent) else {
        return Ok(None);
    };
    Ok(match p {
        Value::Object(o) => o.remove(last),
        Value::Array(a) => match index(last, a.len(), false) {
            Ok(i) => Some(a.remove(i)),
            Err(_) => None,
        },
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ops(v: Value) -> Vec<JsonPatchBlock> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn rfc6902_operations_with_kumas_options() {
        let mut d = json!({"a": {"b": [1, 2, 3]}, "c": "x"});
        apply(
            &mut d,
            &ops(json!([
                {"op": "add", "path": "/a/b/-", "value": 4},
                {"op": "add", "path": "/a/b/0", "value": 0},
                {"op": "remove", "path": "/a/b/-1"},
                {"op": "replace", "path": "/c", "value": "y"},
                {"op": "add", "path": "/new/deep/key", "value": true},
                {"op": "remove", "path": "/missing/key"},
                {"op": "copy", "from": "/c", "path": "/d"},
                {"op": "move", "from": "/a/b", "path": "/e~1f"}
            ])),
        )
        .unwrap();
        assert_eq!(
            d,
            json!({"a": {}, "c": "y", "d": "y", "e/f": [0, 1, 2, 3], "new": {"deep": {"key": true}}})
        );
        assert!(
            apply(
                &mut d,
                &ops(json!([{"op": "replace", "path": "/zz", "value": 1}]))
            )
            .is_err()
        );
        assert!(
            apply(
                &mut d,
                &ops(json!([{"op": "add", "path": "/e~1f/9", "value": 1}]))
            )
            .is_err()
        );
    }
}
