//! Regenerates `src/generated/weft.kds.v1.rs` from `proto/`:
//!
//! ```text
//! cargo run -p kds-proto --example regen
//! ```
//!
//! Uses the protoc binary shipped in the `protoc-bin-vendored` crate, so it needs
//! neither a system protoc nor network access once the crates are fetched. Commit
//! the result; `tests/drift.rs` fails when the checked-in file is stale.

#[path = "../codegen/generate.rs"]
mod generate;

use std::error::Error;

fn main() -> Result<(), Box<dyn Error>> {
    let tmp = tempfile::tempdir()?;
    let fresh = generate::generate(tmp.path())?;
    let target = generate::checked_in();
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::copy(&fresh, &target)?;
    println!("wrote {}", target.display());
    Ok(())
}
