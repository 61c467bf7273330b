//! `get`, `apply` and `delete`.

use crate::cli::{ApplyArgs, DeleteArgs, GetArgs, key_value};
use crate::client::{Body, encode_query};
use crate::manifest::{self, Document};
use crate::session::{Error, Session};
use crate::table;
use crate::types::{TypeDesc, Types};
use hyper::{Method, StatusCode};
use serde_json::Value;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The query of a list: paging and Kuma's filters.
pub fn list_query(args: &GetArgs) -> Result<String, Error> {
    let mut q: Vec<String> = Vec::new();
    if let Some(size) = args.size {
        q.push(format!("size={size}"));
    }
    if let Some(offset) = args.offset {
        q.push(format!("offset={offset}"));
    }
    if let Some(name) = &args.name_contains {
        q.push(format!("name={}", encode_query(name)));
    }
    for label in &args.labels {
        let (k, v) = key_value(label, "--label").map_err(Error::Usage)?;
        q.push(format!(
            "{}={}",
            encode_query(&format!("filter[labels.{k}]")),
            encode_query(&v)
        ));
    }
    Ok(if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    })
}

pub async fn get(s: &mut Session<'_>, args: GetArgs) -> Result<(), Error> {
    let client = s.client()?;
    let types = s.types(&client).await?;
    let (t, _) = types.find(&args.kind)?;
    let now = OffsetDateTime::now_utc();
    let mesh = s.global.mesh.clone();
    if let Some(name) = &args.name {
        let v = client.get_json(&t.item_path(&mesh, name)).await?;
        let items = [v.clone()];
        return s.print(&v, || {
            table::resources(&t.name, t.mesh_scoped(), t.is_policy(), &items, now)
        });
    }
    let path = format!("{}{}", t.list_path(&mesh), list_query(&args)?);
    let v = client.get_json(&path).await?;
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    s.print(&v, || {
        table::resources(&t.name, t.mesh_scoped(), t.is_policy(), &items, now)
    })?;
    if v.get("next").is_some_and(|n| !n.is_null()) {
        let total = v.get("total").and_then(Value::as_u64).unwrap_or_default();
        let shown = args.offset.unwrap_or(0) as usize + items.len();
        s.warn(&format!(
            "{shown} of {total} shown: --offset {shown} for the next page"
        ))?;
    }
    Ok(())
}

pub async fn delete(s: &mut Session<'_>, args: DeleteArgs) -> Result<(), Error> {
    let client = s.client()?;
    let types = s.types(&client).await?;
    let (t, _) = types.find(&args.kind)?;
    let path = t.item_path(&s.global.mesh, &args.name);
    client.send_ok(Method::DELETE, &path, None).await?;
    let where_ = if t.mesh_scoped() && t.name != "Mesh" {
        format!(" from mesh {:?}", s.global.mesh)
    } else {
        String::new()
    };
    s.say(&format!("deleted {} {:?}{where_}", t.name, args.name))
}

/// A document ready to send: its type and the path to PUT.
struct Planned<'a> {
    doc: &'a Document,
    kind: String,
    name: String,
    path: String,
}

/// Checks each document against the server's types: a known `type`, a `name`,
/// a `mesh` where the type lives in one. Every problem is reported at once.
fn plan<'a>(docs: &'a [Document], types: &Types) -> Result<Vec<Planned<'a>>, Error> {
    let mut planned = Vec::new();
    let mut problems = Vec::new();
    for doc in docs {
        let Some(kind) = doc.field("type") else {
            problems.push(format!(
                "{}: no `type` (e.g. type: MeshTimeout)",
                doc.source
            ));
            continue;
        };
        let t: &TypeDesc = match types
            .by_name(kind)
            .or_else(|| types.find(kind).ok().map(|(t, _)| t))
        {
            Some(t) => t,
            None => {
                problems.push(format!(
                    "{}: type {kind:?} is not one this control plane serves",
                    doc.source
                ));
                continue;
            }
        };
        let Some(name) = doc.field("name").filter(|n| !n.is_empty()) else {
            problems.push(format!("{}: {kind} has no `name`", doc.source));
            continue;
        };
        let mesh = if t.mesh_scoped() && t.name != "Mesh" {
            match doc.field("mesh").filter(|m| !m.is_empty()) {
                Some(m) => m,
                None => {
                    problems.push(format!(
                        "{}: {kind} {name:?} has no `mesh` (add e.g. mesh: default)",
                        doc.source
                    ));
                    continue;
                }
            }
        } else {
            ""
        };
        planned.push(Planned {
            doc,
            kind: t.name.clone(),
            name: name.to_string(),
            path: t.item_path(mesh, name),
        });
    }
    if problems.is_empty() {
        Ok(planned)
    } else {
        Err(Error::Usage(format!(
            "nothing was applied:\n  {}",
            problems.join("\n  ")
        )))
    }
}

