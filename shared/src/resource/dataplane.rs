//! PLACEHOLDER — to be replaced with the full typed spec and its validation.

use super::validate::{Path, Validate, ValidationErrors};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DataplaneSpec {}

impl Validate for DataplaneSpec {
    fn validate(&self, _path: &Path, _errs: &mut ValidationErrors) {}
}
