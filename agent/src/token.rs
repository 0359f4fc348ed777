//! The bearer token of MCP over HTTP: 32 random bytes as hex, made on first use and kept in a
//! file only its owner can read (0600, in a 0700 folder). The token is never logged or printed;
//! the server says where the file is. Presented tokens are compared in constant time.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The token's length in hex characters.
const TOKEN_HEX_LEN: usize = 64;

/// A bearer token. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(<hidden>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("reading or writing the token file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the token file {} can be read by other users (mode {mode:o}); run `chmod 600 {}`", path.display(), path.display())]
    Exposed { path: PathBuf, mode: u32 },
    #[error("the token file {} does not hold a token; delete it to make a new one", path.display())]
    Malformed { path: PathBuf },
    #[error("no random numbers for a token: {0}")]
    Random(getrandom::Error),
}

impl BearerToken {
    /// The token in `path`, made and stored there first when the file does not exist.
    pub fn load_or_create(path: &Path) -> Result<BearerToken, TokenError> {
        let io = |source| TokenError::Io {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => {
                check_private(path)?;
                let token = text.trim();
                let well_formed = token.len() == TOKEN_HEX_LEN
                    && token.bytes().all(|byte| byte.is_ascii_hexdigit());
                if well_formed {
                    Ok(BearerToken(token.to_owned()))
                } else {
                    Err(TokenError::Malformed {
                        path: path.to_owned(),
                    })
                }
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let token = BearerToken::random()?;
                if let Some(folder) = path.parent() {
                    create_private_folder(folder).map_err(io)?;
                }
                let mut file = create_private_file(path).map_err(io)?;
                file.write_all(format!("{}\n", token.0).as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(io)?;
                Ok(token)
            }
            Err(err) => Err(io(err)),
        }
    }

    fn random() -> Result<BearerToken, TokenError> {
        let mut bytes = [0u8; TOKEN_HEX_LEN / 2];
        getrandom::fill(&mut bytes).map_err(TokenError::Random)?;
        Ok(BearerToken(
            bytes.iter().map(|byte| format!("{byte:02x}")).collect(),
        ))
    }

    /// Whether `presented` is this token; the time taken does not depend on where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        if presented.len() != expected.len() {
            return false;
        }
        let difference = expected
            .iter()
            .zip(presented)
            .fold(0u8, |difference, (a, b)| difference | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), TokenError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|source| TokenError::Io {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(TokenError::Exposed {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), TokenError> {
    Ok(())
}

#[cfg(unix)]
fn create_private_folder(folder: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
}

#[cfg(not(unix))]
fn create_private_folder(folder: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(folder)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_kept_private_and_matched_exactly() {
        let temp = tempfile::tempdir().expect("temp");
        let path = temp.path().join("config/kroma/mcp-token");
        let made = BearerToken::load_or_create(&path).expect("made");
        assert_eq!(BearerToken::load_or_create(&path).expect("read"), made);
        assert_eq!(format!("{made:?}"), "BearerToken(<hidden>)");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
            assert!(matches!(
                BearerToken::load_or_create(&path),
                Err(TokenError::Exposed { .. })
            ));
        }
        let text = made.0.clone();
        assert!(made.matches(text.as_bytes()));
        assert!(!made.matches(&text.as_bytes()[1..]));
        let mut wrong = text.into_bytes();
        wrong[TOKEN_HEX_LEN - 1] ^= 1;
        assert!(!made.matches(&wrong));
        assert!(!made.matches(b""));
        assert_ne!(BearerToken::random().expect("random"), made);
    }
}
