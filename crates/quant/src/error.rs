//! Errors of quantization.

use lithe_ir::IrError;

/// What can go wrong while quantizing a model or calibrating it.
#[derive(Debug, thiserror::Error)]
pub enum QuantError {
    /// The graph is invalid or a tensor does not fit the op that uses it.
    #[error(transparent)]
    Graph(#[from] IrError),
    /// A quantization setting is out of range (the field is named).
    #[error("invalid quantization setting '{field}': {reason}")]
    Setting {
        /// The setting.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// Calibration data could not be read or does not fit the model (the file is named).
    #[error("calibration data '{path}': {reason}")]
    CalibData {
        /// The file or folder.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Two models compared with each other do not fit together (different inputs, outputs).
    #[error("the models do not fit together: {0}")]
    Models(String),
    /// Running the model on calibration or evaluation data failed.
    #[error("running the model: {0}")]
    Run(String),
    /// Quantization-aware training failed (the node or value is named).
    #[error("training: {0}")]
    Train(#[from] lithe_train::TrainError),
    /// An optimizer pass failed on the model.
    #[error("optimizing: {0}")]
    Pass(#[from] lithe_passes::PassError),
}
