//! The ONNX Runtime and the sessions of the local models.
//!
//! The runtime library is the file our installer put in the models dir; it is loaded once per
//! process, on first use, and only after checking that the file is there: `ort` panics when it has
//! to find a library on its own and cannot. Each model's sessions (`sessions` of them, each
//! running one inference at a time on `intra_threads` threads) are loaded on first use, shared by
//! every job, and dropped once idle for `idle`.
//!
//! Everything here blocks: call it from `spawn_blocking`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use kroma_protocol::{self as protocol, ErrorCode, ErrorKind};
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use crate::config::ModelLimits;
use crate::error::{Hint, Problem};
use crate::postprocess::local_models::{self, Installed, ModelKind};

/// The process's one ONNX Runtime environment (`ort` allows one per process, for good).
static ENVIRONMENT: OnceLock<Environment> = OnceLock::new();
/// Held while loading the runtime, so two first uses do not race.
static LOADING: Mutex<()> = Mutex::new(());

/// A loaded model, ready to run.
pub struct Model {
    pub installed: Installed,
    /// `Session::run` takes `&mut self`: each session runs one inference at a time.
    sessions: Vec<Mutex<Session>>,
    /// Where the next caller waits when every session is busy.
    next: AtomicUsize,
    /// When an inference last ended (or the model was loaded).
    last_used: Mutex<Instant>,
}

impl Model {
    /// Runs the model on one `f32` tensor and answers its first output and that output's shape.
    /// `shape` is the input's (NCHW).
    pub fn run(&self, shape: [usize; 4], input: &[f32]) -> Result<(Vec<i64>, Vec<f32>), Problem> {
        let mut session = self.session()?;
        let tensor = ort::value::TensorRef::from_array_view((shape, input))
            .map_err(|err| inference_error(&self.installed, err))?;
        let outputs = session
            .run(ort::inputs![self.installed.input.as_str() => tensor])
            .map_err(|err| inference_error(&self.installed, err))?;
        let output = outputs.get(self.installed.output.as_str()).ok_or_else(|| {
            Problem::new(
                ErrorKind::Infra,
                ErrorCode::ModelInterface,
                format!(
                    "{} has no output `{}`",
                    self.installed.name, self.installed.output
                ),
            )
            .with_hint(local_models::install_hint())
        })?;
        let (shape, data) = output
            .try_extract_tensor::<f32>()
            .map_err(|err| inference_error(&self.installed, err))?;
        let answer = (shape.to_vec(), data.to_vec());
        if let Ok(mut last_used) = self.last_used.lock() {
            *last_used = Instant::now();
        }
        Ok(answer)
    }

    /// A free session, else the next one in turn once it is free.
    fn session(&self) -> Result<MutexGuard<'_, Session>, Problem> {
        for session in &self.sessions {
            if let Ok(guard) = session.try_lock() {
                return Ok(guard);
            }
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.sessions.len();
        self.sessions[turn]
            .lock()
            .map_err(|_| internal("a model session was poisoned by a panic"))
    }
}

/// Finds, loads and keeps the local models.
pub struct Engine {
    dir: PathBuf,
    limits: ModelLimits,
    cache: Mutex<HashMap<String, Arc<Model>>>,
}

