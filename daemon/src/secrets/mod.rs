//! Where secret values live: the OS keyring (Secret Service on Linux), or an age-encrypted file
//! chosen explicitly in the config, with `KROMA_SECRET_<NAME>` environment variables as a
//! read-only override. The one module that touches a keyring. Values never leave it except to the
//! code that needs them (a provider call); nothing here logs or formats a value.
//!
//! Every function that reaches a store blocks: call it from a blocking thread.

mod file;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, PoisonError, RwLock};

use kroma_protocol as protocol;
use secrecy::{ExposeSecret, SecretString};

pub use file::FileStore;

/// Which store `secret.set` writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    Keyring,
    File,
}

/// The validated secrets configuration. Debug output never shows a value.
#[derive(Debug, Clone)]
pub struct SecretsConfig {
    pub kind: StoreKind,
    /// The encrypted file of the file store.
    pub file: PathBuf,
    /// The file store's age identity file (created 0600 when missing).
    pub key_file: Option<PathBuf>,
    /// The file store's passphrase (`KROMA_SECRETS_PASSPHRASE`), used when there is no key file.
    pub passphrase: Option<SecretString>,
    /// `KROMA_SECRET_<NAME>` variables by secret name (upper case, `-` and `.` as `_`).
    pub env: BTreeMap<String, SecretString>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the {kind} secret store is not available: {problem}")]
    Unavailable { kind: &'static str, problem: String },
    #[error("secret `{0}` is not set")]
    NotFound(String),
    #[error("the secret store failed: {0}")]
    Store(String),
}

enum Backend {
    Keyring {
        store: Option<std::sync::Arc<keyring_core::CredentialStore>>,
        service: String,
        problem: Option<String>,
    },
    File {
        store: Option<FileStore>,
        problem: Option<String>,
    },
}

pub struct Secrets {
    backend: Backend,
    env: BTreeMap<String, SecretString>,
    scrubber: Scrubber,
}

/// Takes secret values out of text that came from outside (a provider's error, a header): every
/// value this process has set, read or been given in the environment, and anything shaped like a
/// bearer token or an API key. Cheap to clone; clones share what they know.
#[derive(Clone, Default)]
pub struct Scrubber {
    known: Arc<RwLock<Vec<SecretString>>>,
}

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Values shorter than this are not scrubbed by value: they would match ordinary words.
const MIN_SCRUBBED_LEN: usize = 6;

impl Scrubber {
    /// Remembers `value`, so text carrying it is scrubbed from now on.
    pub fn remember(&self, value: &str) {
        if value.len() < MIN_SCRUBBED_LEN {
            return;
        }
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        if !known.iter().any(|known| known.expose_secret() == value) {
            known.push(SecretString::from(value.to_owned()));
        }
    }

