//! `inspect dataplanes|zones|meshes|services|<policy type>` and `inspect
//! dataplane NAME --type ...`. The overviews are parsed tolerantly: Kuma's shape
//! (`{mesh, name, dataplane, dataplaneInsight: {subscriptions}}`) and Weft's
//! (`dataplaneInsight.connected`) both read.

use super::resources::is_not_found;
use crate::cli::{InspectArgs, InspectType, Output};
use crate::client::Client;
use crate::session::{Error, Session, to_json, to_yaml};
use crate::table::{self, age, text_at};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use time::OffsetDateTime;

pub async fn run(s: &mut Session<'_>, args: InspectArgs) -> Result<(), Error> {
    let client = s.client()?;
    let what = args.what.to_ascii_lowercase();
    match (what.as_str(), args.name.as_deref()) {
        ("dataplanes" | "dataplane" | "dp", None) => dataplanes(s, &client).await,
        ("dataplanes" | "dataplane" | "dp", Some(name)) => {
            dataplane(s, &client, name, args.inspect_type).await
        }
        ("zones" | "zone", None) => zones(s, &client).await,
        ("zones" | "zone", Some(name)) => {
            let v = client
                .get_json(&format!(
                    "/zones/{}/_overview",
                    crate::client::encode_segment(name)
                ))
                .await?;
            raw_json(s, &v)
        }
        ("meshes" | "mesh", _) => meshes(s, &client).await,
        ("services" | "service", _) => services(s, &client).await,
        (other, name) => {
            let types = s.types(&client).await?;
            let (t, _) = types.find(other)?;
            if !t.is_policy() {
                return Err(Error::Usage(format!(
                    "inspect shows dataplanes, zones, meshes, services or a policy type; {} is \
                     none of them (`weftctl get {}` lists them)",
                    t.name, t.path
                )));
            }
            let mesh = s.global.mesh.clone();
            match name {
                None => {
                    let v = client.get_json(&t.list_path(&mesh)).await?;
                    let items = v
                        .get("items")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let now = OffsetDateTime::now_utc();
                    s.print(&v, || table::resources(&t.name, true, true, &items, now))
                }
                Some(name) => {
                    let path = format!("{}/_resources/dataplanes", t.item_path(&mesh, name));
                    match client.get_json(&path).await {
                        Ok(v) => {
                            let items = v
                                .get("items")
                                .and_then(Value::as_array)
                                .cloned()
                                .unwrap_or_default();
                            let rows = items
                                .iter()
                                .map(|d| vec![text_at(d, "mesh", &mesh), text_at(d, "name", "")])
                                .collect::<Vec<_>>();
                            s.print(&v, || table::render(&["MESH", "DATAPLANE"], &rows))
                        }
                        Err(e) if is_not_found(&e) => {
                            // Is it the policy that is missing, or the endpoint?
                            client.get_json(&t.item_path(&mesh, name)).await?;
                            Err(Error::Usage(format!(
                                "this control plane does not list the dataplanes a policy selects \
                                 (Kuma's GET {path}); `weftctl inspect dataplane NAME --type rules` \
                                 shows what applies to one dataplane"
                            )))
                        }
                        Err(e) => Err(e.into()),
                    }
                }
            }
        }
    }
}

/// Prints a JSON answer as is (pretty), or as YAML with `-o yaml`.
fn raw_json(s: &mut Session<'_>, v: &Value) -> Result<(), Error> {
    let text = match s.global.output {
        Output::Yaml => to_yaml(v)?,
        _ => to_json(v)?,
    };
    s.io.out.write_all(text.as_bytes())?;
    Ok(())
}

/// One dataplane's overview in Kuma's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    pub mesh: String,
    pub name: String,
    pub dataplane: Value,
    pub insight: Value,
}

