//! The file secret store: one age-encrypted JSON map, written atomically with mode 0600. The key
//! is an age identity file (0600, created when missing) or a passphrase.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Mutex;

use secrecy::{ExposeSecret, SecretString};

use super::SecretError;

enum Key {
    Identity(age::x25519::Identity),
    Passphrase(SecretString),
}

pub struct FileStore {
    path: PathBuf,
    key: Key,
    /// The decrypted map, read once: passphrase decryption is deliberately slow.
    cache: Mutex<Option<BTreeMap<String, String>>>,
}

impl FileStore {
    pub fn open(
        path: &Path,
        key_file: Option<&Path>,
        passphrase: Option<SecretString>,
    ) -> Result<FileStore, String> {
        let key = match (key_file, passphrase) {
            (Some(key_file), _) => Key::Identity(load_or_create_identity(key_file)?),
            (None, Some(passphrase)) if !passphrase.expose_secret().is_empty() => {
                Key::Passphrase(passphrase)
            }
            _ => {
                return Err(
                    "the file store needs secrets.key_file in the config or KROMA_SECRETS_PASSPHRASE".to_owned(),
                );
            }
        };
        let store = FileStore {
            path: path.to_owned(),
            key,
            cache: Mutex::new(None),
        };
        // Fail now, not at the first use, when the file cannot be read with this key.
        store.with_map(|_| Ok(())).map_err(|err| err.to_string())?;
        Ok(store)
    }

    pub fn describe(&self) -> String {
        let key = match self.key {
            Key::Identity(_) => "age identity",
            Key::Passphrase(_) => "passphrase",
        };
        format!("{} ({key})", self.path.display())
    }

    pub fn get(&self, name: &str) -> Result<SecretString, SecretError> {
        self.with_map(|map| {
            map.get(name)
                .map(|value| SecretString::from(value.clone()))
                .ok_or_else(|| SecretError::NotFound(name.to_owned()))
        })
    }

    pub fn set(&self, name: &str, value: &str) -> Result<(), SecretError> {
        self.update(|map| {
            map.insert(name.to_owned(), value.to_owned());
        })
    }

    pub fn delete(&self, name: &str) -> Result<(), SecretError> {
        self.update(|map| {
            map.remove(name);
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<BTreeMap<String, String>>> {
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn with_map<T>(
        &self,
        read: impl FnOnce(&BTreeMap<String, String>) -> Result<T, SecretError>,
    ) -> Result<T, SecretError> {
        let mut cache = self.lock();
        let map = match cache.take() {
            Some(map) => map,
            None => self.load()?,
        };
        let result = read(&map);
        *cache = Some(map);
        result
    }

    fn update(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<(), SecretError> {
        let mut cache = self.lock();
        let mut map = match cache.take() {
            Some(map) => map,
            None => self.load()?,
        };
        let before = map.clone();
        change(&mut map);
        match self.save(&map) {
            Ok(()) => {
                *cache = Some(map);
                Ok(())
            }
            Err(err) => {
                *cache = Some(before);
                Err(err)
            }
        }
    }

    fn load(&self) -> Result<BTreeMap<String, String>, SecretError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(err) => {
                return Err(SecretError::Store(format!(
                    "reading {}: {err}",
                    self.path.display()
                )));
            }
        };
        let plain = match &self.key {
            Key::Identity(identity) => age::decrypt(identity, &bytes),
            Key::Passphrase(passphrase) => {
                age::decrypt(&age::scrypt::Identity::new(passphrase.clone()), &bytes)
            }
        }
        .map_err(|err| {
            SecretError::Store(format!(
                "decrypting {} (wrong key?): {err}",
                self.path.display()
            ))
        })?;
        serde_json::from_slice(&plain).map_err(|err| {
            SecretError::Store(format!(
                "{} is not a kroma secret file: {err}",
                self.path.display()
            ))
        })
    }

    fn save(&self, map: &BTreeMap<String, String>) -> Result<(), SecretError> {
        let plain = serde_json::to_vec(map).map_err(|err| SecretError::Store(err.to_string()))?;
        let encrypted = match &self.key {
            Key::Identity(identity) => age::encrypt(&identity.to_public(), &plain),
            Key::Passphrase(passphrase) => {
                age::encrypt(&age::scrypt::Recipient::new(passphrase.clone()), &plain)
            }
        }
        .map_err(|err| SecretError::Store(format!("encrypting: {err}")))?;
        write_private(&self.path, &encrypted)
            .map_err(|err| SecretError::Store(format!("writing {}: {err}", self.path.display())))
    }
}

fn load_or_create_identity(path: &Path) -> Result<age::x25519::Identity, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            check_private(path)?;
            let line = text
                .lines()
                .map(str::trim)
                .find(|line| line.starts_with("AGE-SECRET-KEY-"))
                .ok_or_else(|| {
                    format!(
                        "{} holds no age identity (AGE-SECRET-KEY-…)",
                        path.display()
                    )
                })?;
            age::x25519::Identity::from_str(line)
                .map_err(|err| format!("{}: {err}", path.display()))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let identity = age::x25519::Identity::generate();
            let text = format!(
                "# kroma secret store key, created by kromad; keep it private\n{}\n",
                identity.to_string().expose_secret()
            );
            write_private(path, text.as_bytes())
                .map_err(|err| format!("creating key file {}: {err}", path.display()))?;
            Ok(identity)
        }
        Err(err) => Err(format!("reading key file {}: {err}", path.display())),
    }
}

