//! `kroma-mcp`, the MCP server of Kroma: agent hosts (desktop assistants, coding agents) read
//! projects, plan runs, look at candidates and propose work through it, and it reaches kromad
//! only through the `kroma-client` library, on connections that said `agent.hello` first, so the
//! daemon's own checks apply to everything an agent does and no person's method is open to it.
//!
//! [`server::KromaServer`] is the MCP service: tools ([`tools`] read and plan, [`instructions`]
//! propose and follow work, answering with a [`report`], [`chat`] keeps a conversation and the
//! voice recordings in it), resources ([`resources`]) and prompts
//! ([`prompts`]). [`rounds`] seals the state of a 2026-07-28 input round; [`rate`] limits how
//! often a client proposes work; [`refusals`] puts what kroma-mcp refuses in kromad's audit log;
//! [`tasks`] follows proposed work as an MCP task for clients that
//! declare the tasks extension; [`elicitation`] tells a 2025-11-25 host when the confirmation
//! page it opened is done with. [`selection`] decides which tools a server offers (`--read-only`,
//! `--tools`); [`kromad`] holds the lazy connection to the daemon; [`thumbnail`] makes the
//! bounded PNG a candidate is shown as. `main.rs` reads the command line and serves stdio, or
//! streamable HTTP through [`http`] behind the bearer token of [`token`].
//!
//! Text that comes from kromad (project notes, names, prompts, chat messages) is returned as data, in structured
//! content and JSON resources, never spliced into instructions the agent would follow.

pub mod chat;
pub mod elicitation;
pub mod http;
pub mod instructions;
pub mod kromad;
pub mod prompts;
pub mod rate;
pub mod refusals;
pub mod report;
pub mod resources;
pub mod rounds;
pub mod selection;
pub mod server;
pub mod tasks;
pub mod thumbnail;
pub mod token;
pub mod tools;

pub use server::KromaServer;
