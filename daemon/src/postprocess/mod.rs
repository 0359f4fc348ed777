//! Local post-processing steps. Each is a pure function on decoded pixels; the callers read,
//! write and record files.

pub mod bg_remove;
pub(crate) mod budget;
pub(crate) mod chain;
pub mod color;
pub(crate) mod local_models;
pub(crate) mod onnx;
pub mod resize;
pub mod upscale;
