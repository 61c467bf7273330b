//! Components that keep derived resources current: one pass when the store has
//! been read, and one after every change of the types they follow (never on a
//! timer). The available services of the zone's ingresses and the generated
//! MeshServices are such components.

use std::future::Future;
use std::sync::Arc;
use weft_model::resource::ResourceType;
use weft_runtime::health::Reporter;
use weft_store::reflector::{Event, Reflector};
use weft_store::{ResourceStore, StoreError};

/// Runs `pass` after the initial read of `types` and after every change, until
/// dropped. Ready after a pass that worked; degraded (`failing` says what) after
/// one that did not, retried on the next change; down while the store cannot be
/// read.
pub async fn reconcile_on_changes<F, Fut>(
    store: Arc<dyn ResourceStore>,
    types: Vec<ResourceType>,
    failing: &str,
    reporter: Reporter,
    mut pass: F,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, StoreError>>,
{
    let names: Vec<&str> = types.iter().map(|t| t.name()).collect();
    let names = names.join(", ");
    let mut reflector = Reflector::new(store, types);
    loop {
        match reflector.next().await {
            Event::Init { .. } | Event::Changes(_) => match pass().await {
                Ok(_) => reporter.ready(),
                Err(e) => {
                    tracing::warn!(error = %e, "{failing}; retrying on the next change");
                    reporter.degraded(format!("{failing}: {e}"));
                }
            },
            Event::Broken { error, retry_in } => reporter.down(format!(
                "cannot read {names}: {error}; retrying in {retry_in:?}"
            )),
        }
    }
}
