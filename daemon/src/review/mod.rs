//! Reviewing a run's results: the QA guard and ranking, drift against an approved baseline, and
//! contact sheets. Pure functions over pixels and numbers; the shells are in `api/` and `runs/`.

pub mod drift;
pub mod qa;
pub mod sheet;
