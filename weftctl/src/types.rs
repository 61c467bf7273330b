//! The resource types, read at run time from the server's `GET /_resources`
//! (Kuma 2.14's ResourceTypeDescriptionList), so weftctl hardcodes none of them.
//! A type is named as Kuma's tools name it: its path (`meshtimeouts`), its
//! singular (`meshtimeout`, the type name in lower case), its short name (`mt`),
//! dashes ignored (`zone-ingresses`).

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum TypesError {
    #[error("the control plane's GET /_resources is not a resource type list: {0}")]
    Decode(#[source] serde_json::Error),
    #[error("unknown resource type {given:?}: the control plane serves {known}")]
    Unknown { given: String, known: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeDesc {
    /// The type name, e.g. `MeshTimeout`.
    pub name: String,
    /// The URL path segment (plural), e.g. `meshtimeouts`.
    pub path: String,
    /// `Mesh` or `Global`.
    pub scope: String,
    #[serde(default)]
    pub singular_display_name: String,
    #[serde(default)]
    pub plural_display_name: String,
    #[serde(default)]
    pub short_name: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(default)]
    pub policy: Option<Value>,
}

impl TypeDesc {
    pub fn mesh_scoped(&self) -> bool {
        self.scope.eq_ignore_ascii_case("mesh")
    }

    pub fn is_policy(&self) -> bool {
        self.policy.is_some()
    }

    /// The singular as typed on the command line: `meshtimeout`.
    pub fn singular(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    /// The path of one resource.
    pub fn item_path(&self, mesh: &str, name: &str) -> String {
        use crate::client::encode_segment as e;
        if self.mesh_scoped() && self.name != "Mesh" {
            format!("/meshes/{}/{}/{}", e(mesh), self.path, e(name))
        } else {
            format!("/{}/{}", self.path, e(name))
        }
    }

    /// The path of the list in `mesh` (or of all, outside meshes).
    pub fn list_path(&self, mesh: &str) -> String {
        if self.mesh_scoped() && self.name != "Mesh" {
            format!(
                "/meshes/{}/{}",
                crate::client::encode_segment(mesh),
                self.path
            )
        } else {
            format!("/{}", self.path)
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Types {
    pub resources: Vec<TypeDesc>,
}

fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-' && *c != '_' && *c != ' ')
        .flat_map(char::to_lowercase)
        .collect()
}

impl Types {
    pub fn from_value(v: Value) -> Result<Self, TypesError> {
        serde_json::from_value(v).map_err(TypesError::Decode)
    }

    /// The type `given` names, whether `given` was a plural (true) or not.
    pub fn find(&self, given: &str) -> Result<(&TypeDesc, bool), TypesError> {
        let g = fold(given);
        for t in &self.resources {
            if fold(&t.path) == g || fold(&t.plural_display_name) == g {
                return Ok((t, true));
            }
        }
        for t in &self.resources {
            if fold(&t.name) == g || (!t.short_name.is_empty() && t.short_name == given) {
                return Ok((t, false));
            }
        }
        Err(TypesError::Unknown {
            given: given.into(),
            known: self
                .resources
                .iter()
                .map(|t| t.path.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// The type named `name` exactly (`MeshTimeout`), as a document's `type:`.
    pub fn by_name(&self, name: &str) -> Option<&TypeDesc> {
        self.resources.iter().find(|t| t.name == name)
    }
}

#[cfg(test)]
pub(crate) fn sample() -> Types {
    let v = serde_json::json!({"resources": [
        {"name": "Mesh", "path": "meshes", "scope": "Global", "singularDisplayName": "Mesh",
         "pluralDisplayName": "Meshes", "shortName": "m", "readOnly": false},
        {"name": "Dataplane", "path": "dataplanes", "scope": "Mesh", "singularDisplayName": "Dataplane",
         "pluralDisplayName": "Dataplanes", "shortName": "dp", "readOnly": true},
        {"name": "ZoneIngress", "path": "zoneingresses", "scope": "Global", "singularDisplayName": "Zone Ingress",
         "pluralDisplayName": "Zone Ingresses", "shortName": "zi"},
        {"name": "Zone", "path": "zones", "scope": "Global", "singularDisplayName": "Zone",
         "pluralDisplayName": "Zones", "shortName": "z"},
        {"name": "GlobalSecret", "path": "global-secrets", "scope": "Global", "singularDisplayName": "Global Secret",
         "pluralDisplayName": "Global Secrets", "shortName": ""},
        {"name": "MeshTimeout", "path": "meshtimeouts", "scope": "Mesh", "singularDisplayName": "Mesh Timeout",
         "pluralDisplayName": "Mesh Timeouts", "shortName": "mt",
         "policy": {"isTargetRef": true, "hasToTargetRef": true}},
        {"name": "MeshRetry", "path": "meshretries", "scope": "Mesh", "singularDisplayName": "Mesh Retry",
         "pluralDisplayName": "Mesh Retries", "shortName": "mr", "policy": {"isTargetRef": true}},
    ]});
    Types::from_value(v).unwrap_or_else(|e| panic!("{e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Plural paths, singulars, short names and dashed spellings all resolve.
    #[test]
    fn names_resolve() {
        let t = sample();
        let name = |g: &str| {
            t.find(g)
                .map(|(d, plural)| (d.name.clone(), plural))
                .unwrap()
        };
        assert_eq!(name("meshtimeouts"), ("MeshTimeout".into(), true));
        assert_eq!(name("meshtimeout"), ("MeshTimeout".into(), false));
        assert_eq!(name("MeshTimeout"), ("MeshTimeout".into(), false));
        assert_eq!(name("mt"), ("MeshTimeout".into(), false));
        assert_eq!(name("meshes"), ("Mesh".into(), true));
        assert_eq!(name("mesh"), ("Mesh".into(), false));
        assert_eq!(name("zone-ingresses"), ("ZoneIngress".into(), true));
        assert_eq!(name("zone-ingress"), ("ZoneIngress".into(), false));
        assert_eq!(name("global-secrets"), ("GlobalSecret".into(), true));
        assert_eq!(name("meshretries"), ("MeshRetry".into(), true));
        let err = t.find("meshtimeoutz").unwrap_err().to_string();
        assert!(
            err.contains("meshtimeoutz") && err.contains("meshretries"),
            "{err}"
        );
    }

    // Paths follow the scope: mesh-scoped types under /meshes/{mesh}, the rest
    // (and Mesh itself) at the root; names are escaped.
    #[test]
    fn paths() {
        let t = sample();
        let (mt, _) = t.find("mt").unwrap();
        assert_eq!(
            mt.item_path("default", "a b"),
            "/meshes/default/meshtimeouts/a%20b"
        );
        assert_eq!(mt.list_path("m1"), "/meshes/m1/meshtimeouts");
        let (mesh, _) = t.find("mesh").unwrap();
        assert_eq!(mesh.item_path("ignored", "default"), "/meshes/default");
        assert_eq!(mesh.list_path("ignored"), "/meshes");
        let (z, _) = t.find("zones").unwrap();
        assert_eq!(z.item_path("default", "east"), "/zones/east");
    }
}
