//! `inspect dataplanes|zones|meshes|services|<policy type> [NAME]` and `inspect
//! dataplane NAME --type ...`, over Kuma 2.14's insight endpoints: the
//! DataplaneOverview list (`GET /meshes/{m}/dataplanes/_overview`, filtered by
//! `tag`, `gateway`, `online` on the server), ZoneOverviews (`GET
//! /zones/_overview`), MeshInsights (`GET /mesh-insights`), the dataplanes a
//! policy selects (`GET …/{policy}/{name}/_resources/dataplanes`) and one
//! proxy's `_policies`, `_rules` and `_config` (computed by the zone it
//! connects to).

use crate::cli::{InspectArgs, InspectType, Output};
use crate::client::{Client, encode_query, encode_segment};
use crate::session::{Error, Session, to_json, to_yaml};
use crate::table::{self, age, text_at};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The largest page the API serves.
const MAX_PAGE: u32 = 1000;

pub async fn run(s: &mut Session<'_>, args: InspectArgs) -> Result<(), Error> {
    let client = s.client()?;
    let what = args.what.to_ascii_lowercase();
    let page = Paging::of(&args)?;
    match (what.as_str(), args.name.as_deref()) {
        ("dataplanes" | "dataplane" | "dp", None) => dataplanes(s, &client, &args, page).await,
        ("dataplanes" | "dataplane" | "dp", Some(name)) => {
            dataplane(s, &client, name, args.inspect_type).await
        }
        ("zones" | "zone", None) => zones(s, &client).await,
        ("zones" | "zone", Some(name)) => {
            let v = client
                .get_json(&format!("/zones/{}/_overview", encode_segment(name)))
                .await?;
            raw_json(s, &v)
        }
        ("meshes" | "mesh", _) => meshes(s, &client, page).await,
        ("services" | "service", _) => services(s, &client).await,
        (other, name) => policy(s, &client, other, name, page).await,
    }
}

/// `--size` and `--offset`: one page, or every item from `offset` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Paging {
    size: Option<u32>,
    offset: u32,
}

impl Paging {
    fn of(args: &InspectArgs) -> Result<Self, Error> {
        if let Some(n) = args.size
            && !(1..=MAX_PAGE).contains(&n)
        {
            return Err(Error::Usage(format!(
                "--size {n}: must be between 1 and {MAX_PAGE}"
            )));
        }
        Ok(Paging {
            size: args.size,
            offset: args.offset.unwrap_or(0),
        })
    }
}

/// A list endpoint's answer: the server's one page with `--size`, else every
/// page read `MAX_PAGE` at a time and joined (`{total, items, next: null}`).
async fn list(
    client: &Client,
    path: &str,
    query: &[(String, String)],
    page: Paging,
) -> Result<Value, Error> {
    let mut items = Vec::new();
    let mut offset = page.offset;
    loop {
        let mut q: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode_query(k), encode_query(v)))
            .collect();
        q.push(format!("size={}", page.size.unwrap_or(MAX_PAGE)));
        q.push(format!("offset={offset}"));
        let v = client.get_json(&format!("{path}?{}", q.join("&"))).await?;
        if page.size.is_some() {
            return Ok(v);
        }
        let got = v
            .get("items")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let n = got.len();
        items.extend(got);
        offset = offset.saturating_add(u32::try_from(n).unwrap_or(MAX_PAGE));
        if n == 0 || v.get("next").is_none_or(Value::is_null) {
            let total = v.get("total").cloned().unwrap_or(json!(items.len()));
            return Ok(json!({"total": total, "items": items, "next": null}));
        }
    }
}

fn items(v: &Value) -> &[Value] {
    v.get("items")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
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

/// The newest subscription of a Kuma insight (the newest is last).
fn last_subscription(insight: &Value) -> Option<&Value> {
    insight.get("subscriptions")?.as_array()?.last()
}

/// A subscription that started and has not ended.
fn open(sub: Option<&Value>) -> bool {
    sub.is_some_and(|s| {
        s.get("connectTime").is_some_and(|t| !t.is_null())
            && s.get("disconnectTime").is_none_or(Value::is_null)
    })
}

/// Sum of `status.total.<counter>` over every subscription (as kumactl counts).
fn total(insight: &Value, counter: &str) -> u64 {
    insight
        .get("subscriptions")
        .and_then(Value::as_array)
        .map(|subs| {
            subs.iter()
                .filter_map(|s| s.pointer(&format!("/status/total/{counter}"))?.as_u64())
                .sum()
        })
        .unwrap_or(0)
}

fn str_at<'a>(v: Option<&'a Value>, pointer: &str) -> Option<&'a str> {
    v?.pointer(pointer)?.as_str()
}

