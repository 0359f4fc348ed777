//! Where the daemon's socket is by default, as a pure function of the user's folders, so the
//! daemon and every client agree without talking.

use std::path::{Path, PathBuf};

/// `$XDG_RUNTIME_DIR/kroma/kromad.sock` when there is a runtime dir, else
/// `<temp dir>/kroma-<user>/kromad.sock`.
pub fn default_socket(runtime_dir: Option<&Path>, temp_dir: &Path, user: &str) -> PathBuf {
    match runtime_dir {
        Some(runtime_dir) => runtime_dir.join("kroma").join("kromad.sock"),
        None => temp_dir.join(format!("kroma-{user}")).join("kromad.sock"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_dir_wins_over_temp_dir() {
        assert_eq!(
            default_socket(Some(Path::new("/run/user/1000")), Path::new("/tmp"), "1000"),
            Path::new("/run/user/1000/kroma/kromad.sock")
        );
        assert_eq!(
            default_socket(None, Path::new("/tmp"), "1000"),
            Path::new("/tmp/kroma-1000/kromad.sock")
        );
    }
}