impl Overview {
    /// From Kuma's or Weft's `_overview` item.
    pub fn from_item(item: &Value, mesh: &str) -> Self {
        let dataplane = item.get("dataplane").cloned().unwrap_or(Value::Null);
        let pick = |k: &str| {
            item.get(k)
                .or_else(|| dataplane.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        };
        Overview {
            mesh: pick("mesh").unwrap_or_else(|| mesh.to_string()),
            name: pick("name").unwrap_or_default(),
            insight: item.get("dataplaneInsight").cloned().unwrap_or(Value::Null),
            dataplane,
        }
    }

    /// The newest subscription of Kuma's insight, or Weft's insight itself.
    fn latest(&self) -> Option<&Value> {
        let subs = self
            .insight
            .get("subscriptions")
            .or_else(|| self.insight.pointer("/spec/subscriptions"))
            .and_then(Value::as_array);
        match subs {
            Some(s) => s.last(),
            None if self.insight.is_object() => Some(&self.insight),
            None => None,
        }
    }

    pub fn online(&self) -> bool {
        if let Some(c) = self.insight.get("connected").and_then(Value::as_bool) {
            return c;
        }
        self.latest().is_some_and(|s| {
            s.get("connectTime").is_some_and(|t| !t.is_null())
                && s.get("disconnectTime").is_none_or(Value::is_null)
        })
    }

    pub fn connect_time(&self) -> Option<&str> {
        self.latest()
            .and_then(|s| s.get("connectTime"))
            .and_then(Value::as_str)
    }

    fn cert_expiration(&self) -> String {
        let m = self.insight.get("mTLS");
        m.and_then(|m| {
            m.get("certificateExpirationTime")
                .or_else(|| m.get("notAfter"))
        })
        .and_then(Value::as_str)
        .unwrap_or("-")
        .to_string()
    }

    fn to_value(&self) -> Value {
        json!({
            "type": "DataplaneOverview",
            "mesh": self.mesh,
            "name": self.name,
            "dataplane": self.dataplane,
            "dataplaneInsight": self.insight,
        })
    }
}

/// The mesh's dataplane overviews: `GET /meshes/{m}/dataplanes/_overview`, or,
/// where the server has no list overview, its Dataplanes joined with their
/// DataplaneInsights.
async fn overviews(client: &Client, mesh: &str) -> Result<Vec<Overview>, Error> {
    let m = crate::client::encode_segment(mesh);
    match client
        .get_json(&format!("/meshes/{m}/dataplanes/_overview?size=1000"))
        .await
    {
        Ok(v) => {
            let items = v
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            return Ok(items.iter().map(|i| Overview::from_item(i, mesh)).collect());
        }
        Err(e) if is_not_found(&e) || e.status() == Some(hyper::StatusCode::BAD_REQUEST) => {}
        Err(e) => return Err(e.into()),
    }
    let dps = client
        .get_json(&format!("/meshes/{m}/dataplanes?size=1000"))
        .await?;
    let insights: BTreeMap<String, Value> = match client
        .get_json(&format!("/meshes/{m}/dataplane-insights?size=1000"))
        .await
    {
        Ok(v) => v
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|i| Some((i.get("name")?.as_str()?.to_string(), i)))
            .collect(),
        Err(e) if is_not_found(&e) => BTreeMap::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(dps
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|dp| {
            let name = text_at(&dp, "name", "");
            let insight = insights.get(&name).cloned().unwrap_or(Value::Null);
            Overview::from_item(&json!({"dataplane": dp, "dataplaneInsight": insight}), mesh)
        })
        .collect())
}

