//! The checked-in generated code must be exactly what the protos produce today.

#[path = "../codegen/generate.rs"]
mod generate;

#[test]
fn checked_in_code_matches_protos() {
    // Regenerating from proto/ yields the checked-in file byte for byte.
    let tmp = tempfile::tempdir().expect("temp dir");
    let fresh = generate::generate(tmp.path()).expect("code generation");
    let fresh = std::fs::read(fresh).expect("read regenerated code");
    let target = generate::checked_in();
    let checked_in = std::fs::read(&target).unwrap_or_default();
    assert!(
        fresh == checked_in,
        "{} is out of date with proto/ (or missing). Regenerate it with `{}` and commit the result.",
        target.display(),
        generate::REGEN_COMMAND,
    );
}
