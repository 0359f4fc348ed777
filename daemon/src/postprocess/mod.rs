//! Local post-processing steps. Each is a pure function on decoded pixels; the callers read,
//! write and record files.

pub mod color;