    /// `text` without any known secret value, bearer token or API-key-shaped word.
    pub fn scrub(&self, text: &str) -> String {
        let known = self.known.read().unwrap_or_else(PoisonError::into_inner);
        let values: Vec<&str> = known.iter().map(|value| value.expose_secret()).collect();
        scrub_text(text, &values)
    }
}

/// `text` with every one of `values` and every bearer token or API-key-shaped word replaced by
/// [`REDACTED`]. Pure.
pub fn scrub_text(text: &str, values: &[&str]) -> String {
    static SHAPES: LazyLock<[(regex::Regex, &str); 2]> = LazyLock::new(|| {
        let shape = |pattern: &str| regex::Regex::new(pattern).expect("a valid pattern");
        [
            (
                shape(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"),
                "$1 [redacted]",
            ),
            (shape(r"\b(sk|rk|pk)-[A-Za-z0-9_-]{8,}"), "$1-[redacted]"),
        ]
    });
    let mut text = text.to_owned();
    // Longest first, so a value that contains another is not left half-scrubbed.
    let mut values: Vec<&str> = values
        .iter()
        .copied()
        .filter(|value| value.len() >= MIN_SCRUBBED_LEN)
        .collect();
    values.sort_by_key(|value| std::cmp::Reverse(value.len()));
    for value in values {
        if text.contains(value) {
            text = text.replace(value, REDACTED);
        }
    }
    for (pattern, replacement) in SHAPES.iter() {
        if pattern.is_match(&text) {
            text = pattern.replace_all(&text, *replacement).into_owned();
        }
    }
    text
}

/// The secret store, opened on first use: its D-Bus connection (or key file) costs memory and
/// start-up time that a daemon which never touches a secret should not pay. The scrubber exists
/// from the start, knowing the environment's values.
pub struct LazySecrets {
    config: SecretsConfig,
    data_dir: PathBuf,
    scrubber: Scrubber,
    opened: tokio::sync::OnceCell<Arc<Secrets>>,
}

impl LazySecrets {
    pub fn new(config: SecretsConfig, data_dir: PathBuf) -> LazySecrets {
        let scrubber = Scrubber::default();
        for value in config.env.values() {
            scrubber.remember(value.expose_secret());
        }
        LazySecrets {
            config,
            data_dir,
            scrubber,
            opened: tokio::sync::OnceCell::new(),
        }
    }

    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    /// Whether `KROMA_SECRET_<NAME>` overrides the stored value (the store stays closed).
    pub fn env_override(&self, name: &str) -> bool {
        self.config.env.contains_key(&env_key(name))
    }

    /// Secret names that exist only as environment variables (the store stays closed).
    pub fn env_names(&self) -> impl Iterator<Item = &str> {
        self.config.env.keys().map(String::as_str)
    }

    /// The store, opened (on a blocking thread) by the first caller.
    pub async fn get(&self) -> Arc<Secrets> {
        self.opened
            .get_or_init(|| async {
                let config = self.config.clone();
                let data_dir = self.data_dir.clone();
                let scrubber = self.scrubber.clone();
                let opened = tokio::task::spawn_blocking(move || {
                    Secrets::open(&config, &data_dir, scrubber)
                })
                .await;
                let secrets = match opened {
                    Ok(secrets) => secrets,
                    Err(err) => Secrets::unopened(
                        &self.config,
                        &self.data_dir,
                        self.scrubber.clone(),
                        format!("opening the store failed: {err}"),
                    ),
                };
                let status = secrets.status();
                if status.available {
                    tracing::info!(store = %status.kind, detail = %status.detail, "secret store ready");
                } else {
                    tracing::warn!(store = %status.kind, problem = ?status.problem, "secret store unavailable");
                }
                Arc::new(secrets)
            })
            .await
            .clone()
    }
}

impl Secrets {
    /// A store that could not be opened at all, saying why.
    fn unopened(
        config: &SecretsConfig,
        data_dir: &Path,
        scrubber: Scrubber,
        problem: String,
    ) -> Secrets {
        let backend = match config.kind {
            StoreKind::Keyring => Backend::Keyring {
                store: None,
                service: format!("kroma:{}", data_dir.display()),
                problem: Some(problem),
            },
            StoreKind::File => Backend::File {
                store: None,
                problem: Some(problem),
            },
        };
        Secrets {
            backend,
            env: config.env.clone(),
            scrubber,
        }
    }

    /// Opens the configured store. A store that does not answer is recorded, not replaced by
    /// another: `status` says so, and `set` fails with the reason. Values it handles are
    /// remembered by `scrubber`.
    pub fn open(config: &SecretsConfig, data_dir: &Path, scrubber: Scrubber) -> Secrets {
        let backend = match config.kind {
            StoreKind::Keyring => {
                let service = format!("kroma:{}", data_dir.display());
                match open_keyring() {
                    Ok(store) => Backend::Keyring {
                        store: Some(store),
                        service,
                        problem: None,
                    },
                    Err(problem) => Backend::Keyring {
                        store: None,
                        service,
                        problem: Some(problem),
                    },
                }
            }
            StoreKind::File => match FileStore::open(
                &config.file,
                config.key_file.as_deref(),
                config.passphrase.clone(),
            ) {
                Ok(store) => Backend::File {
                    store: Some(store),
                    problem: None,
                },
                Err(problem) => Backend::File {
                    store: None,
                    problem: Some(problem),
                },
            },
        };
        Secrets {
            backend,
            env: config.env.clone(),
            scrubber,
        }
    }

    /// The scrubber that knows every value this store has handled.
    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    /// The name of the store `set` writes to.
    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Keyring { .. } => "keyring",
            Backend::File { .. } => "file",
        }
    }

