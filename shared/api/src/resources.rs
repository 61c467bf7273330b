//! CRUD over the store at Kuma's paths:
//!
//! | path | methods |
//! |---|---|
//! | `/meshes`, `/{plural}` | GET (list; `/{plural}` lists a type across meshes) |
//! | `/meshes/{name}`, `/{plural}/{name}` (types outside meshes) | GET, PUT, DELETE |
//! | `/meshes/{mesh}/{plural}` | GET (list in one mesh) |
//! | `/meshes/{mesh}/{plural}/{name}` | GET, PUT, DELETE |
//!
//! PUT takes YAML or JSON (JSON when `Content-Type: application/json`) and answers
//! 201 when it created, 200 when it updated; `If-Match: "<version>"` makes it
//! conditional. GET answers JSON, or YAML with `Accept: application/yaml`; the
//! `ETag` header carries the resource's version.

use super::{ApiError, ApiState, Mode};
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use weft_model::resource::mesh::MeshSpec;
use weft_model::resource::{self, Owner, Resource, ResourceKey, ResourceType, Scope, Spec, tags};
use weft_store::{self as store, Page, WriteOp};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/_resources", get(super::types::list))
        .route("/meshes", get(list_meshes))
        .route(
            "/meshes/{name}",
            get(get_mesh).put(put_mesh).delete(delete_mesh),
        )
        .route("/meshes/{mesh}/{plural}", get(list_in_mesh))
        .route(
            "/meshes/{mesh}/{plural}/{name}",
            get(get_in_mesh).put(put_in_mesh).delete(delete_in_mesh),
        )
        .route("/{plural}", get(list_all))
        .route(
            "/{plural}/{name}",
            get(get_global).put(put_global).delete(delete_global),
        )
}

/// A list's query, Kuma's parameters: `size`, `offset`, `name` (the name
/// contains it) and `filter[labels.<key>]=<value>` (exact label match, all of
/// them). Anything else is refused, naming the parameter, rather than ignored.
pub(crate) type ListQuery = Vec<(String, String)>;

#[derive(Debug, Default)]
pub(crate) struct ListParams {
    size: Option<String>,
    offset: Option<String>,
    pub(crate) name: Option<String>,
    labels: std::collections::BTreeMap<String, String>,
    /// The endpoint's own parameters (those [`ListParams::parse_with`] allowed).
    pub(crate) extra: Vec<(String, String)>,
}

impl ListParams {
    pub(crate) fn parse(pairs: ListQuery) -> Result<Self, ApiError> {
        Self::parse_with(pairs, &[])
    }

    /// [`ListParams::parse`], also accepting the parameters named in `allowed`
    /// (kept in `extra`, in order).
    pub(crate) fn parse_with(pairs: ListQuery, allowed: &[&str]) -> Result<Self, ApiError> {
        let mut p = ListParams::default();
        for (k, v) in pairs {
            match k.as_str() {
                "size" => p.size = Some(v),
                "offset" => p.offset = Some(v),
                "name" => p.name = Some(v).filter(|n| !n.is_empty()),
                _ if allowed.contains(&k.as_str()) => p.extra.push((k, v)),
                _ => match k
                    .strip_prefix("filter[labels.")
                    .and_then(|r| r.strip_suffix(']'))
                {
                    Some(label) if !label.is_empty() && !label.contains(['[', ']']) => {
                        p.labels.insert(label.to_string(), v);
                    }
                    _ if k.starts_with("filter[") => {
                        return Err(ApiError::invalid_field(
                            &k,
                            "filters are only supported on labels: filter[labels.<key>]=<value>",
                        ));
                    }
                    _ => {
                        let own: String = allowed.iter().map(|a| format!(", {a}")).collect();
                        return Err(ApiError::invalid_field(
                            &k,
                            format!(
                                "unknown query parameter: this list takes size, offset, name{own} \
                                 and filter[labels.<key>]"
                            ),
                        ));
                    }
                },
            }
        }
        Ok(p)
    }

