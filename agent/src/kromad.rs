//! The connections to kromad, made on first use and made again when the daemon went away (it was
//! restarted, or started after the agent host launched `kroma-mcp`). Every call goes through the
//! `kroma-client` library; errors keep the daemon's message and hint for the agent to show.
//!
//! Every connection is an agent's: the first thing said on it is `agent.hello` with the MCP
//! client's declared name, so kromad lets it call only the methods open to agents and writes
//! that name in the audit log. There is one connection per declared name (an MCP session has
//! one; stateless 2026-07-28 requests name their client on every request), at most
//! [`MAX_CONNECTIONS`], the least recently used dropped first.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kroma_client::{Client, ClientError};
use kroma_protocol as protocol;
use tokio::sync::Mutex;

/// The most client names with an open connection at once.
pub const MAX_CONNECTIONS: usize = 16;

/// The name used when an MCP client declared none.
pub const UNKNOWN_CLIENT: &str = "unknown";

/// kromad at one socket.
pub struct Kromad {
    socket: PathBuf,
    connections: Mutex<Connections>,
}

/// Open connections by declared client name, with when each was last used.
#[derive(Default)]
struct Connections {
    by_name: HashMap<String, (Arc<Client>, u64)>,
    uses: u64,
}

/// A failed call, with what the human can do about it.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct KromadError {
    #[source]
    error: ClientError,
}

impl KromadError {
    /// The daemon's message and, when it gave one, its hint: the text of an MCP tool error.
    pub fn for_agent(&self) -> String {
        match self.error.hint() {
            Some(hint) => format!("{}\nhint: {hint}", self.error),
            None => self.error.to_string(),
        }
    }

    /// Whether the daemon said the thing asked for does not exist.
    pub fn is_not_found(&self) -> bool {
        self.error.kind() == Some(protocol::ErrorKind::NotFound)
    }
}

/// The name an MCP client declared, as kromad may store it: control characters dropped, at most
/// [`protocol::instruction::MAX_CLIENT_NAME_CHARS`] characters, [`UNKNOWN_CLIENT`] when blank.
pub fn client_name(declared: Option<&str>) -> String {
    let name: String = declared
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(protocol::instruction::MAX_CLIENT_NAME_CHARS)
        .collect();
    let name = name.trim();
    if name.is_empty() {
        UNKNOWN_CLIENT.to_owned()
    } else {
        name.to_owned()
    }
}

impl Kromad {
    /// Nothing is connected until the first call.
    pub fn new(socket: &Path) -> Kromad {
        Kromad {
            socket: socket.to_owned(),
            connections: Mutex::new(Connections::default()),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Calls method `M` for the client named `client_name` (see [`client_name`]), connecting
    /// and saying `agent.hello` first when that client has no open connection.
    pub async fn call<M: protocol::Method>(
        &self,
        client_name: &str,
        params: &M::Params,
    ) -> Result<M::Output, KromadError> {
        let client = self.connected(client_name).await?;
        client
            .call::<M>(params)
            .await
            .map_err(|error| KromadError { error })
    }

    async fn connected(&self, client_name: &str) -> Result<Arc<Client>, KromadError> {
        let mut connections = self.connections.lock().await;
        connections.uses += 1;
        let now = connections.uses;
        if let Some((client, last_use)) = connections.by_name.get_mut(client_name)
            && client.is_connected()
        {
            *last_use = now;
            return Ok(Arc::clone(client));
        }
        let client = Client::connect(&self.socket)
            .await
            .map_err(|error| KromadError { error })?;
        client
            .call::<protocol::instruction::Hello>(&protocol::instruction::HelloParams {
                client_name: client_name.to_owned(),
            })
            .await
            .map_err(|error| KromadError { error })?;
        tracing::debug!(socket = %self.socket.display(), client_name, "connected to kromad as an agent");
        let client = Arc::new(client);
        if connections.by_name.len() >= MAX_CONNECTIONS
            && !connections.by_name.contains_key(client_name)
            && let Some(oldest) = connections
                .by_name
                .iter()
                .min_by_key(|(_, (_, last_use))| *last_use)
                .map(|(name, _)| name.clone())
        {
            connections.by_name.remove(&oldest);
        }
        connections
            .by_name
            .insert(client_name.to_owned(), (Arc::clone(&client), now));
        Ok(client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_names_are_cleaned_and_bounded() {
        for (declared, expected) in [
            (None, "unknown"),
            (Some(""), "unknown"),
            (Some("  \n "), "unknown"),
            (Some("Claude Desktop"), "Claude Desktop"),
            (Some("evil\u{1b}[2J\nname"), "evil[2Jname"),
        ] {
            assert_eq!(client_name(declared), expected, "{declared:?}");
        }
        let long = "x".repeat(500);
        assert_eq!(
            client_name(Some(&long)).chars().count(),
            protocol::instruction::MAX_CLIENT_NAME_CHARS
        );
    }
}