    pub fn status(&self) -> protocol::secret::StoreStatus {
        let (detail, problem) = match &self.backend {
            Backend::Keyring {
                service, problem, ..
            } => (
                format!("{} (service `{service}`)", keyring_name()),
                problem.clone(),
            ),
            Backend::File { store, problem } => (
                store
                    .as_ref()
                    .map_or_else(|| "encrypted file".to_owned(), FileStore::describe),
                problem.clone(),
            ),
        };
        protocol::secret::StoreStatus {
            kind: self.kind().to_owned(),
            detail,
            available: problem.is_none(),
            problem,
        }
    }

    fn unavailable(&self, problem: &str) -> SecretError {
        SecretError::Unavailable {
            kind: self.kind(),
            problem: problem.to_owned(),
        }
    }

    pub fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        self.scrubber.remember(value);
        match &self.backend {
            Backend::Keyring {
                store: Some(store),
                service,
                ..
            } => keyring_core::Entry::new_in_store(store, service, name)
                .and_then(|entry| entry.set_password(value))
                .map_err(|err| SecretError::Store(err.to_string())),
            Backend::File {
                store: Some(store), ..
            } => store.set(name, value),
            Backend::Keyring { problem, .. } | Backend::File { problem, .. } => {
                Err(self.unavailable(problem.as_deref().unwrap_or("not opened")))
            }
        }
    }

    /// The value and where it came from: the environment first, then the store.
    pub fn get(&self, name: &str) -> Result<(SecretString, &'static str), SecretError> {
        if let Some(value) = self.env.get(&env_key(name)) {
            return Ok((value.clone(), "env"));
        }
        let value = match &self.backend {
            Backend::Keyring {
                store: Some(store),
                service,
                ..
            } => match keyring_core::Entry::new_in_store(store, service, name)
                .and_then(|entry| entry.get_password())
            {
                Ok(value) => SecretString::from(value),
                Err(keyring_core::Error::NoEntry) => {
                    return Err(SecretError::NotFound(name.to_owned()));
                }
                Err(err) => return Err(SecretError::Store(err.to_string())),
            },
            Backend::File {
                store: Some(store), ..
            } => store.get(name)?,
            Backend::Keyring { problem, .. } | Backend::File { problem, .. } => {
                return Err(self.unavailable(problem.as_deref().unwrap_or("not opened")));
            }
        };
        self.scrubber.remember(value.expose_secret());
        Ok((value, self.kind()))
    }

    /// Removes a stored value; a value that is not there is fine.
    pub fn delete(&self, name: &str) -> Result<(), SecretError> {
        match &self.backend {
            Backend::Keyring {
                store: Some(store),
                service,
                ..
            } => match keyring_core::Entry::new_in_store(store, service, name)
                .and_then(|entry| entry.delete_credential())
            {
                Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
                Err(err) => Err(SecretError::Store(err.to_string())),
            },
            Backend::File {
                store: Some(store), ..
            } => store.delete(name),
            Backend::Keyring { problem, .. } | Backend::File { problem, .. } => {
                Err(self.unavailable(problem.as_deref().unwrap_or("not opened")))
            }
        }
    }

    pub fn env_override(&self, name: &str) -> bool {
        self.env.contains_key(&env_key(name))
    }

    /// Secret names that exist only as environment variables.
    pub fn env_names(&self) -> impl Iterator<Item = &str> {
        self.env.keys().map(String::as_str)
    }

    /// Whether a value is readable, without returning it.
    pub fn test(&self, name: &str) -> Result<&'static str, SecretError> {
        let (value, store) = self.get(name)?;
        if value.expose_secret().is_empty() {
            return Err(SecretError::Store(format!("secret `{name}` is empty")));
        }
        Ok(store)
    }
}

