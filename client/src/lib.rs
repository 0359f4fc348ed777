//! A typed Rust client for kromad, used by `kromactl` and the MCP agent.
//!
//! [`Client`] makes typed calls and subscriptions over the local socket; [`discovery`] finds that
//! socket the way kromactl does; [`follow::EventFollower`] follows the event log without gaps;
//! [`progress::RunProgress`] folds a run's events into what a watcher shows.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kroma_client::ClientError> {
//! use kroma_protocol as protocol;
//! let socket = kroma_client::discovery::discover_socket(None);
//! let client = kroma_client::Client::connect(&socket).await?;
//! let version = client.call::<protocol::daemon::Version>(&protocol::NoParams {}).await?;
//! println!("kromad {}", version.version);
//! # Ok(()) }
//! ```

pub mod discovery;
mod error;
pub mod follow;
pub mod progress;
mod transport;

use std::path::{Path, PathBuf};
use std::time::Duration;

use jsonrpsee::core::client::{ClientT, SubscriptionClientT};
use kroma_protocol as protocol;
use protocol::{Method, Subscription};
use serde_json::value::RawValue;

pub use error::{ClientError, SocketProblem};

/// Long calls (a project purge on a slow disk) may take this long before the client gives up.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How long a client made for unbounded methods ([`protocol::Method::UNBOUNDED`]: local steps
/// over folders) waits: in effect, until the daemon answers or the connection ends.
pub const UNBOUNDED_REQUEST_TIMEOUT: Duration = Duration::from_secs(30 * 24 * 3600);

/// A connection to kromad over its local socket.
pub struct Client {
    inner: jsonrpsee::core::client::Client,
    socket: PathBuf,
}

impl Client {
    /// Connects to the daemon at `socket`. A missing socket or a refused connection is
    /// [`ClientError::NotRunning`]; a socket that is another user's, or that the file system
    /// keeps this user from, is [`ClientError::SocketNotYours`].
    pub async fn connect(socket: &Path) -> Result<Client, ClientError> {
        Client::connect_with_timeout(socket, DEFAULT_REQUEST_TIMEOUT).await
    }

    /// Connects for unbounded methods: calls wait until the daemon answers.
    pub async fn connect_unbounded(socket: &Path) -> Result<Client, ClientError> {
        Client::connect_with_timeout(socket, UNBOUNDED_REQUEST_TIMEOUT).await
    }

    pub async fn connect_with_timeout(
        socket: &Path,
        request_timeout: Duration,
    ) -> Result<Client, ClientError> {
        let (sender, receiver) = transport::connect(socket).await.map_err(|err| match err {
            transport::ConnectError::NotRunning(source) => ClientError::NotRunning {
                socket: socket.to_owned(),
                source,
            },
            transport::ConnectError::NotYours(problem) => ClientError::SocketNotYours {
                socket: socket.to_owned(),
                problem,
            },
        })?;
        let inner = jsonrpsee::core::client::ClientBuilder::default()
            .request_timeout(request_timeout)
            .max_buffer_capacity_per_subscription(4096)
            .build_with_tokio(sender, receiver);
        Ok(Client {
            inner,
            socket: socket.to_owned(),
        })
    }

    /// Whether the connection to the daemon is still open.
    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Calls method `M` with typed params and decodes its typed result.
    pub async fn call<M: Method>(&self, params: &M::Params) -> Result<M::Output, ClientError> {
        let params = serde_json::value::to_raw_value(params).map_err(ClientError::Encode)?;
        self.inner
            .request(M::NAME, NamedParams(params))
            .await
            .map_err(|err| ClientError::from_jsonrpsee(err, &self.socket, M::NAME))
    }

    /// Calls any method with raw JSON params (`kromactl rpc call`).
    pub async fn call_raw(
        &self,
        method: &str,
        params: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ClientError> {
        let params = match params {
            Some(params) => {
                Some(serde_json::value::to_raw_value(params).map_err(ClientError::Encode)?)
            }
            None => None,
        };
        self.inner
            .request(method, OptionalParams(params))
            .await
            .map_err(|err| ClientError::from_jsonrpsee(err, &self.socket, method))
    }

    /// Starts subscription `S`; items arrive through [`Subscribed::next`].
    pub async fn subscribe<S: Subscription>(
        &self,
        params: &S::Params,
    ) -> Result<Subscribed<S::Item>, ClientError> {
        let params = serde_json::value::to_raw_value(params).map_err(ClientError::Encode)?;
        let inner = self
            .inner
            .subscribe(S::NAME, NamedParams(params), S::UNSUBSCRIBE)
            .await
            .map_err(|err| ClientError::from_jsonrpsee(err, &self.socket, S::NAME))?;
        Ok(Subscribed { inner })
    }
}

/// A running subscription.
pub struct Subscribed<T> {
    inner: jsonrpsee::core::client::Subscription<T>,
}

impl<T: serde::de::DeserializeOwned> Subscribed<T> {
    /// The next item; `None` once the daemon ends the subscription or the connection closes.
    pub async fn next(&mut self) -> Option<Result<T, ClientError>> {
        self.inner
            .next()
            .await
            .map(|item| item.map_err(ClientError::Decode))
    }
}

struct NamedParams(Box<RawValue>);

impl jsonrpsee::core::traits::ToRpcParams for NamedParams {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        Ok(Some(self.0))
    }
}

struct OptionalParams(Option<Box<RawValue>>);

impl jsonrpsee::core::traits::ToRpcParams for OptionalParams {
    fn to_rpc_params(self) -> Result<Option<Box<RawValue>>, serde_json::Error> {
        Ok(self.0)
    }
}
