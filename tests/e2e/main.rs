//! End-to-end tests: the real kromad and kromactl binaries on temporary data dirs and sockets.
//! One test binary with a module per feature (see ARCHITECTURE.md, "Tests").

mod assets;
mod bootstrap;
mod cli;
mod concurrency;
mod doctor;
mod events;
mod framing;
mod knowledge;
mod lifecycle;
mod local_models;
mod other_uid;
mod postprocess;
mod projects;
mod providers;
mod python;
mod readme;
mod runs;
mod secrets;
mod tidy;
