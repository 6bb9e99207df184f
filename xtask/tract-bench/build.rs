//! Record the resolved tract-onnx version (from Cargo.lock) for the report.
fn main() {
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut version = "unknown".to_string();
    let mut in_tract = false;
    for line in lock.lines() {
        if line == "name = \"tract-onnx\"" {
            in_tract = true;
        } else if in_tract && let Some(v) = line.strip_prefix("version = \"") {
            version = v.trim_end_matches('"').to_string();
            break;
        }
    }
    println!("cargo:rustc-env=TRACT_VERSION={version}");
    println!("cargo:rerun-if-changed=Cargo.lock");
}
