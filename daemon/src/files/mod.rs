//! Files in general, below every feature: what an image file is (`images`), what an audio file
//! is (`audio`), PNG provenance and encoding (`png`), and the one place files are written
//! (`write`).

pub mod audio;
pub mod images;
pub mod png;
pub mod write;