    fn filters(&self) -> bool {
        self.name.is_some() || !self.labels.is_empty()
    }

    /// The page size asked for (default [`Page::DEFAULT_SIZE`]).
    pub(crate) fn size(&self) -> Result<usize, ApiError> {
        match self.size.as_deref() {
            None => Ok(Page::DEFAULT_SIZE),
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=Page::MAX_SIZE).contains(&n) => Ok(n),
                _ => Err(ApiError::invalid_field(
                    "size",
                    format!(
                        "Invalid page size: must be a whole number from 1 to {}",
                        Page::MAX_SIZE
                    ),
                )),
            },
        }
    }

    pub(crate) fn offset(&self) -> Result<usize, ApiError> {
        match self.offset.as_deref() {
            None | Some("") => Ok(0),
            Some(s) => s.parse::<usize>().map_err(|_| {
                ApiError::invalid_field("offset", "Invalid offset: must be a whole number")
            }),
        }
    }

    /// Cuts the page from `matching` (already filtered): `(items, total, next offset)`.
    pub(crate) fn cut<T>(
        &self,
        matching: Vec<T>,
    ) -> Result<(Vec<T>, usize, Option<usize>), ApiError> {
        let (size, offset) = (self.size()?, self.offset()?);
        let total = matching.len();
        let items: Vec<T> = matching.into_iter().skip(offset).take(size).collect();
        let next = (offset + items.len() < total).then_some(offset + items.len());
        Ok((items, total, next))
    }

    pub(crate) fn keeps(&self, r: &Resource) -> bool {
        self.name.as_deref().is_none_or(|n| r.meta.name.contains(n))
            && self
                .labels
                .iter()
                .all(|(k, v)| r.meta.labels.get(k) == Some(v))
    }
}

/// The type a path's plural names; a Kuma 2.14 type Weft lacks is named as
/// such (docs/api.md#kuma-routes).
pub(crate) fn resource_type(plural: &str) -> Result<ResourceType, ApiError> {
    ResourceType::from_plural(plural).ok_or_else(|| {
        super::kuma_routes::lacking_type(plural).unwrap_or_else(|| {
            ApiError::not_found(format!(
                "unknown resource type {plural:?}: GET /_resources lists the types this API serves \
                 (docs/api.md)"
            ))
        })
    })
}

/// The key an item path names, refusing paths whose scope does not fit the type.
fn key_for(ty: ResourceType, mesh: Option<&str>, name: &str) -> Result<ResourceKey, ApiError> {
    match (ty.scope(), mesh) {
        (Scope::Mesh, None) => Err(ApiError::not_found(format!(
            "{ty} lives inside a mesh: use /meshes/{{mesh}}/{}/{name}",
            ty.plural()
        ))),
        (Scope::Global, Some(_)) => Err(ApiError::not_found(format!(
            "{ty} is not inside a mesh: use /{}/{name}",
            ty.plural()
        ))),
        _ => Ok(ResourceKey::new(ty, mesh, name)),
    }
}

async fn list_meshes(
    state: State<ApiState>,
    q: Query<ListQuery>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    list(state, ResourceType::Mesh, None, q, headers, uri).await
}

async fn list_all(
    state: State<ApiState>,
    Path(plural): Path<String>,
    q: Query<ListQuery>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let ty = resource_type(&plural)?;
    list(state, ty, None, q, headers, uri).await
}

async fn list_in_mesh(
    state: State<ApiState>,
    Path((mesh, plural)): Path<(String, String)>,
    q: Query<ListQuery>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let ty = resource_type(&plural)?;
    if ty.scope() == Scope::Global {
        return Err(ApiError::not_found(format!(
            "{ty} is not inside a mesh: use /{}",
            ty.plural()
        )));
    }
    let mesh_key = ResourceKey::new(ResourceType::Mesh, None, &mesh);
    if state.store.get(&mesh_key).await?.is_none() {
        return Err(ApiError::not_found(format!("mesh {mesh:?} does not exist")));
    }
    list(state, ty, Some(&mesh), q, headers, uri).await
}