async fn dataplanes(s: &mut Session<'_>, client: &Client) -> Result<(), Error> {
    let mesh = s.global.mesh.clone();
    let all = overviews(client, &mesh).await?;
    let now = OffsetDateTime::now_utc();
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|o| {
            vec![
                o.mesh.clone(),
                o.name.clone(),
                table::dataplane_tags(&o.dataplane),
                if o.online() { "Online" } else { "Offline" }.to_string(),
                age(o.connect_time(), now),
                o.cert_expiration(),
            ]
        })
        .collect();
    let v = json!({
        "total": all.len(),
        "items": all.iter().map(Overview::to_value).collect::<Vec<_>>(),
    });
    s.print(&v, || {
        table::render(
            &[
                "MESH",
                "NAME",
                "TAGS",
                "STATUS",
                "LAST CONNECTED AGO",
                "CERT EXPIRATION",
            ],
            &rows,
        )
    })
}

async fn dataplane(
    s: &mut Session<'_>,
    client: &Client,
    name: &str,
    ty: InspectType,
) -> Result<(), Error> {
    let base = format!(
        "/meshes/{}/dataplanes/{}",
        crate::client::encode_segment(&s.global.mesh),
        crate::client::encode_segment(name)
    );
    let suffix = match ty {
        InspectType::Policies => "/_policies",
        InspectType::Rules => "/_rules",
        InspectType::Config => "/_config",
        InspectType::ConfigDump => "/xds",
        InspectType::Stats => "/stats",
        InspectType::Clusters => "/clusters",
    };
    let path = format!("{base}{suffix}");
    let answer = client.send(hyper::Method::GET, &path, None).await?;
    let answer = match crate::client::ensure_ok(hyper::Method::GET, &path, answer) {
        Ok(a) => a,
        Err(e) if ty == InspectType::Policies && is_not_found(&e) => {
            // Weft serves the matched rules where Kuma 2.x has `_policies`.
            let rules = format!("{base}/_rules");
            let a = client.send_ok(hyper::Method::GET, &rules, None).await?;
            s.warn(&format!(
                "note: GET {path} is not served here; showing {rules} (the policies' merged rules)"
            ))?;
            a
        }
        Err(e) => return Err(e.into()),
    };
    let json = answer.is_json() || answer.body.first() == Some(&b'{');
    if let Some(v) = json
        .then(|| serde_json::from_slice::<Value>(&answer.body).ok())
        .flatten()
    {
        return raw_json(s, &v);
    }
    let text = answer.text();
    s.io.out.write_all(text.as_bytes())?;
    if !text.ends_with('\n') {
        s.io.out.write_all(b"\n")?;
    }
    Ok(())
}