/// A key file readable by others is refused: it would give the secrets away.
fn check_private(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|err| format!("{}: {err}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "key file {} is readable by others (mode {:o}); run chmod 600 on it",
                path.display(),
                mode & 0o777
            ));
        }
    }
    Ok(())
}

/// Writes a file atomically with mode 0600 from its creation on (`files::write::replace`).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder)?;
    crate::files::write::replace(path, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_an_identity_file_and_survive_reopening() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("secrets.age");
        let key = temp.path().join("key.txt");
        let store = FileStore::open(&file, Some(&key), None).unwrap();
        store.set("openai", "sk-test-value-123").unwrap();
        store.set("other", "x").unwrap();
        store.delete("other").unwrap();
        let on_disk = std::fs::read(&file).unwrap();
        assert!(
            !on_disk.windows(5).any(|w| w == b"sk-te"),
            "the file is encrypted"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
                0o600
            );
            assert_eq!(
                std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let reopened = FileStore::open(&file, Some(&key), None).unwrap();
        assert_eq!(
            reopened.get("openai").unwrap().expose_secret(),
            "sk-test-value-123"
        );
        assert!(matches!(
            reopened.get("other"),
            Err(SecretError::NotFound(_))
        ));
    }

    #[test]
    fn a_wrong_key_or_a_public_key_file_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("secrets.age");
        FileStore::open(&file, Some(&temp.path().join("key-a")), None)
            .unwrap()
            .set("a", "b")
            .unwrap();
        let err = FileStore::open(&file, Some(&temp.path().join("key-b")), None)
            .err()
            .unwrap();
        assert!(err.contains("wrong key"), "{err}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let key = temp.path().join("key-a");
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
            let err = FileStore::open(&file, Some(&key), None).err().unwrap();
            assert!(err.contains("readable by others"), "{err}");
        }
        assert!(
            FileStore::open(&file, None, None)
                .err()
                .unwrap()
                .contains("KROMA_SECRETS_PASSPHRASE")
        );
    }

    #[test]
    fn a_passphrase_works_too() {
        let temp = tempfile::tempdir().unwrap();
        let file = temp.path().join("secrets.age");
        let passphrase = || Some(SecretString::from("correct horse battery staple"));
        FileStore::open(&file, None, passphrase())
            .unwrap()
            .set("k", "v")
            .unwrap();
        assert_eq!(
            FileStore::open(&file, None, passphrase())
                .unwrap()
                .get("k")
                .unwrap()
                .expose_secret(),
            "v"
        );
        assert!(FileStore::open(&file, None, Some(SecretString::from("wrong"))).is_err());
    }
}
