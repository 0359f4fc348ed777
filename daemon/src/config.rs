//! Daemon configuration: [`RawConfig`] mirrors the optional TOML file, [`Config`] is the validated
//! result with absolute paths, built once at start-up.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Limits that protect the daemon from bad or greedy clients.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Longest accepted frame (one line), in bytes. A longer frame closes that connection.
    pub max_frame_bytes: usize,
    /// Connections served at once; more are answered with an error and closed.
    pub max_connections: usize,
    /// Requests one connection may have in flight before the daemon stops reading from it.
    pub max_in_flight_per_connection: usize,
    /// A request that takes longer is answered with a `request_timeout` error.
    pub request_timeout: Duration,
    /// A frame must be complete this long after its first byte, or its connection is closed.
    pub frame_timeout: Duration,
    /// Bytes of request frames one connection may have in flight (read, not yet answered).
    pub max_in_flight_bytes: usize,
    /// Bytes of replies one connection may have waiting to be written. A batch whose answers
    /// would need more gets errors for the requests beyond it, which are not run.
    pub max_reply_bytes: usize,
    /// Subscriptions one connection may hold open.
    pub max_subscriptions_per_connection: usize,
    /// Pixels one image may have (width × height) for any decode: import, local steps, runs.
    pub max_image_pixels: u64,
    /// Memory the local steps (colour, background removal, upscale) may use at once, in MiB,
    /// estimated per image before it is decoded.
    pub step_memory_mb: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_frame_bytes: 16 * 1024 * 1024,
            max_connections: 256,
            max_in_flight_per_connection: 64,
            request_timeout: Duration::from_secs(60),
            frame_timeout: Duration::from_secs(10),
            max_in_flight_bytes: 64 * 1024 * 1024,
            max_reply_bytes: 64 * 1024 * 1024,
            max_subscriptions_per_connection: 64,
            max_image_pixels: 100_000_000,
            step_memory_mb: 2048,
        }
    }
}

/// The validated configuration `daemon::run` works with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Holds `kroma.db`, `logs/`, `projects/` and the lock file. Absolute.
    pub data_dir: PathBuf,
    /// The local socket path. Absolute.
    pub socket: PathBuf,
    pub limits: Limits,
    pub secrets: crate::secrets::SecretsConfig,
    pub runs: RunLimits,
    /// The user's run settings file (`$XDG_CONFIG_HOME/kroma/config.toml`); `None`: no user layer.
    pub user_settings: Option<PathBuf>,
    /// The local runtime and models (`$XDG_DATA_HOME/kroma/models`).
    pub models_dir: PathBuf,
    pub local_models: ModelLimits,
    /// Where the confirmation pages are served: always a loopback address; `None`: not served.
    pub confirm_page: Option<std::net::SocketAddr>,
    /// Whether one-time codes are shown in desktop notifications.
    pub desktop_notifications: bool,
    /// How long a one-time code stays valid.
    pub code_ttl: std::time::Duration,
    /// How kromad was started (a service manager or by hand), for `daemon.status`.
    pub service: kroma_protocol::daemon::Supervision,
}

/// How the local ONNX models run.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelLimits {
    /// Threads one inference may use (ONNX Runtime's intra-op threads).
    pub intra_threads: usize,
    /// Sessions per model, i.e. inferences of one model at once.
    pub sessions: usize,
    /// A model's session is freed after this long without use.
    pub idle: Duration,
}

impl Default for ModelLimits {
    fn default() -> ModelLimits {
        ModelLimits {
            intra_threads: std::thread::available_parallelism().map_or(2, usize::from),
            sessions: 1,
            idle: Duration::from_secs(300),
        }
    }
}

/// How much run work happens at once, across all projects.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLimits {
    /// Provider calls in flight at once.
    pub provider_calls: usize,
    /// Local work (decoding, checking and writing outputs) at once.
    pub local_jobs: usize,
}

impl Default for RunLimits {
    fn default() -> RunLimits {
        RunLimits {
            provider_calls: 4,
            local_jobs: std::thread::available_parallelism().map_or(2, usize::from),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The config file as written (`kromad.toml`). Every key is optional; unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub data_dir: Option<PathBuf>,
    pub socket: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub secrets: RawSecrets,
    #[serde(default)]
    pub runs: RawRuns,
    #[serde(default)]
    pub local_models: RawModels,
    #[serde(default)]
    pub confirm_page: RawConfirmPage,
    #[serde(default)]
    pub notifications: RawNotifications,
    #[serde(default)]
    pub instructions: RawInstructions,
}

/// `[instructions]`: how work waits for a person.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInstructions {
    /// How long a one-time code stays valid, in seconds (1 to 3600; default 600).
    pub code_ttl_secs: Option<u64>,
}

/// `[notifications]`: telling the person at the desktop.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotifications {
    /// Show a one-time code in a desktop notification when an instruction waits for a person
    /// (default true; nothing is shown where no notification server runs).
    pub desktop: Option<bool>,
}