/// A DataplaneOverview's `dataplaneInsight` is online: `connected` (a zone's
/// live stream), else its newest subscription is open.
pub fn dataplane_online(insight: &Value) -> bool {
    match insight.get("connected").and_then(Value::as_bool) {
        Some(c) => c,
        None => open(last_subscription(insight)),
    }
}

/// The server-side filters of `inspect dataplanes`: `--tag KEY=VALUE` becomes
/// Kuma's `tag=KEY:VALUE`.
fn dataplane_filters(args: &InspectArgs) -> Result<Vec<(String, String)>, Error> {
    let mut q = Vec::new();
    for t in &args.tags {
        match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => q.push(("tag".into(), format!("{k}:{v}"))),
            _ => {
                return Err(Error::Usage(format!(
                    "--tag {t:?}: expected KEY=VALUE, e.g. --tag kuma.io/service=web"
                )));
            }
        }
    }
    if args.gateway {
        q.push(("gateway".into(), "true".into()));
    }
    if let Some(o) = args.online {
        q.push(("online".into(), o.to_string()));
    }
    Ok(q)
}

const DATAPLANE_HEADERS: &[&str] = &[
    "MESH",
    "NAME",
    "TAGS",
    "STATUS",
    "LAST CONNECTED AGO",
    "LAST UPDATED AGO",
    "TOTAL UPDATES",
    "TOTAL ERRORS",
    "CERT EXPIRATION",
    "CERT BACKEND",
];

/// kumactl's row of a DataplaneOverview.
fn dataplane_row(o: &Value, now: OffsetDateTime) -> Vec<String> {
    let insight = o.get("dataplaneInsight").unwrap_or(&Value::Null);
    let last = last_subscription(insight);
    let mtls = insight.get("mTLS");
    vec![
        text_at(o, "mesh", "-"),
        text_at(o, "name", "-"),
        table::dataplane_tags(o.get("dataplane").unwrap_or(&Value::Null)),
        if dataplane_online(insight) {
            "Online"
        } else {
            "Offline"
        }
        .into(),
        age(str_at(last, "/connectTime"), now),
        age(str_at(last, "/status/lastUpdateTime"), now),
        total(insight, "responsesSent").to_string(),
        total(insight, "responsesRejected").to_string(),
        str_at(mtls, "/certificateExpirationTime")
            .unwrap_or("-")
            .into(),
        str_at(mtls, "/issuedBackend").unwrap_or("-").into(),
    ]
}

fn overview_path(mesh: &str) -> String {
    format!("/meshes/{}/dataplanes/_overview", encode_segment(mesh))
}

async fn dataplanes(
    s: &mut Session<'_>,
    client: &Client,
    args: &InspectArgs,
    page: Paging,
) -> Result<(), Error> {
    let filters = dataplane_filters(args)?;
    let v = list(client, &overview_path(&s.global.mesh), &filters, page).await?;
    let now = OffsetDateTime::now_utc();
    let rows: Vec<Vec<String>> = items(&v).iter().map(|o| dataplane_row(o, now)).collect();
    s.print(&v, || table::render(DATAPLANE_HEADERS, &rows))
}

