//! Write `.nb` files to seed the fuzz corpus: the every-op test graph and the small golden
//! models. Usage: `cargo run -p lithe-nbformat --example fuzz_seeds -- OUT_DIR`.

#[path = "../tests/common/mod.rs"]
mod common;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::args().nth(1).ok_or("usage: fuzz_seeds OUT_DIR")?);
    std::fs::create_dir_all(&out)?;
    let mut graphs = vec![("all_ops".to_string(), common::all_ops_graph())];
    for (name, path) in common::golden_models() {
        // Small models only: large seeds slow every execution down.
        if std::fs::metadata(&path)?.len() <= 64 * 1024 {
            graphs.push((name, common::load_golden(&path)));
        }
    }
    for (name, g) in &graphs {
        let bytes = lithe_nbformat::write(g, &common::meta())?;
        std::fs::write(out.join(format!("{name}.nb")), &bytes)?;
        println!("{name}: {} bytes", bytes.len());
    }
    Ok(())
}