/// `[confirm_page]`: the loopback HTTP server of instructions' confirmation pages.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfirmPage {
    /// Serve the pages (default true).
    pub enabled: Option<bool>,
    /// A loopback address and port; port 0 (the default) takes a free one at each start.
    pub listen: Option<std::net::SocketAddr>,
}

/// `[local_models]`: how the ONNX models run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModels {
    pub intra_threads: Option<usize>,
    pub sessions: Option<usize>,
    pub idle_secs: Option<u64>,
}

/// `[runs]`: concurrency of run work.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuns {
    pub provider_calls: Option<usize>,
    pub local_jobs: Option<usize>,
}

/// `[secrets]`: where secret values live.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecrets {
    /// `keyring` (default) or `file`.
    pub store: Option<crate::secrets::StoreKind>,
    /// The file store's age identity file; created with mode 0600 when missing.
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_frame_bytes: Option<usize>,
    pub max_connections: Option<usize>,
    pub max_in_flight_per_connection: Option<usize>,
    pub request_timeout_secs: Option<f64>,
    pub frame_timeout_secs: Option<f64>,
    pub max_in_flight_bytes: Option<usize>,
    pub max_reply_bytes: Option<usize>,
    pub max_subscriptions_per_connection: Option<usize>,
    pub max_image_pixels: Option<u64>,
    pub step_memory_mb: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{what} must be an absolute path, got `{path}`")]
    Relative { what: &'static str, path: PathBuf },
    #[error("limits.{key} must be {rule}")]
    Limit {
        key: &'static str,
        rule: &'static str,
    },
    #[error("{key} must be {rule}")]
    Runs {
        key: &'static str,
        rule: &'static str,
    },
}

impl RawConfig {
    /// Reads a config file; a missing file is an error only when it was asked for.
    pub fn load(path: &Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        RawConfig::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<RawConfig, ConfigError> {
        toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: path.to_owned(),
            message: err.to_string().trim_end().to_owned(),
        })
    }
}

impl Config {
    /// Validates the merged settings: `data_dir` and `socket` are the already-chosen values (flag,
    /// environment, file or default, in that order).
    pub fn new(data_dir: PathBuf, socket: PathBuf, raw: &RawLimits) -> Result<Config, ConfigError> {
        if !data_dir.is_absolute() {
            return Err(ConfigError::Relative {
                what: "data dir",
                path: data_dir,
            });
        }
        if !socket.is_absolute() {
            return Err(ConfigError::Relative {
                what: "socket",
                path: socket,
            });
        }
        let defaults = Limits::default();
        let positive = |value: Option<usize>, default: usize, key: &'static str| match value {
            Some(0) | Some(65_537..) => Err(ConfigError::Limit {
                key,
                rule: "between 1 and 65536",
            }),
            Some(value) => Ok(value),
            None => Ok(default),
        };
        let seconds = |value: Option<f64>, default: Duration, key: &'static str| match value {
            None => Ok(default),
            Some(secs) if secs.is_finite() && secs > 0.0 && secs <= 86_400.0 => {
                Ok(Duration::from_secs_f64(secs))
            }
            Some(_) => Err(ConfigError::Limit {
                key,
                rule: "a number of seconds above 0 and at most 86400",
            }),
        };
        let bytes = |value: Option<usize>, default: usize, key: &'static str| match value {
            None => Ok(default),
            Some(value @ 1024..=0x1_0000_0000) => Ok(value),
            Some(_) => Err(ConfigError::Limit {
                key,
                rule: "between 1024 and 4294967296 bytes",
            }),
        };
        let request_timeout = seconds(
            raw.request_timeout_secs,
            defaults.request_timeout,
            "request_timeout_secs",
        )?;
        let frame_timeout = seconds(
            raw.frame_timeout_secs,
            defaults.frame_timeout,
            "frame_timeout_secs",
        )?;
        let max_frame_bytes = bytes(
            raw.max_frame_bytes,
            defaults.max_frame_bytes,
            "max_frame_bytes",
        )?;
        let max_image_pixels = match raw.max_image_pixels {
            None => defaults.max_image_pixels,
            Some(value @ 1..=1_000_000_000) => value,
            Some(_) => {
                return Err(ConfigError::Limit {
                    key: "max_image_pixels",
                    rule: "between 1 and 1000000000",
                });
            }
        };
        let step_memory_mb = match raw.step_memory_mb {
            None => defaults.step_memory_mb,
            Some(value @ 64..=1_048_576) => value,
            Some(_) => {
                return Err(ConfigError::Limit {
                    key: "step_memory_mb",
                    rule: "between 64 and 1048576",
                });
            }
        };
        let secrets = crate::secrets::SecretsConfig {
            kind: crate::secrets::StoreKind::Keyring,
            file: data_dir.join("secrets.age"),
            key_file: None,
            passphrase: None,
            env: Default::default(),
        };
        Ok(Config {
            confirm_page: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0))),
            models_dir: data_dir.join("models"),
            local_models: ModelLimits::default(),
            data_dir,
            socket,
            secrets,
            runs: RunLimits::default(),
            user_settings: None,
            service: Default::default(),
            desktop_notifications: true,
            code_ttl: std::time::Duration::from_secs(kroma_protocol::instruction::CODE_TTL_SECS),
            limits: Limits {
                max_frame_bytes,
                max_connections: positive(
                    raw.max_connections,
                    defaults.max_connections,
                    "max_connections",
                )?,
                max_in_flight_per_connection: positive(
                    raw.max_in_flight_per_connection,
                    defaults.max_in_flight_per_connection,
                    "max_in_flight_per_connection",
                )?,
                request_timeout,
                frame_timeout,
                max_in_flight_bytes: bytes(
                    raw.max_in_flight_bytes,
                    defaults.max_in_flight_bytes,
                    "max_in_flight_bytes",
                )?,
                max_reply_bytes: bytes(
                    raw.max_reply_bytes,
                    defaults.max_reply_bytes,
                    "max_reply_bytes",
                )?,
                max_subscriptions_per_connection: positive(
                    raw.max_subscriptions_per_connection,
                    defaults.max_subscriptions_per_connection,
                    "max_subscriptions_per_connection",
                )?,
                max_image_pixels,
                step_memory_mb,
            },
        })
    }
}