async fn dataplane(
    s: &mut Session<'_>,
    client: &Client,
    name: &str,
    ty: InspectType,
) -> Result<(), Error> {
    let mesh = s.global.mesh.clone();
    let base = format!(
        "/meshes/{}/dataplanes/{}",
        encode_segment(&mesh),
        encode_segment(name)
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
    let answer = match client.send_ok(hyper::Method::GET, &path, None).await {
        Ok(a) => a,
        // Global answers 405 for what only the proxy's zone computes, naming it.
        Err(e) if e.status() == Some(hyper::StatusCode::METHOD_NOT_ALLOWED) => {
            return Err(Error::Usage(format!("{e}\n{ASK_THE_ZONE}")));
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

/// What to do when global says a zone computes what was asked.
const ASK_THE_ZONE: &str = "ask that zone's control plane: `weftctl config control-planes add \
     --name ZONE --address <its API>` (or `config control-planes switch --name ZONE`), then run \
     this again";

const ZONE_HEADERS: &[&str] = &[
    "NAME",
    "STATUS",
    "ENABLED",
    "LAST CONNECTED AGO",
    "LAST UPDATED AGO",
    "TOTAL UPDATES",
    "TOTAL ERRORS",
    "ZONE-CP VERSION",
    "DATAPLANES ONLINE",
];

/// kumactl's row of a ZoneOverview (online: enabled and its newest KDS
/// subscription open), with whether it is enabled and its dataplanes.
fn zone_row(z: &Value, now: OffsetDateTime) -> Vec<String> {
    let insight = z.get("zoneInsight").unwrap_or(&Value::Null);
    let last = last_subscription(insight);
    let enabled = z.pointer("/zone/enabled").and_then(Value::as_bool) != Some(false);
    let dataplanes = match (
        z.pointer("/proxies/dataplanes/online"),
        z.pointer("/proxies/dataplanes/total"),
    ) {
        (Some(on), Some(total)) => format!("{on}/{total}"),
        _ => "-".into(),
    };
    vec![
        text_at(z, "name", "-"),
        if enabled && open(last) {
            "Online"
        } else {
            "Offline"
        }
        .into(),
        if enabled { "yes" } else { "no" }.into(),
        age(str_at(last, "/connectTime"), now),
        age(str_at(last, "/status/lastUpdateTime"), now),
        total(insight, "responsesSent").to_string(),
        total(insight, "responsesRejected").to_string(),
        str_at(last, "/version/kumaCp/version")
            .filter(|v| !v.is_empty())
            .unwrap_or("-")
            .into(),
        dataplanes,
    ]
}

async fn zones(s: &mut Session<'_>, client: &Client) -> Result<(), Error> {
    let v = client.get_json("/zones/_overview").await.map_err(|e| {
        if e.status() == Some(hyper::StatusCode::NOT_FOUND) {
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
    let rows: Vec<Vec<String>> = items(&v).iter().map(|z| zone_row(z, now)).collect();
    s.print(&v, || table::render(ZONE_HEADERS, &rows))
}

const MESH_HEADERS: &[&str] = &[
    "MESH",
    "DATAPLANES ONLINE",
    "SERVICES",
    "POLICIES",
    "CERTS ISSUED (ONLINE/TOTAL)",
];

/// A MeshInsight's row: dataplanes, services, policies, and per mTLS backend
/// the proxies holding a certificate it issued.
fn mesh_row(m: &Value) -> Vec<String> {
    let n = |p: &str| m.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let policies: u64 = m
        .get("policies")
        .and_then(Value::as_object)
        .map(|p| p.values().filter_map(|t| t.get("total")?.as_u64()).sum())
        .unwrap_or(0);
    let issued = m
        .pointer("/mTLS/issuedBackends")
        .and_then(Value::as_object)
        .map(|b| {
            b.iter()
                .map(|(name, s)| {
                    let c = |k: &str| s.get(k).and_then(Value::as_u64).unwrap_or(0);
                    format!("{name}: {}/{}", c("online"), c("total"))
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "-".into());
    vec![
        text_at(m, "name", "-"),
        format!("{}/{}", n("/dataplanes/online"), n("/dataplanes/total")),
        n("/services/total").to_string(),
        policies.to_string(),
        issued,
    ]
}

async fn meshes(s: &mut Session<'_>, client: &Client, page: Paging) -> Result<(), Error> {
    let v = list(client, "/mesh-insights", &[], page).await?;
    let rows: Vec<Vec<String>> = items(&v).iter().map(mesh_row).collect();
    s.print(&v, || table::render(MESH_HEADERS, &rows))
}

/// Dataplanes grouped by their inbounds' `kuma.io/service`: (online, total).
pub fn group_services(overviews: &[Value]) -> BTreeMap<String, (u64, u64)> {
    let mut services: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for o in overviews {
        let up = dataplane_online(o.get("dataplaneInsight").unwrap_or(&Value::Null));
        let names: std::collections::BTreeSet<&str> = o
            .pointer("/dataplane/networking/inbound")
            .and_then(Value::as_array)
            .map(|inbounds| {
                inbounds
                    .iter()
                    .filter_map(|i| i.pointer("/tags/kuma.io~1service")?.as_str())
                    .collect()
            })
            .unwrap_or_default();
        for svc in names {
            let e = services.entry(svc.to_string()).or_default();
            e.1 += 1;
            if up {
                e.0 += 1;
            }
        }
    }
    services
}

async fn services(s: &mut Session<'_>, client: &Client) -> Result<(), Error> {
    let mesh = s.global.mesh.clone();
    let all = list(
        client,
        &overview_path(&mesh),
        &[],
        Paging {
            size: None,
            offset: 0,
        },
    )
    .await?;
    let services = group_services(items(&all));
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

/// `inspect <policy type>`: the policies of the mesh; with a NAME, the
/// dataplanes it selects (kumactl's `TYPE MESH NAME` and `Total: N`).
async fn policy(
    s: &mut Session<'_>,
    client: &Client,
    given: &str,
    name: Option<&str>,
    page: Paging,
) -> Result<(), Error> {
    let types = s.types(client).await?;
    let (t, _) = types.find(given)?;
    if !t.is_policy() {
        return Err(Error::Usage(format!(
            "inspect shows dataplanes, zones, meshes, services or a policy type; {} is \
             none of them (`weftctl get {}` lists them)",
            t.name, t.path
        )));
    }
    let mesh = s.global.mesh.clone();
    let now = OffsetDateTime::now_utc();
    match name {
        None => {
            let v = client.get_json(&t.list_path(&mesh)).await?;
            let list = items(&v).to_vec();
            s.print(&v, || table::resources(&t.name, true, true, &list, now))
        }
        Some(name) => {
            let path = format!("{}/_resources/dataplanes", t.item_path(&mesh, name));
            let v = list(client, &path, &[], page).await?;
            let rows: Vec<Vec<String>> = items(&v)
                .iter()
                .map(|d| {
                    vec![
                        text_at(d, "type", "Dataplane"),
                        text_at(d, "mesh", &mesh),
                        text_at(d, "name", "-"),
                    ]
                })
                .collect();
            let footer = format!("Total: {}\n", text_at(&v, "total", "0"));
            s.print(&v, || {
                table::render(&["TYPE", "MESH", "NAME"], &rows) + &footer
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn at(t: &str) -> OffsetDateTime {
        OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
    }

    // Kuma's DataplaneOverview: online from the newest subscription (or a zone's
    // `connected`), updates and errors summed over subscriptions, the certificate.
    #[test]
    fn dataplane_rows() {
        let o = json!({"type": "DataplaneOverview", "mesh": "default", "name": "web-1",
            "dataplane": {"networking": {"address": "1.1.1.1", "inbound": [{"tags": {"kuma.io/service": "web"}}]}},
            "dataplaneInsight": {"subscriptions": [
                {"connectTime": "2025-01-01T00:00:00Z", "disconnectTime": "2025-01-01T01:00:00Z",
                 "status": {"total": {"responsesSent": 3, "responsesRejected": 1}}},
                {"connectTime": "2025-01-01T02:00:00Z",
                 "status": {"lastUpdateTime": "2025-01-01T02:01:00Z", "total": {"responsesSent": 4}}}],
                "mTLS": {"certificateExpirationTime": "2025-01-02T02:00:00Z", "issuedBackend": "ca-1"}}});
        assert_eq!(
            dataplane_row(&o, at("2025-01-01T02:05:00Z")),
            [
                "default",
                "web-1",
                "kuma.io/service=web",
                "Online",
                "5m",
                "4m",
                "7",
                "1",
                "2025-01-02T02:00:00Z",
                "ca-1"
            ]
        );
        // The newest subscription ended: offline; a zone's live `connected` wins.
        let ended = json!({"subscriptions": [{"connectTime": "2025-01-01T00:00:00Z",
            "disconnectTime": "2025-01-01T00:01:00Z"}]});
        assert!(!dataplane_online(&ended));
        let mut live = ended.clone();
        live["connected"] = json!(true);
        assert!(dataplane_online(&live));
        // No insight at all: offline, nothing known.
        let bare = dataplane_row(
            &json!({"name": "c", "mesh": "m"}),
            at("2025-01-01T00:00:00Z"),
        );
        assert_eq!(bare[3..], ["Offline", "-", "-", "0", "0", "-", "-"]);
    }

    // --tag KEY=VALUE becomes Kuma's tag=KEY:VALUE; --gateway and --online pass
    // through; a tag without `=` is refused naming the flag.
    #[test]
    fn dataplane_filter_flags() {
        let parse = |args: &[&str]| {
            let mut all = vec!["weftctl", "inspect", "dataplanes"];
            all.extend_from_slice(args);
            match crate::cli::Cli::try_parse_from(all).unwrap().command {
                crate::cli::Command::Inspect(i) => i,
                _ => panic!(),
            }
        };
        let a = parse(&[
            "--tag",
            "kuma.io/service=web",
            "--tag",
            "version=*",
            "--gateway",
            "--online",
        ]);
        let q = dataplane_filters(&a).unwrap();
        let want: Vec<(String, String)> = [
            ("tag", "kuma.io/service:web"),
            ("tag", "version:*"),
            ("gateway", "true"),
            ("online", "true"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(q, want);
        let offline = dataplane_filters(&parse(&["--online=false"])).unwrap();
        assert_eq!(offline, [("online".to_string(), "false".to_string())]);
        let err = dataplane_filters(&parse(&["--tag", "web"])).unwrap_err();
        assert!(err.to_string().contains("--tag \"web\""), "{err}");
        let err = Paging::of(&parse(&["--size", "0"])).unwrap_err();
        assert!(err.to_string().contains("--size 0"), "{err}");
    }

    // A ZoneOverview row: online needs the zone enabled and its newest KDS
    // subscription open; the version is the newest subscription's kumaCp.
    #[test]
    fn zone_rows() {
        let now = at("2025-01-01T00:10:00Z");
        let z = json!({"type": "ZoneOverview", "name": "east", "zone": {"enabled": true},
            "zoneInsight": {"subscriptions": [{"connectTime": "2025-01-01T00:00:00Z",
                "status": {"lastUpdateTime": "2025-01-01T00:09:00Z",
                           "total": {"responsesSent": 5, "responsesAcknowledged": 5, "responsesRejected": 0}},
                "version": {"kumaCp": {"version": "0.1.0", "kumaCpGlobalCompatible": true}}}]},
            "proxies": {"dataplanes": {"total": 3, "online": 2}}});
        assert_eq!(
            zone_row(&z, now),
            [
                "east", "Online", "yes", "10m", "60s", "5", "0", "0.1.0", "2/3"
            ]
        );
        let mut disabled = z.clone();
        disabled["zone"]["enabled"] = json!(false);
        assert_eq!(zone_row(&disabled, now)[1..3], ["Offline", "no"]);
        let gone = json!({"name": "west", "zoneInsight": {"subscriptions": [
            {"connectTime": "2025-01-01T00:09:00Z", "disconnectTime": "2025-01-01T00:09:30Z",
             "version": {"kumaCp": {"version": "2.14.3"}}}]}});
        assert_eq!(
            zone_row(&gone, now),
            [
                "west", "Offline", "yes", "60s", "-", "0", "0", "2.14.3", "-"
            ]
        );
    }

    // A MeshInsight row: dataplanes online/total, services, policies summed,
    // certificates per issuing backend.
    #[test]
    fn mesh_rows() {
        let m = json!({"type": "MeshInsight", "name": "default",
            "dataplanes": {"online": 1, "offline": 1, "total": 2},
            "services": {"total": 2, "internal": 2, "external": 0},
            "policies": {"MeshTimeout": {"total": 2}, "MeshRetry": {"total": 1}},
            "mTLS": {"issuedBackends": {"ca-1": {"online": 1, "offline": 0, "total": 1}}}});
        assert_eq!(mesh_row(&m), ["default", "1/2", "2", "3", "ca-1: 1/1"]);
        let bare = json!({"name": "other"});
        assert_eq!(mesh_row(&bare), ["other", "0/0", "0", "0", "-"]);
    }

    // Services group dataplanes by kuma.io/service, counting the online ones.
    #[test]
    fn services_grouped() {
        let dp = |name: &str, svc: &str, online: bool| {
            json!({"name": name, "dataplane": {"networking": {"inbound": [
                {"tags": {"kuma.io/service": svc}}, {"tags": {"kuma.io/service": svc}}]}},
                "dataplaneInsight": {"connected": online}})
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
}