impl Engine {
    pub fn new(dir: PathBuf, limits: ModelLimits) -> Engine {
        Engine {
            dir,
            limits,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The installed model `name`, or the default model of `kind`, loaded. Blocking.
    pub fn model(&self, kind: ModelKind, name: Option<&str>) -> Result<Arc<Model>, Problem> {
        let installed = local_models::find(&self.dir, kind, name)?;
        let mut cache = self
            .cache
            .lock()
            .map_err(|_| internal("the model cache was poisoned by a panic"))?;
        if let Some(cached) = cache.get(&installed.name)
            && cached.installed == installed
        {
            return Ok(cached.clone());
        }
        let environment = environment(&installed.runtime)?;
        let started = Instant::now();
        let mut sessions = Vec::with_capacity(self.limits.sessions);
        for _ in 0..self.limits.sessions {
            let session = load_session(environment, &installed.path, self.limits.intra_threads)
                .map_err(|err| {
                    Problem::new(
                        ErrorKind::Infra,
                        ErrorCode::ModelUnloadable,
                        format!(
                            "ONNX Runtime cannot load {} ({}): {err}",
                            installed.name,
                            installed.path.display()
                        ),
                    )
                    .with_hint(Hint::new(
                        "verify the installed models; install them again if one is damaged",
                        protocol::Action::call::<protocol::local_model::List>(
                            [("verify", true.into())],
                            &[],
                        ),
                    ))
                })?;
            sessions.push(Mutex::new(session));
        }
        tracing::info!(model = %installed.name, ms = started.elapsed().as_millis() as u64, sessions = self.limits.sessions, threads = self.limits.intra_threads, "loaded a local model");
        let model = Arc::new(Model {
            installed: installed.clone(),
            sessions,
            next: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
        });
        cache.insert(installed.name.clone(), model.clone());
        Ok(model)
    }

    /// Drops the models no job holds and none used for `idle`.
    pub fn free_idle(&self) {
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        let idle = self.limits.idle;
        cache.retain(|name, model| {
            let in_use = Arc::strong_count(model) > 1;
            let recent = model
                .last_used
                .lock()
                .map(|last| last.elapsed() < idle)
                .unwrap_or(true);
            let keep = in_use || recent;
            if !keep {
                tracing::info!(model = %name, "freed an idle local model");
            }
            keep
        });
    }

    /// The names of the models loaded now.
    pub fn loaded(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .cache
            .lock()
            .map(|cache| cache.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Loads the ONNX Runtime library at `path` if it is not loaded yet: proof that it works.
    pub fn check_runtime(&self, path: &Path) -> Result<(), Problem> {
        environment(path).map(|_| ())
    }

    /// How often [`Engine::free_idle`] should run.
    pub fn sweep_every(&self) -> Duration {
        (self.limits.idle / 4).clamp(Duration::from_millis(200), Duration::from_secs(30))
    }
}

/// Loads the runtime library at `path` into this process, once.
fn environment(path: &Path) -> Result<&'static Environment, Problem> {
    if let Some(environment) = ENVIRONMENT.get() {
        return Ok(environment);
    }
    let _loading = LOADING
        .lock()
        .map_err(|_| internal("loading ONNX Runtime panicked before"))?;
    if let Some(environment) = ENVIRONMENT.get() {
        return Ok(environment);
    }
    // `ort` panics on a library it cannot find; it returns errors for one it cannot load.
    if !path.is_file() {
        return Err(Problem::new(
            ErrorKind::Infra,
            ErrorCode::RuntimeMissing,
            format!("the ONNX Runtime library {} is missing", path.display()),
        )
        .with_hint(local_models::install_hint()));
    }
    let unusable = |err: String| {
        Problem::new(
            ErrorKind::Infra,
            ErrorCode::RuntimeUnusable,
            format!(
                "the ONNX Runtime library {} cannot be used: {err}",
                path.display()
            ),
        )
        .with_hint(local_models::install_hint())
    };
    let environment = ort::init_from(path)
        .map_err(|err| unusable(err.to_string()))?
        .with_name("kromad")
        .build()
        .map_err(|err| unusable(err.to_string()))?;
    tracing::info!(library = %path.display(), "loaded ONNX Runtime");
    Ok(ENVIRONMENT.get_or_init(|| environment))
}

fn load_session(environment: &Environment, model: &Path, threads: usize) -> ort::Result<Session> {
    Session::builder(environment)?
        .with_optimization_level(GraphOptimizationLevel::All)?
        .with_intra_threads(threads)?
        .commit_from_file(model)
}

fn inference_error(model: &Installed, err: impl std::fmt::Display) -> Problem {
    Problem::new(
        ErrorKind::Internal,
        ErrorCode::InferenceFailed,
        format!("{} failed: {err}", model.name),
    )
}

fn internal(message: &str) -> Problem {
    Problem::new(ErrorKind::Internal, ErrorCode::Internal, message)
}
