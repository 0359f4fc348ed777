//! Local post-processing steps. Each is a pure function on decoded pixels; the callers read,
//! write and record files.

pub mod bg_remove;
pub mod color;
pub mod resize;
pub mod upscale;
