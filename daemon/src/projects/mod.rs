//! Projects on disk and their rules: the pure rules (`rules`), the folder layout (`layout`),
//! creating and purging a root (`root`), and importing files into one (`import`).

pub mod import;
pub mod layout;
pub mod root;
pub mod rules;
