//! Which proxies may connect: dataplane tokens checked at `POST /bootstrap` and on
//! the xDS stream.
//!
//! INTERFACE STUB (session 2 plan, see /work/xds-plan.md): owned by the
//! dataplane-token work; the xDS server and the bootstrap endpoint call exactly
//! this signature.

use weft_shared::resource::Resource;

/// Why a proxy was refused; the message is shown to the proxy's operator, so it
/// says what to do.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    #[error("no dataplane token: pass one with --dataplane-token-file")]
    MissingToken,
    #[error("dataplane token refused: {0}")]
    Refused(String),
}

/// Checks dataplane tokens against the Dataplane a proxy presents.
#[derive(Debug, Clone, Default)]
pub struct Admission {}

impl Admission {
    /// Admits `dataplane` presenting `token` (the raw JWT, without `Bearer `), or
    /// says why not.
    pub fn admit(&self, token: Option<&str>, dataplane: &Resource) -> Result<(), AdmissionError> {
        let _ = dataplane;
        match token {
            None => Err(AdmissionError::MissingToken),
            Some(_) => Err(AdmissionError::Refused(
                "token checks are not built yet".into(),
            )),
        }
    }
}
