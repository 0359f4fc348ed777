//! The local socket: binding it safely. A Unix domain socket (mode 0600 in a 0700 folder) on Unix,
//! a named pipe on Windows.

use std::io;
use std::path::{Path, PathBuf};

use interprocess::local_socket::ListenerOptions;
use interprocess::local_socket::tokio::Listener as TokioListener;

/// A bound socket, ready to accept. The socket file is removed when it is dropped, unless a
/// service manager made it ([`adopt`]).
pub struct Listener {
    pub(crate) inner: TokioListener,
    pub(crate) path: PathBuf,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("path", &self.path)
            .finish()
    }
}

impl Listener {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("another kromad is already serving {0}")]
    InUse(PathBuf),
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    #[error(
        "socket folder {0} is a symlink, belongs to another user, or others may write to it (without the sticky bit); refusing to use it (chmod 700 it, or pick another --socket)"
    )]
    UnsafeFolder(PathBuf),
    #[error("the socket passed by the service manager cannot be served: {0}")]
    Inherited(String),
    #[error("binding {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

/// Binds the socket at `path`. A socket file left by a daemon that died is replaced; a live one is
/// left alone and reported as [`BindError::InUse`]. Must be called inside a Tokio runtime.
pub fn bind(path: &Path) -> Result<Listener, BindError> {
    let io_error = |source| BindError::Io {
        path: path.to_owned(),
        source,
    };
    prepare(path)?;
    let options = ListenerOptions::new()
        .name(name(path).map_err(io_error)?)
        .reclaim_name(true);
    #[cfg(unix)]
    let options = {
        use interprocess::os::unix::local_socket::ListenerOptionsExt;
        options.mode(0o600)
    };
    let inner = options.create_tokio().map_err(io_error)?;
    Ok(Listener {
        inner,
        path: path.to_owned(),
    })
}

/// A listening socket a service manager handed over (systemd socket activation: `LISTEN_FDS`,
/// `LISTEN_PID`), as a plain listener. Reads and clears those variables, so children do not
/// inherit them: call it before any thread starts. `None` when nothing was passed.
#[cfg(unix)]
pub fn take_inherited() -> Result<Option<std::os::unix::net::UnixListener>, BindError> {
    let mut passed = listenfd::ListenFd::from_env();
    match passed.len() {
        0 => Ok(None),
        1 => passed.take_unix_listener(0).map_err(|err| {
            BindError::Inherited(format!(
                "{err}; kromad serves one Unix stream socket (ListenStream= a path)"
            ))
        }),
        n => Err(BindError::Inherited(format!(
            "{n} sockets were passed; kromad serves exactly one (ListenStream= a path)"
        ))),
    }
}

/// Serves an inherited socket. Its path is where it is bound; the socket file belongs to the
/// service manager and stays when kromad stops, so the next connection can start kromad again.
/// Must be called inside a Tokio runtime.
#[cfg(unix)]
pub fn adopt(listener: std::os::unix::net::UnixListener) -> Result<Listener, BindError> {
    let inherited = |err: io::Error| BindError::Inherited(err.to_string());
    let path = listener
        .local_addr()
        .map_err(inherited)?
        .as_pathname()
        .map(ToOwned::to_owned)
        .ok_or_else(|| {
            BindError::Inherited(
                "the socket has no path (abstract or unnamed); use ListenStream= a path".to_owned(),
            )
        })?;
    listener.set_nonblocking(true).map_err(inherited)?;
    let fd = std::os::fd::OwnedFd::from(listener);
    let inner = interprocess::os::unix::uds_local_socket::tokio::Listener::try_from(fd)
        .map_err(inherited)?;
    Ok(Listener {
        inner: TokioListener::from(inner),
        path,
    })
}

/// The interprocess name of a socket path.
pub fn name(path: &Path) -> io::Result<interprocess::local_socket::Name<'_>> {
    #[cfg(unix)]
    {
        use interprocess::local_socket::{GenericFilePath, ToFsName};
        path.to_fs_name::<GenericFilePath>()
    }
    #[cfg(windows)]
    {
        // Named pipes live in their own namespace: `C:\...\kromad.sock` becomes the pipe
        // `\\.\pipe\kromad.sock`.
        use interprocess::local_socket::{GenericNamespaced, ToNsName};
        let file_name = path.file_name().unwrap_or(path.as_os_str());
        file_name.to_ns_name::<GenericNamespaced>()
    }
}

#[cfg(unix)]
fn prepare(path: &Path) -> Result<(), BindError> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt};

    let io_error = |source| BindError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(folder) = path.parent()
        && !folder.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(folder)
            .map_err(io_error)?;
    }
    // Another user could have made the folder first (e.g. /tmp/kroma-<uid>) and planted a socket
    // in it, or could replace our socket in a folder anyone may write to.
    if let Some(folder) = path.parent() {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::symlink_metadata(folder).map_err(io_error)?;
        let safe = !meta.file_type().is_symlink()
            && folder_is_safe(meta.uid(), meta.mode(), nix::unistd::geteuid().as_raw());
        if !safe {
            return Err(BindError::UnsafeFolder(folder.to_owned()));
        }
    }
    match std::fs::symlink_metadata(path) {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(io_error(err)),
        Ok(meta) if !meta.file_type().is_socket() => Err(BindError::NotASocket(path.to_owned())),
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => Err(BindError::InUse(path.to_owned())),
            Err(_) => {
                tracing::info!(socket = %path.display(), "replacing a stale socket left by a daemon that died");
                std::fs::remove_file(path).map_err(io_error)
            }
        },
    }
}

/// Whether a socket folder with this owner and mode keeps other users away from the socket: our
/// own folder that no one else may write to, or a sticky one (like `/tmp`) owned by us or root,
/// where others cannot remove or replace what we put there.
pub fn folder_is_safe(owner: u32, mode: u32, own_uid: u32) -> bool {
    let owner_ok = owner == own_uid || owner == 0;
    let sticky = mode & 0o1000 != 0;
    let writable_by_others = mode & 0o022 != 0;
    owner_ok && (sticky || (owner == own_uid && !writable_by_others))
}

#[cfg(test)]
mod tests {
    use super::folder_is_safe;

    #[test]
    fn only_private_or_sticky_folders_hold_the_socket() {
        let me = 1000;
        assert!(folder_is_safe(me, 0o700, me));
        assert!(folder_is_safe(me, 0o755, me));
        assert!(folder_is_safe(0, 0o1777, me), "/tmp");
        assert!(folder_is_safe(me, 0o1777, me));
        assert!(
            !folder_is_safe(me, 0o777, me),
            "anyone can replace the socket"
        );
        assert!(
            !folder_is_safe(me, 0o770, me),
            "the group can replace the socket"
        );
        assert!(!folder_is_safe(0, 0o777, me));
        assert!(
            !folder_is_safe(0, 0o755, me),
            "root's own folder is not ours"
        );
        assert!(
            !folder_is_safe(1001, 0o1777, me),
            "its owner can remove anything in it"
        );
        assert!(!folder_is_safe(1001, 0o700, me));
    }
}

#[cfg(windows)]
fn prepare(_path: &Path) -> Result<(), BindError> {
    // Named pipes vanish with their last handle: nothing can be stale.
    Ok(())
}
