//! End-to-end tests: the real kromad and kromactl binaries on temporary data dirs and sockets.
//! One test binary with a module per feature (see ARCHITECTURE.md, "Tests").

mod approvals;
mod assets;
mod bootstrap;
mod broken_connections;
mod cli;
mod concurrency;
mod confirm_page;
mod doctor;
mod events;
mod exports;
mod framing;
mod hostile;
mod instructions;
mod knowledge;
mod lifecycle;
mod local_models;
mod mcp;
mod notifications;
mod other_uid;
mod postprocess;
mod projects;
mod providers;
mod python;
mod readme;
mod review;
mod rpc_bench;
mod runs;
mod secret_arguments;
mod secrets;
mod service;
mod socket_access;
mod storage;
mod tidy;
mod watch;