async fn list(
    State(state): State<ApiState>,
    ty: ResourceType,
    mesh: Option<&str>,
    Query(q): Query<ListQuery>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Result<Response, ApiError> {
    let q = ListParams::parse(q)?;
    let (size, offset) = (q.size()?, q.offset()?);
    let page = if q.filters() {
        // Filtered: the page is cut from what matches, so `total` counts matches.
        let all = state.store.list(ty, mesh, Page::all()).await?.items;
        let matching: Vec<Resource> = all.into_iter().filter(|r| q.keeps(r)).collect();
        let total = matching.len();
        let items: Vec<Resource> = matching.into_iter().skip(offset).take(size).collect();
        let next_offset = (offset + items.len() < total).then_some(offset + items.len());
        weft_store::ListPage {
            items,
            total,
            next_offset,
        }
    } else {
        state.store.list(ty, mesh, Page { size, offset }).await?
    };
    let next = page
        .next_offset
        .map(|o| next_url(&headers, &uri, size, o, &[]));
    let mut items = Vec::with_capacity(page.items.len());
    for res in &page.items {
        items.push(answer_of(res, state.mode.zone_name()));
    }
    let body = json!({ "total": page.total, "items": items, "next": next });
    Ok(respond(StatusCode::OK, &body, &headers, None))
}

/// The `next` link of a list page: the same path and filters (`name`,
/// `filter[...]` and the endpoint's own `extra` parameters) at offset `offset`.
pub(crate) fn next_url(
    headers: &HeaderMap,
    uri: &axum::http::Uri,
    size: usize,
    offset: usize,
    extra: &[&str],
) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let filters: String = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|kv| {
            kv.starts_with("name=")
                || kv.starts_with("filter")
                || extra.iter().any(|e| kv.starts_with(&format!("{e}=")))
        })
        .map(|kv| format!("&{kv}"))
        .collect();
    format!(
        "http://{host}{}?size={size}&offset={offset}{filters}",
        uri.path()
    )
}

/// A resource as GET and lists answer it: its JSON with CA private keys
/// redacted and, as Kuma 2.14 adds it, its `kri` (for the types that have a
/// short name).
pub(crate) fn answer_of(res: &Resource, here: Option<&str>) -> Value {
    let mut value = res.to_value();
    super::mesh_ca::redact(res, &mut value);
    if super::types::short_name(res.resource_type()).is_some()
        && let Some(o) = value.as_object_mut()
    {
        o.insert("kri".into(), json!(super::kri(res, here)));
    }
    value
}

async fn get_mesh(
    state: State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    get_item(state, key_for(ResourceType::Mesh, None, &name)?, headers).await
}