impl Drop for Secrets {
    /// The Secret Service connection blocks on drop, which a Tokio worker thread must never do:
    /// it is dropped on a thread of its own.
    fn drop(&mut self) {
        if let Backend::Keyring { store, .. } = &mut self.backend
            && let Some(store) = store.take()
        {
            let dropper = std::thread::spawn(move || drop(store));
            let _ = dropper.join();
        }
    }
}

/// The environment variable suffix of a secret: upper case, `-` and `.` as `_`.
pub fn env_key(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' | '.' => '_',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Collects `KROMA_SECRET_<NAME>` variables from an environment listing.
pub fn env_overrides(
    vars: impl Iterator<Item = (String, String)>,
) -> BTreeMap<String, SecretString> {
    vars.filter_map(|(key, value)| {
        key.strip_prefix("KROMA_SECRET_")
            .filter(|name| !name.is_empty())
            .map(|name| (env_key(name), SecretString::from(value)))
    })
    .collect()
}

#[cfg(target_os = "linux")]
fn open_keyring() -> Result<std::sync::Arc<keyring_core::CredentialStore>, String> {
    let store = zbus_secret_service_keyring_store::Store::new().map_err(|err| err.to_string())?;
    let store: std::sync::Arc<keyring_core::CredentialStore> = store;
    // Opening succeeds without a running keyring daemon on some systems: ask it something.
    store
        .search(&std::collections::HashMap::from([(
            "service",
            "kroma-probe",
        )]))
        .map_err(|err| err.to_string())?;
    Ok(store)
}

#[cfg(not(target_os = "linux"))]
fn open_keyring() -> Result<std::sync::Arc<keyring_core::CredentialStore>, String> {
    Err("kroma supports the OS keyring on Linux (Secret Service) so far; set secrets.store = \"file\"".to_owned())
}

fn keyring_name() -> &'static str {
    if cfg!(target_os = "linux") {
        "Secret Service"
    } else {
        "OS keyring"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_removes_known_values_and_key_shapes() {
        let key = "tok_live_a1b2c3d4e5f6";
        let echoed = format!(
            "invalid key {key}; header was 'Authorization: Bearer {key}', try sk-proj-AbC123xyz_456 or Basic dXNlcjpwYXNz"
        );
        let scrubbed = scrub_text(&echoed, &[key, "short"]);
        assert!(!scrubbed.contains(key), "{scrubbed}");
        assert!(!scrubbed.contains("AbC123xyz"), "{scrubbed}");
        assert!(!scrubbed.contains("dXNlcjpwYXNz"), "{scrubbed}");
        assert_eq!(
            scrubbed,
            "invalid key [redacted]; header was 'Authorization: Bearer [redacted]', try sk-[redacted] or Basic [redacted]"
        );
        // Ordinary words and short values stay.
        assert_eq!(
            scrub_text("the model is busy; ask later", &["busy", "ask"]),
            "the model is busy; ask later"
        );
        let scrubber = Scrubber::default();
        scrubber.remember("value-from-the-keyring");
        assert_eq!(
            scrubber.scrub("echo: value-from-the-keyring!"),
            "echo: [redacted]!"
        );
    }

    #[test]
    fn env_keys_fold_case_and_punctuation() {
        assert_eq!(env_key("openai-key.v2"), "OPENAI_KEY_V2");
        let vars = env_overrides(
            [
                ("KROMA_SECRET_OPENAI".to_owned(), "sk-1".to_owned()),
                ("KROMA_SECRET_".to_owned(), "ignored".to_owned()),
                ("HOME".to_owned(), "/root".to_owned()),
            ]
            .into_iter(),
        );
        assert_eq!(vars.keys().collect::<Vec<_>>(), ["OPENAI"]);
        assert_eq!(
            format!("{:?}", vars),
            r#"{"OPENAI": SecretBox<str>([REDACTED])}"#
        );
    }
}
