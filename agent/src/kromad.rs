//! The connection to kromad, made on first use and made again when the daemon went away (it was
//! restarted, or started after the agent host launched `kroma-mcp`). Every call goes through the
//! `kroma-client` library; errors keep the daemon's message and hint for the agent to show.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use kroma_client::{Client, ClientError};
use kroma_protocol as protocol;
use tokio::sync::Mutex;

/// kromad at one socket.
pub struct Kromad {
    socket: PathBuf,
    client: Mutex<Option<Arc<Client>>>,
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

impl Kromad {
    /// Nothing is connected until the first call.
    pub fn new(socket: &Path) -> Kromad {
        Kromad {
            socket: socket.to_owned(),
            client: Mutex::new(None),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Calls method `M`, connecting first when there is no open connection.
    pub async fn call<M: protocol::Method>(
        &self,
        params: &M::Params,
    ) -> Result<M::Output, KromadError> {
        let client = self.connected().await?;
        client
            .call::<M>(params)
            .await
            .map_err(|error| KromadError { error })
    }

    async fn connected(&self) -> Result<Arc<Client>, KromadError> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref()
            && client.is_connected()
        {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new(
            Client::connect(&self.socket)
                .await
                .map_err(|error| KromadError { error })?,
        );
        tracing::debug!(socket = %self.socket.display(), "connected to kromad");
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }
}
