//! lithe-onnx