async fn get_global(
    state: State<ApiState>,
    Path((plural, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = key_for(resource_type(&plural)?, None, &name)?;
    get_item(state, key, headers).await
}

async fn get_in_mesh(
    state: State<ApiState>,
    Path((mesh, plural, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = key_for(resource_type(&plural)?, Some(&mesh), &name)?;
    get_item(state, key, headers).await
}

async fn get_item(
    State(state): State<ApiState>,
    key: ResourceKey,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    match state.store.get(&key).await? {
        Some(res) => {
            let value = answer_of(&res, state.mode.zone_name());
            Ok(respond(
                StatusCode::OK,
                &value,
                &headers,
                Some(res.meta.version),
            ))
        }
        None => Err(ApiError::not_found(format!("{key} not found"))),
    }
}

async fn put_mesh(
    state: State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    put_item(
        state,
        key_for(ResourceType::Mesh, None, &name)?,
        headers,
        body,
    )
    .await
}

async fn put_global(
    state: State<ApiState>,
    Path((plural, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = key_for(resource_type(&plural)?, None, &name)?;
    put_item(state, key, headers, body).await
}

async fn put_in_mesh(
    state: State<ApiState>,
    Path((mesh, plural, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let key = key_for(resource_type(&plural)?, Some(&mesh), &name)?;
    put_item(state, key, headers, body).await
}

/// Refuses writes of types another control plane owns (DESIGN §8). Policies
/// on a federated zone pass here: [`check_origin`] decides per resource.
pub(super) fn check_writable(mode: &Mode, ty: ResourceType) -> Result<(), ApiError> {
    if ty.is_insight() {
        return Err(ApiError::method_not_allowed(format!(
            "{ty} resources are written by the control plane from its connections; they are read-only"
        )));
    }
    match (mode, ty.owner()) {
        (
            Mode::Zone {
                federated: true, ..
            },
            Owner::Global,
        ) if ty.is_policy() => Ok(()),
        (Mode::Global, Owner::Zone) => Err(ApiError::method_not_allowed(format!(
            "{ty} resources are created by zone control planes, where the proxy runs; \
             global shows them read-only once the zone reports them"
        ))),
        (
            Mode::Zone {
                federated: true, ..
            },
            Owner::Global,
        ) => Err(ApiError::method_not_allowed(format!(
            "this zone is federated: apply {ty} resources on the global control plane, which syncs them to every zone"
        ))),
        (Mode::Zone { .. }, _) if ty == ResourceType::Zone => Err(ApiError::method_not_allowed(
            "Zone resources live on the global control plane",
        )),
        _ => Ok(()),
    }
}

async fn put_item(
    State(state): State<ApiState>,
    key: ResourceKey,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    check_writable(&state.mode, key.ty)?;
    let bytes = read_body(body, &headers, state.max_body_bytes).await?;
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    let doc = resource::parse_document(&bytes, is_json)?;
    let read = Resource::read(doc).map_err(|e| ApiError::invalid(&e))?;
    let unknown_fields = read.warnings();
    let res = read.resource;
    check_matches_url(&res, &key)?;
    let expected = if_match(&headers)?;
    let current = match needs_current(&state.mode, key.ty) {
        true => state.store.get(&key).await?,
        false => None,
    };
    check_origin(&state.mode, key.ty, current.as_ref(), Some(&res))?;
    if let Spec::Mesh(new) = &res.spec
        && let Some(Resource {
            spec: Spec::Mesh(old),
            ..
        }) = &current
    {
        check_ca_change(old, new)?;
    }
    let mut prepared = if key.ty == ResourceType::Mesh {
        let mut p = super::mesh_ca::prepare(state.store.as_ref(), &res).await?;
        if matches!(state.mode, crate::Mode::Global) {
            p.warnings
                .extend(super::mesh_ca::cross_zone_warning(state.store.as_ref(), &res).await?);
        }
        p
    } else {
        super::mesh_ca::Prepared {
            warnings: super::mesh_ca::policy_warnings(state.store.as_ref(), &res).await?,
            ..Default::default()
        }
    };
    prepared.warnings.splice(0..0, unknown_fields);
    prepared
        .warnings
        .extend(weft_model::rules::effects::warnings(&res));
    let (stored, created) =
        if key.ty == ResourceType::Mesh && expected.is_none() && current.is_none() {
            // A new mesh comes with Kuma's default policies and its builtin CAs, in
            // the same transaction.
            let ops = weft_model::rules::defaults::mesh_with_defaults(res)
                .map_err(|e| ApiError::invalid(&e))?
                .into_iter()
                .chain(prepared.secrets)
                .map(WriteOp::Upsert)
                .collect();
            let changes = state.store.transact(ops).await?;
            (store::stored(changes)?, true)
        } else {
            if !prepared.secrets.is_empty() {
                // The CA first: a Mesh naming a CA that is not there yet would leave
                // its proxies without certificates.
                let ops = prepared.secrets.into_iter().map(WriteOp::Upsert).collect();
                state.store.transact(ops).await?;
            }
            store::put(state.store.as_ref(), res, expected).await?
        };
    tracing::info!(resource = %key, version = stored.meta.version, created, "resource written");
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(respond(
        status,
        &json!({ "warnings": prepared.warnings }),
        &headers,
        Some(stored.meta.version),
    ))
}

/// Moving `enabledBackend` while mTLS is on rotates the CA (zones trust both CAs,
/// then reissue, then drop the old one). That needs the old backend to stay
/// listed while it happens; a swap that removes it at once would break every
/// proxy's certificate together, and is refused.
fn check_ca_change(old: &MeshSpec, new: &MeshSpec) -> Result<(), ApiError> {
    let name = |m: &MeshSpec| m.enabled_backend().map(|b| b.name.clone());
    match (name(old), name(new)) {
        (Some(before), Some(after))
            if before != after
                && !new
                    .mtls
                    .iter()
                    .flat_map(|m| &m.backends)
                    .any(|b| b.name == before) =>
        {
            Err(ApiError::invalid_field(
                "mtls.enabledBackend",
                format!(
                    "changing the CA from {before:?} to {after:?} while mTLS is on needs {before:?} to stay in mtls.backends \
                     until every proxy holds a certificate from {after:?} (GET /meshes/<mesh>/_mtls on each zone shows it); \
                     remove it in a later change, or disable mTLS first"
                ),
            ))
        }
        _ => Ok(()),
    }
}

fn check_matches_url(res: &Resource, key: &ResourceKey) -> Result<(), ApiError> {
    if res.resource_type() != key.ty {
        return Err(ApiError::invalid_field(
            "type",
            format!(
                "type from the URL ({}) has to be the same as in the body ({})",
                key.ty,
                res.resource_type()
            ),
        ));
    }
    if res.meta.name != key.name {
        return Err(ApiError::invalid_field(
            "name",
            "name from the URL has to be the same as in the body",
        ));
    }
    if res.meta.mesh != key.mesh {
        return Err(ApiError::invalid_field(
            "mesh",
            "mesh from the URL has to be the same as in the body",
        ));
    }
    Ok(())
}

async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<axum::body::Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "request body is larger than the limit of {limit} bytes (--api-max-body-bytes)"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| too_large())
}

fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    v.to_str()
        .ok()
        .map(|s| s.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|s| s.parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::bad_request("If-Match must be a version as returned in ETag, e.g. \"42\"")
        })
}

async fn delete_mesh(
    state: State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    delete_item(state, key_for(ResourceType::Mesh, None, &name)?, headers).await
}

async fn delete_global(
    state: State<ApiState>,
    Path((plural, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = key_for(resource_type(&plural)?, None, &name)?;
    delete_item(state, key, headers).await
}

async fn delete_in_mesh(
    state: State<ApiState>,
    Path((mesh, plural, name)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let key = key_for(resource_type(&plural)?, Some(&mesh), &name)?;
    delete_item(state, key, headers).await
}

async fn delete_item(
    State(state): State<ApiState>,
    key: ResourceKey,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    check_writable(&state.mode, key.ty)?;
    let expected = if_match(&headers)?;
    if needs_current(&state.mode, key.ty) {
        let current = state.store.get(&key).await?;
        check_origin(&state.mode, key.ty, current.as_ref(), None)?;
    }
    if key.ty == ResourceType::Zone
        && state
            .hooks
            .zone_connected
            .as_ref()
            .is_some_and(|connected| connected(&key.name))
    {
        // As Kuma: a zone is shut down before it is deleted.
        return Err(ApiError::bad_request(format!(
            "unable to delete zone {:?}: its control plane is still connected; shut it down first \
             (or set enabled: false to disconnect it)",
            key.name
        )));
    }
    if key.ty == ResourceType::Mesh {
        // As Kuma: a mesh with proxies in it is not deleted from under them.
        let dps = state
            .store
            .list(
                ResourceType::Dataplane,
                Some(&key.name),
                Page { size: 1, offset: 0 },
            )
            .await?;
        if dps.total > 0 {
            return Err(ApiError::bad_request(format!(
                "unable to delete mesh {:?}: there are still {} dataplanes attached; stop them first",
                key.name, dps.total
            )));
        }
    }
    let deleted = state.store.delete(&key, expected).await?;
    tracing::info!(resource = %key, cascaded = deleted.len().saturating_sub(1), "resource deleted");
    Ok(respond(StatusCode::OK, &json!({}), &headers, None))
}

/// Whether a write must read what the key holds first: a Mesh (its CA change
/// is checked), a policy on global (a zone's policies are read-only there) and
/// anything on a federated zone (global's copies are read-only there). Other
/// writes do not read, so they commit even while the store cannot be read.
fn needs_current(mode: &Mode, ty: ResourceType) -> bool {
    ty == ResourceType::Mesh
        || match mode {
            Mode::Global => ty.is_policy(),
            Mode::Zone { federated, .. } => *federated,
        }
}

/// Who may change a resource, by its `kuma.io/origin` (Kuma 2.14): on global,
/// what a zone created is read-only and `origin: zone` cannot be written; on a
/// federated zone, a policy is this zone's own only when labelled
/// `kuma.io/origin: zone`, and whatever came from global (its own resources
/// and the other zones' it fans out) is read-only. `stored` is what
/// the key holds now, `new` what a PUT writes (`None` for a DELETE).
fn check_origin(
    mode: &Mode,
    ty: ResourceType,
    stored: Option<&Resource>,
    new: Option<&Resource>,
) -> Result<(), ApiError> {
    let origin = |r: &Resource| r.meta.labels.get(tags::ORIGIN).cloned();
    match mode {
        Mode::Global => {
            // A zone's MeshTrust stays deletable here: that revokes its trust domain.
            if let Some(s) = stored
                && ty.is_policy()
                && origin(s).as_deref() == Some("zone")
            {
                let zone = s.meta.labels.get(tags::ZONE).cloned().unwrap_or_default();
                return Err(ApiError::method_not_allowed(format!(
                    "this {ty} was created in zone {zone:?} (kuma.io/origin: zone): change it \
                     there; global shows it read-only"
                )));
            }
            if let Some(n) = new
                && origin(n).as_deref() == Some("zone")
            {
                return Err(ApiError::invalid_field(
                    "labels[\"kuma.io/origin\"]",
                    "must be unset or \"global\" on the global control plane: \"zone\" marks \
                     what a zone created",
                ));
            }
        }
        Mode::Zone {
            federated: true, ..
        } => {
            if let Some(s) = stored
                && origin(s).as_deref() == Some("global")
            {
                return Err(ApiError::method_not_allowed(format!(
                    "this {ty} comes from the global control plane: change it there"
                )));
            }
            if let Some(n) = new
                && ty.is_policy()
                && origin(n).as_deref() != Some("zone")
            {
                return Err(ApiError::method_not_allowed(format!(
                    "this zone is federated: apply {ty} resources on the global control plane, \
                     or label this one kuma.io/origin: zone to make it this zone's own (it is \
                     then reported to global, read-only there)"
                )));
            }
        }
        Mode::Zone { .. } => {}
    }
    Ok(())
}

/// JSON, or YAML when the client asks for it; `ETag` when a version is known.
pub(crate) fn respond(
    status: StatusCode,
    body: &Value,
    headers: &HeaderMap,
    version: Option<u64>,
) -> Response {
    let wants_yaml = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("yaml"));
    let sorted = resource::canonical::sorted(body);
    let mut resp = if wants_yaml {
        let text = serde_yaml_ng::to_string(&sorted).unwrap_or_default();
        let mut r = (status, text).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/yaml"),
        );
        r
    } else {
        (status, axum::Json(sorted)).into_response()
    };
    if let Some(v) = version.and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok()) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    resp
}