pub async fn apply(s: &mut Session<'_>, args: ApplyArgs) -> Result<(), Error> {
    let mut vars = BTreeMap::new();
    for kv in &args.vars {
        let (k, v) = key_value(kv, "--var").map_err(Error::Usage)?;
        vars.insert(k, v);
    }
    let inputs = manifest::read_inputs(&args.files, s.io.stdin)?;
    let mut docs = Vec::new();
    for (source, text) in &inputs {
        let text = manifest::substitute(text, &vars, source)?;
        docs.extend(manifest::documents(&text, source)?);
    }
    let client = s.client()?;
    let types = s.types(&client).await?;
    let planned = plan(&docs, &types)?;
    if args.dry_run {
        for (i, p) in planned.iter().enumerate() {
            if i > 0 {
                s.say("---")?;
            }
            s.say(&format!(
                "# dry run: PUT {} ({} {:?}), not sent",
                p.path, p.kind, p.name
            ))?;
            let body = p.doc.body.trim_end().to_string();
            s.say(&body)?;
        }
        return Ok(());
    }
    for p in &planned {
        let answer = client
            .send(
                Method::PUT,
                &p.path,
                Some(Body {
                    bytes: p.doc.body.clone().into_bytes(),
                    content_type: p.doc.content_type(),
                }),
            )
            .await?;
        let status = answer.status;
        let answer = crate::client::ensure_ok(Method::PUT, &p.path, answer).map_err(|source| {
            Error::Apply {
                source_name: p.doc.source.clone(),
                kind: p.kind.clone(),
                name: p.name.clone(),
                source: Box::new(source),
            }
        })?;
        let warnings: Vec<String> = serde_json::from_slice::<Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("warnings").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|w| w.as_str().map(str::to_string))
            .collect();
        for w in warnings {
            s.warn(&format!("warning: {} {:?}: {w}", p.kind, p.name))?;
        }
        let verb = if status == StatusCode::CREATED {
            "created"
        } else {
            "configured"
        };
        s.say(&format!("{} {:?} {verb}", p.kind, p.name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get_args(f: impl FnOnce(&mut GetArgs)) -> GetArgs {
        let mut a = GetArgs {
            kind: "meshtimeouts".into(),
            name: None,
            size: None,
            offset: None,
            name_contains: None,
            labels: vec![],
        };
        f(&mut a);
        a
    }

    // Paging and Kuma's filters become the server's query parameters, encoded.
    #[test]
    fn query_parameters() {
        assert_eq!(list_query(&get_args(|_| {})).unwrap(), "");
        let q = list_query(&get_args(|a| {
            a.size = Some(10);
            a.offset = Some(20);
            a.name_contains = Some("back end".into());
            a.labels = vec!["kuma.io/zone=east".into(), "team=a".into()];
        }))
        .unwrap();
        assert_eq!(
            q,
            "?size=10&offset=20&name=back%20end&filter%5Blabels.kuma.io%2Fzone%5D=east&filter%5Blabels.team%5D=a"
        );
        assert!(list_query(&get_args(|a| a.labels = vec!["nolabel".into()])).is_err());
    }

    // Every document is checked before anything is sent, and every problem named.
    #[test]
    fn plan_checks_documents() {
        let types = crate::types::sample();
        let docs = manifest::documents(
            "type: MeshTimeout\nname: a\nmesh: m1\n---\ntype: Mesh\nname: default\n---\ntype: Bogus\nname: x\n---\ntype: MeshRetry\nname: r\n---\nname: untyped\n",
            "f.yaml",
        )
        .unwrap();
        let err = plan(&docs, &types).err().unwrap().to_string();
        assert!(err.contains("f.yaml#3: type \"Bogus\""), "{err}");
        assert!(
            err.contains("f.yaml#4: MeshRetry \"r\" has no `mesh`"),
            "{err}"
        );
        assert!(err.contains("f.yaml#5: no `type`"), "{err}");
        let planned = plan(&docs[..2], &types).unwrap();
        assert_eq!(planned[0].path, "/meshes/m1/meshtimeouts/a");
        assert_eq!(planned[1].path, "/meshes/default");
    }
}
