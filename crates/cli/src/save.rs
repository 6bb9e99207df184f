//! Writing the model `opt` and `quant` produce: a path ending in `.onnx` goes through Lithe's
//! ONNX exporter (`lithe_onnx::save_onnx`: fused convs and FullyConnected expanded, int8 QConv as
//! DequantizeLinear -> Conv -> QuantizeLinear, weight-only int8 as DequantizeLinear of the int8
//! weights), any other path gets one `.nb` file.

use anyhow::{Context, Result};
use lithe_ir::Graph;
use lithe_nbformat::ModelMeta;
use std::path::Path;

/// Whether `path` asks for an ONNX file (extension `.onnx`, any case).
pub fn is_onnx(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
}

/// Write `graph` to `path`: ONNX when [`is_onnx`], else `.nb` with `meta`. Returns the format
/// written (`"ONNX"` or `".nb"`).
pub fn write_model(path: &Path, graph: &Graph, meta: &ModelMeta) -> Result<&'static str> {
    if is_onnx(path) {
        lithe_onnx::save_onnx(path, graph).with_context(|| {
            format!("cannot export '{}' as ONNX (write a .nb file instead to keep this model)", path.display())
        })?;
        Ok("ONNX")
    } else {
        lithe_nbformat::write_file(path, graph, meta).with_context(|| format!("cannot write '{}'", path.display()))?;
        Ok(".nb")
    }
}

#[cfg(test)]
mod tests {
    use super::is_onnx;
    use std::path::Path;

    #[test]
    fn only_onnx_extensions_export() {
        assert!(is_onnx(Path::new("m_int8.onnx")));
        assert!(is_onnx(Path::new("dir/M.ONNX")));
        assert!(!is_onnx(Path::new("m.nb")));
        assert!(!is_onnx(Path::new("onnx")));
        assert!(!is_onnx(Path::new("m.onnx.nb")));
    }
}
