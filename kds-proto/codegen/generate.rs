//! Code generation for `kds-proto`, shared by the `regen` example (which writes the
//! checked-in file) and the drift test (which regenerates into a temporary
//! directory and compares). Not part of the library: it needs `tonic-prost-build`
//! and `protoc-bin-vendored`, which are dev-dependencies only.

use std::error::Error;
use std::path::{Path, PathBuf};

/// The one command that rewrites the checked-in generated code.
#[allow(dead_code)] // used by the drift test, not by the example
pub const REGEN_COMMAND: &str = "cargo run -p kds-proto --example regen";

/// The file prost names after the proto package.
const GENERATED_FILE: &str = "weft.kds.v1.rs";

/// Root of the `kds-proto` crate.
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The checked-in generated code that `src/lib.rs` includes.
pub fn checked_in() -> PathBuf {
    crate_dir()
        .join("src")
        .join("generated")
        .join(GENERATED_FILE)
}

/// Runs the vendored protoc and tonic-prost-build over `proto/weft/kds/v1/kds.proto`,
/// writing into `out_dir`, and returns the path of the generated Rust file.
///
/// Envoy and google.protobuf types are mapped onto `envoy_types` (extern_path), so
/// nothing is generated for them: the stub under `proto/stubs/` only lets protoc
/// resolve the import.
pub fn generate(out_dir: &Path) -> Result<PathBuf, Box<dyn Error>> {
    let proto_dir = crate_dir().join("proto");
    let protos = [proto_dir.join("weft/kds/v1/kds.proto")];
    let includes = [
        proto_dir.clone(),
        proto_dir.join("stubs"),
        protoc_bin_vendored::include_path()?,
    ];

    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    // `impl prost::Name`, so `KdsResource::type_url()` is
    // `type.googleapis.com/weft.kds.v1.KdsResource`, like envoy-types' messages.
    config.enable_type_names();
    config.type_name_domain(["."], "type.googleapis.com");
    // BTreeMap for every map field: encoding iterates in key order, so the same
    // resource always encodes to the same bytes and hashes to the same version.
    config.btree_map(["."]);

    tonic_prost_build::configure()
        .out_dir(out_dir)
        .emit_rerun_if_changed(false)
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        // Stops prost mapping google.protobuf onto `prost_types`; the extern_path
        // below maps it onto envoy-types' own copies instead.
        .compile_well_known_types(true)
        .extern_path(".envoy", "::envoy_types::pb::envoy")
        .extern_path(".google.protobuf", "::envoy_types::pb::google::protobuf")
        .extern_path(".google.rpc", "::envoy_types::pb::google::rpc")
        .extern_path(".xds", "::envoy_types::pb::xds")
        .extern_path(".udpa", "::envoy_types::pb::udpa")
        .compile_with_config(config, &protos, &includes)?;

    let generated = out_dir.join(GENERATED_FILE);
    if !generated.is_file() {
        return Err(format!("code generation did not produce {}", generated.display()).into());
    }
    Ok(generated)
}