/// `value` if it is in `range`, `default` if absent, else an error naming `key` and `rule`.
fn within<T: PartialOrd>(
    value: Option<T>,
    default: T,
    range: std::ops::RangeInclusive<T>,
    key: &'static str,
    rule: &'static str,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(value) if range.contains(&value) => Ok(value),
        Some(_) => Err(ConfigError::Runs { key, rule }),
    }
}

impl Config {
    /// Applies `[runs]` (each 1 to 256).
    pub fn with_runs(mut self, raw: &RawRuns) -> Result<Config, ConfigError> {
        let check = |value: Option<usize>, default: usize, key: &'static str| {
            within(value, default, 1..=256, key, "between 1 and 256")
        };
        let defaults = RunLimits::default();
        self.runs = RunLimits {
            provider_calls: check(
                raw.provider_calls,
                defaults.provider_calls,
                "runs.provider_calls",
            )?,
            local_jobs: check(raw.local_jobs, defaults.local_jobs, "runs.local_jobs")?,
        };
        Ok(self)
    }

    /// Applies `[confirm_page]`: only a loopback address, so the page is for this machine's
    /// browser alone.
    pub fn with_confirm_page(mut self, raw: &RawConfirmPage) -> Result<Config, ConfigError> {
        if raw.enabled == Some(false) {
            self.confirm_page = None;
            return Ok(self);
        }
        if let Some(listen) = raw.listen {
            if !listen.ip().is_loopback() {
                return Err(ConfigError::Runs {
                    key: "confirm_page.listen",
                    rule: "a loopback address (127.0.0.1 or [::1]) and a port",
                });
            }
            self.confirm_page = Some(listen);
        }
        Ok(self)
    }

    /// Applies `[notifications]`.
    pub fn with_notifications(mut self, raw: &RawNotifications) -> Config {
        self.desktop_notifications = raw.desktop.unwrap_or(true);
        self
    }

    /// Applies `[instructions]`.
    pub fn with_instructions(mut self, raw: &RawInstructions) -> Result<Config, ConfigError> {
        let default = kroma_protocol::instruction::CODE_TTL_SECS;
        let key = "instructions.code_ttl_secs";
        let secs = within(
            raw.code_ttl_secs,
            default,
            1..=3600,
            key,
            "between 1 and 3600",
        )?;
        self.code_ttl = std::time::Duration::from_secs(secs);
        Ok(self)
    }

    /// Applies `[local_models]`: `intra_threads` 1 to 256, `sessions` 1 to 64, `idle_secs` 1 to a
    /// day.
    pub fn with_local_models(mut self, raw: &RawModels) -> Result<Config, ConfigError> {
        let defaults = ModelLimits::default();
        let idle_secs = within(
            raw.idle_secs,
            defaults.idle.as_secs(),
            1..=86_400,
            "local_models.idle_secs",
            "between 1 and 86400",
        )?;
        self.local_models = ModelLimits {
            intra_threads: within(
                raw.intra_threads,
                defaults.intra_threads,
                1..=256,
                "local_models.intra_threads",
                "between 1 and 256",
            )?,
            sessions: within(
                raw.sessions,
                defaults.sessions,
                1..=64,
                "local_models.sessions",
                "between 1 and 64",
            )?,
            idle: Duration::from_secs(idle_secs),
        };
        Ok(self)
    }

    /// Applies `[secrets]` and the secret inputs from the environment: the file store passphrase
    /// and the `KROMA_SECRET_<NAME>` overrides.
    pub fn with_secrets(
        mut self,
        raw: &RawSecrets,
        passphrase: Option<secrecy::SecretString>,
        env: std::collections::BTreeMap<String, secrecy::SecretString>,
    ) -> Result<Config, ConfigError> {
        if let Some(key_file) = &raw.key_file
            && !key_file.is_absolute()
        {
            return Err(ConfigError::Relative {
                what: "secrets.key_file",
                path: key_file.clone(),
            });
        }
        self.secrets.kind = raw.store.unwrap_or(crate::secrets::StoreKind::Keyring);
        self.secrets.key_file = raw.key_file.clone();
        self.secrets.passphrase = passphrase;
        self.secrets.env = env;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = RawConfig::parse("sokcet = \"/x\"", Path::new("k.toml")).unwrap_err();
        assert!(err.to_string().contains("unknown field `sokcet`"), "{err}");
        let err = RawConfig::parse("[limits]\nmax_frames = 3", Path::new("k.toml")).unwrap_err();
        assert!(
            err.to_string().contains("unknown field `max_frames`"),
            "{err}"
        );
    }

    #[test]
    fn local_model_settings_are_read_and_checked() {
        let base = || Config::new("/d".into(), "/s.sock".into(), &RawLimits::default()).unwrap();
        let raw = RawConfig::parse(
            "[local_models]\nintra_threads = 3\nsessions = 2\nidle_secs = 9",
            Path::new("k.toml"),
        )
        .unwrap();
        let config = base().with_local_models(&raw.local_models).unwrap();
        assert_eq!(
            config.local_models,
            ModelLimits {
                intra_threads: 3,
                sessions: 2,
                idle: Duration::from_secs(9),
            }
        );
        let defaults = base().with_local_models(&RawModels::default()).unwrap();
        assert_eq!(defaults.local_models, ModelLimits::default());
        for (text, key) in [
            ("intra_threads = 0", "local_models.intra_threads"),
            ("sessions = 65", "local_models.sessions"),
            ("idle_secs = 0", "local_models.idle_secs"),
        ] {
            let raw =
                RawConfig::parse(&format!("[local_models]\n{text}"), Path::new("k.toml")).unwrap();
            let err = base().with_local_models(&raw.local_models).unwrap_err();
            assert!(err.to_string().starts_with(key), "{err}");
        }
    }

    #[test]
    fn limits_are_checked() {
        let raw = RawConfig::parse(
            "log_format = \"json\"\n[limits]\nmax_connections = 8\nrequest_timeout_secs = 1.5",
            Path::new("k.toml"),
        )
        .unwrap();
        let config = Config::new("/d".into(), "/s.sock".into(), &raw.limits).unwrap();
        assert_eq!(config.limits.max_connections, 8);
        assert_eq!(config.limits.request_timeout, Duration::from_millis(1500));
        assert_eq!(raw.log_format, Some(LogFormat::Json));

        for bad in [0, usize::MAX] {
            let limits = RawLimits {
                max_connections: Some(bad),
                ..RawLimits::default()
            };
            assert!(
                Config::new("/d".into(), "/s".into(), &limits).is_err(),
                "{bad}"
            );
        }
        let bad_timeout = RawLimits {
            request_timeout_secs: Some(f64::NAN),
            ..RawLimits::default()
        };
        assert!(Config::new("/d".into(), "/s".into(), &bad_timeout).is_err());
        assert!(Config::new("rel".into(), "/s".into(), &RawLimits::default()).is_err());
    }
}