/// A zone's overview, from Weft's (`zoneInsight.online`) or Kuma's
/// (`zoneInsight.subscriptions`) shape.
fn zone_row(z: &Value, now: OffsetDateTime) -> Vec<String> {
    let name = z
        .pointer("/zone/name")
        .or_else(|| z.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let insight = z.get("zoneInsight").cloned().unwrap_or(Value::Null);
    let last = insight
        .get("subscriptions")
        .and_then(Value::as_array)
        .and_then(|s| s.last().cloned());
    let online = insight
        .get("online")
        .and_then(Value::as_bool)
        .unwrap_or_else(|| {
            last.as_ref()
                .is_some_and(|s| s.get("disconnectTime").is_none_or(Value::is_null))
        });
    let connect = insight
        .get("connectTime")
        .or_else(|| last.as_ref().and_then(|s| s.get("connectTime")))
        .and_then(Value::as_str)
        .map(str::to_string);
    let version = insight
        .get("version")
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            last.as_ref()
                .and_then(|s| s.pointer("/version/kumaCp/version"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| "-".into());
    let count = |p: &str| match z.pointer(p) {
        Some(Value::Array(a)) => a.len().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "-".into(),
    };
    let dataplanes = match (
        z.pointer("/proxies/dataplanes/online"),
        z.pointer("/proxies/dataplanes/total"),
    ) {
        (Some(on), Some(total)) => format!("{on}/{total}"),
        _ => "-".into(),
    };
    vec![
        name,
        if online { "Online" } else { "Offline" }.into(),
        age(connect.as_deref(), now),
        version,
        count("/proxies/ingresses"),
        count("/proxies/egresses"),
        dataplanes,
    ]
}

async fn zones(s: &mut Session<'_>, client: &Client) -> Result<(), Error> {
    let v = client.get_json("/zones/_overview").await.map_err(|e| {
        if is_not_found(&e) {
            Error::Usage(
                "this control plane has no zones overview: `inspect zones` asks a global (a zone \
                 control plane does not know the others)"
                    .into(),
            )
        } else {
            e.into()
        }
    })?;
    let now = OffsetDateTime::now_utc();
    let items = v
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = items.iter().map(|z| zone_row(z, now)).collect();
    s.print(&v, || {
        table::render(
            &[
                "NAME",
                "STATUS",
                "LAST CONNECTED AGO",
                "VERSION",
                "INGRESSES",
                "EGRESSES",
                "DATAPLANES ONLINE",
            ],
            &rows,
        )
    })
}

/// The `total` of a list, asking for one item.
async fn count(client: &Client, path: &str) -> Result<u64, Error> {
    let v = client.get_json(&format!("{path}?size=1")).await?;
    Ok(v.get("total").and_then(Value::as_u64).unwrap_or_default())
}

async fn meshes(s: &mut Session<'_>, client: &Client) -> Result<(), Error> {
    let types = s.types(client).await?;
    let list = client.get_json("/meshes?size=1000").await?;
    let meshes = list
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let now = OffsetDateTime::now_utc();
    let mut items = Vec::new();
    let mut rows = Vec::new();
    for m in &meshes {
        let name = text_at(m, "name", "");
        let enc = crate::client::encode_segment(&name);
        let dataplanes = count(client, &format!("/meshes/{enc}/dataplanes")).await?;
        let mut policies = BTreeMap::new();
        for t in types.resources.iter().filter(|t| t.is_policy()) {
            let n = count(client, &t.list_path(&name)).await?;
            if n > 0 {
                policies.insert(t.name.clone(), n);
            }
        }
        let total_policies: u64 = policies.values().sum();
        rows.push(vec![
            name.clone(),
            text_at(m, "mtls.enabledBackend", "off"),
            dataplanes.to_string(),
            total_policies.to_string(),
            age(m.get("creationTime").and_then(Value::as_str), now),
        ]);
        items.push(json!({
            "name": name,
            "mtls": m.pointer("/mtls/enabledBackend"),
            "dataplanes": {"total": dataplanes},
            "policies": policies,
        }));
    }
    let v = json!({"total": items.len(), "items": items});
    s.print(&v, || {
        table::render(&["NAME", "mTLS", "DATAPLANES", "POLICIES", "AGE"], &rows)
    })
}

/// Dataplanes grouped by their inbounds' `kuma.io/service`.
pub fn group_services(all: &[Overview]) -> BTreeMap<String, (u64, u64)> {
    let mut services: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for o in all {
        let inbounds = o
            .dataplane
            .pointer("/networking/inbound")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let names: std::collections::BTreeSet<String> = inbounds
            .iter()
            .filter_map(|i| {
                i.pointer("/tags/kuma.io~1service")?
                    .as_str()
                    .map(str::to_string)
            })
            .collect();
        for svc in names {
            let e = services.entry(svc).or_default();
            e.1 += 1;
            if o.online() {
                e.0 += 1;
            }
        }
    }
    services
}

async fn services(s: &mut Session<'_>, client: &Client) -> Result<(), Error> {
    let mesh = s.global.mesh.clone();
    let all = overviews(client, &mesh).await?;
    let services = group_services(&all);
    let rows: Vec<Vec<String>> = services
        .iter()
        .map(|(name, (online, total))| {
            let status = match (online, total) {
                (0, _) => "Offline",
                (o, t) if o == t => "Online",
                _ => "Partially degraded",
            };
            vec![
                mesh.clone(),
                name.clone(),
                status.into(),
                format!("{online}/{total}"),
            ]
        })
        .collect();
    let items: Vec<Value> = services
        .iter()
        .map(|(name, (online, total))| {
            json!({"mesh": mesh, "name": name, "dataplanes": {"online": online, "total": total}})
        })
        .collect();
    let v = json!({"total": items.len(), "items": items});
    s.print(&v, || {
        table::render(&["MESH", "SERVICE", "STATUS", "DATAPLANES"], &rows)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Kuma's overview shape and Weft's both read: name, mesh, online, connect time.
    #[test]
    fn overview_shapes() {
        let kuma = json!({"type": "DataplaneOverview", "mesh": "default", "name": "web-1",
            "dataplane": {"networking": {"address": "1.1.1.1", "inbound": [{"tags": {"kuma.io/service": "web"}}]}},
            "dataplaneInsight": {"subscriptions": [
                {"connectTime": "2025-01-01T00:00:00Z", "disconnectTime": "2025-01-01T01:00:00Z"},
                {"connectTime": "2025-01-01T02:00:00Z"}]}});
        let o = Overview::from_item(&kuma, "x");
        assert_eq!((o.mesh.as_str(), o.name.as_str()), ("default", "web-1"));
        assert!(o.online());
        assert_eq!(o.connect_time(), Some("2025-01-01T02:00:00Z"));

        let weft = json!({"dataplane": {"type": "Dataplane", "mesh": "m", "name": "b-1"},
            "dataplaneInsight": {"connected": false, "streams": 0, "connectTime": "2025-01-01T00:00:00Z",
                                 "disconnectTime": "2025-01-01T00:01:00Z", "types": {}}});
        let o = Overview::from_item(&weft, "m");
        assert_eq!(o.name, "b-1");
        assert!(!o.online());
        assert_eq!(o.connect_time(), Some("2025-01-01T00:00:00Z"));

        // No insight at all: offline, unknown connect time.
        let bare = Overview::from_item(&json!({"dataplane": {"name": "c"}}), "m");
        assert!(!bare.online() && bare.connect_time().is_none() && bare.mesh == "m");
    }

    // Services group dataplanes by kuma.io/service, counting the online ones.
    #[test]
    fn services_grouped() {
        let dp = |name: &str, svc: &str, online: bool| {
            Overview::from_item(
                &json!({"dataplane": {"name": name, "networking": {"inbound": [
                    {"tags": {"kuma.io/service": svc}}, {"tags": {"kuma.io/service": svc}}]}},
                    "dataplaneInsight": {"connected": online}}),
                "default",
            )
        };
        let all = vec![
            dp("a", "web", true),
            dp("b", "web", false),
            dp("c", "db", true),
        ];
        let g = group_services(&all);
        assert_eq!(g["web"], (1, 2));
        assert_eq!(g["db"], (1, 1));
    }

    // A zone row reads Weft's overview (online, proxies) and Kuma's (subscriptions).
    #[test]
    fn zone_rows() {
        let now = OffsetDateTime::parse(
            "2025-01-01T00:10:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let weft = json!({"zone": {"name": "east"}, "zoneInsight": {"online": true,
            "connectTime": "2025-01-01T00:00:00Z", "version": "0.1.0"},
            "proxies": {"ingresses": [{}], "egresses": [], "dataplanes": {"total": 3, "online": 2}}});
        assert_eq!(
            zone_row(&weft, now),
            ["east", "Online", "10m", "0.1.0", "1", "0", "2/3"]
        );
        let kuma = json!({"name": "west", "zoneInsight": {"subscriptions": [
            {"connectTime": "2025-01-01T00:09:00Z", "disconnectTime": "2025-01-01T00:09:30Z",
             "version": {"kumaCp": {"version": "2.14.3"}}}]}});
        assert_eq!(
            zone_row(&kuma, now),
            ["west", "Offline", "60s", "2.14.3", "-", "-", "-"]
        );
    }
}
