//! Where kromad's socket is, found the way kromactl finds it: the path the caller was given (its
//! `--socket`), else `KROMA_SOCKET`, else the per-user default of
//! [`protocol::paths::default_socket`], the same function kromad uses. A relative path is taken
//! from the current directory.
//!
//! [`SocketSearch`] holds everything the answer depends on, so [`SocketSearch::resolve`] is pure;
//! [`SocketSearch::from_environment`] reads those things from the process once.

use std::path::{Path, PathBuf};

use kroma_protocol as protocol;

/// The environment variable that names the socket (kromactl's `--socket` reads it too).
pub const SOCKET_ENV: &str = "KROMA_SOCKET";

/// The socket of the caller's kromad: `explicit`, else `KROMA_SOCKET`, else the per-user default.
pub fn discover_socket(explicit: Option<&Path>) -> PathBuf {
    SocketSearch::from_environment(explicit).resolve()
}

/// Everything socket discovery looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketSearch {
    /// A path the caller was given, such as kromactl's `--socket`; it wins over everything else.
    pub explicit: Option<PathBuf>,
    /// The value of `KROMA_SOCKET`, when it is set and not empty.
    pub from_env: Option<PathBuf>,
    /// What a relative path is relative to; without it a relative path is used as given.
    pub current_dir: Option<PathBuf>,
    /// The user's runtime folder (`$XDG_RUNTIME_DIR` on Linux), where the default socket lives.
    pub runtime_dir: Option<PathBuf>,
    /// Where the default socket lives when there is no runtime folder.
    pub temp_dir: PathBuf,
    /// Who the default socket in `temp_dir` is named after: the uid on Unix.
    pub user: String,
}

impl SocketSearch {
    /// Reads the environment variable, the current and runtime folders and the user of this
    /// process.
    pub fn from_environment(explicit: Option<&Path>) -> SocketSearch {
        SocketSearch {
            explicit: explicit.map(Path::to_path_buf),
            from_env: std::env::var_os(SOCKET_ENV)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from),
            current_dir: std::env::current_dir().ok(),
            runtime_dir: directories::BaseDirs::new()
                .and_then(|dirs| dirs.runtime_dir().map(Path::to_path_buf)),
            temp_dir: std::env::temp_dir(),
            user: user_id(),
        }
    }

    /// The socket path these facts lead to.
    pub fn resolve(&self) -> PathBuf {
        match self.explicit.as_deref().or(self.from_env.as_deref()) {
            Some(socket) => match &self.current_dir {
                Some(current_dir) => current_dir.join(socket),
                None => socket.to_path_buf(),
            },
            None => protocol::paths::default_socket(
                self.runtime_dir.as_deref(),
                &self.temp_dir,
                &self.user,
            ),
        }
    }
}

fn user_id() -> String {
    #[cfg(unix)]
    {
        nix::unistd::geteuid().as_raw().to_string()
    }
    #[cfg(not(unix))]
    {
        std::env::var("USERNAME").unwrap_or_else(|_| "user".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A search with nothing given, a current folder and a runtime folder; cases change fields.
    fn search() -> SocketSearch {
        SocketSearch {
            explicit: None,
            from_env: None,
            current_dir: Some(PathBuf::from("/home/ada/comic")),
            runtime_dir: Some(PathBuf::from("/run/user/1000")),
            temp_dir: PathBuf::from("/tmp"),
            user: "1000".to_owned(),
        }
    }

    fn check(search: SocketSearch, expected: &str) {
        assert_eq!(search.resolve(), Path::new(expected), "{search:?}");
    }

    #[test]
    fn the_given_path_wins_then_the_environment_then_the_default() {
        let given = |path: &str| Some(PathBuf::from(path));
        check(search(), "/run/user/1000/kroma/kromad.sock");
        check(
            SocketSearch {
                runtime_dir: None,
                ..search()
            },
            "/tmp/kroma-1000/kromad.sock",
        );
        check(
            SocketSearch {
                from_env: given("/srv/env.sock"),
                ..search()
            },
            "/srv/env.sock",
        );
        check(
            SocketSearch {
                explicit: given("/srv/flag.sock"),
                from_env: given("/srv/env.sock"),
                ..search()
            },
            "/srv/flag.sock",
        );
    }

    #[test]
    fn relative_paths_are_taken_from_the_current_folder() {
        let given = |path: &str| Some(PathBuf::from(path));
        check(
            SocketSearch {
                explicit: given("run/kromad.sock"),
                ..search()
            },
            "/home/ada/comic/run/kromad.sock",
        );
        check(
            SocketSearch {
                from_env: given("kromad.sock"),
                ..search()
            },
            "/home/ada/comic/kromad.sock",
        );
        check(
            SocketSearch {
                explicit: given("kromad.sock"),
                current_dir: None,
                ..search()
            },
            "kromad.sock",
        );
    }

    #[test]
    fn an_explicit_path_needs_nothing_from_the_environment() {
        let socket = Path::new("/srv/kroma/kromad.sock");
        assert_eq!(discover_socket(Some(socket)), socket);
    }
}
