//! Support for the end-to-end tests: start the real `kromad` binary on a temporary data dir and
//! socket, talk to it through the real client or raw lines, and stop it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kroma_client::Client;

/// The only stand-in the tests use: a local server that speaks the OpenAI Images API.
pub use kroma_fake_provider as fake_provider;

/// The folder holding the built `kromad` and `kromactl`: `KROMA_BIN_DIR`, else the cargo target
/// folder this test binary was built into.
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KROMA_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/e2e-<hash> -> target/<profile>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary inside target/<profile>/deps")
        .to_owned()
}

pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run the tests with `cargo nextest run --workspace` (or `cargo build --workspace --bins` first)",
        path.display()
    );
    path
}

/// A kromad process on its own temporary data dir and socket, killed when dropped.
pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Daemon {
    /// Starts kromad in a new temporary folder and waits until it answers.
    pub fn start() -> Daemon {
        let temp = tempfile::tempdir().expect("temp dir");
        let mut daemon = Daemon::start_in(temp.path(), &[]);
        daemon._temp = Some(temp);
        daemon
    }

    /// Starts kromad with `<folder>/data` and `<folder>/kromad.sock`, plus extra args.
    pub fn start_in(folder: &Path, extra_args: &[&str]) -> Daemon {
        Daemon::start_with_env(folder, extra_args, &[])
    }

    /// Like [`Daemon::start_in`], with extra environment variables (an empty value removes one).
    pub fn start_with_env(folder: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> Daemon {
        let socket = folder.join("kromad.sock");
        let data_dir = folder.join("data");
        let mut command = kromad_command(&socket, &data_dir);
        command.args(extra_args).stderr(Stdio::null());
        for (key, value) in env {
            if value.is_empty() {
                command.env_remove(key);
            } else {
                command.env(key, value);
            }
        }
        let child = command.spawn().expect("spawn kromad");
        let daemon = Daemon {
            child,
            socket,
            data_dir,
            _temp: None,
        };
        daemon.wait_ready();
        daemon
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut raw) = RawConnection::connect(&self.socket)
                && raw
                    .call(r#"{"jsonrpc":"2.0","id":0,"method":"daemon.version"}"#)
                    .contains("\"result\"")
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!(
            "kromad did not answer at {} within 20 s",
            self.socket.display()
        );
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.socket).await.expect("connect")
    }

    pub fn raw(&self) -> RawConnection {
        RawConnection::connect(&self.socket).expect("raw connect")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        signal(self.child.id(), "TERM");
        wait_with_timeout(&mut self.child, Duration::from_secs(20))
    }

    /// Sends SIGKILL: the daemon gets no chance to clean up.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn kromad_command(socket: &Path, data_dir: &Path) -> Command {
    let mut command = Command::new(bin("kromad"));
    command
        .arg("--socket")
        .arg(socket)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .env_remove("KROMA_SOCKET")
        .env_remove("KROMA_DATA_DIR")
        // The user's own run settings never leak into a test; tests that want some point
        // KROMA_SETTINGS at their own file.
        .env(
            "KROMA_SETTINGS",
            data_dir.with_file_name("user-settings.toml"),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    command
}

/// Runs `kromactl` with `--socket` and returns its output.
pub fn kromactl(socket: &Path, args: &[&str]) -> Output {
    Command::new(bin("kromactl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("KROMA_SOCKET")
        .stdin(Stdio::null())
        .output()
        .expect("run kromactl")
}

pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{name} {pid}");
}

pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "process {} did not exit in time",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A blocking newline-JSON connection, to send exactly the bytes a test wants.
pub struct RawConnection {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
}

impl RawConnection {
    pub fn connect(socket: &Path) -> std::io::Result<RawConnection> {
        let stream = UnixStream::connect(socket)?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(RawConnection {
            reader: BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    /// How long a read waits for the daemon (30 s unless set): longer for a call whose work
    /// scales with how busy the machine is.
    pub fn set_read_timeout(&self, timeout: Duration) {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
    }

    /// Writes bytes as they are (add the newline yourself).
    pub fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Reads one line; empty when the daemon closed the connection.
    pub fn read_line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read line");
        line
    }

    /// Sends one line and reads the answer.
    pub fn call(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes());
        self.read_line()
    }

    /// Sends one line and parses the JSON answer.
    pub fn call_json(&mut self, line: &str) -> serde_json::Value {
        let answer = self.call(line);
        serde_json::from_str(&answer)
            .unwrap_or_else(|err| panic!("answer {answer:?} is not JSON: {err}"))
    }

    pub fn shutdown_write(&self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Write);
    }
}

/// Where install.sh put the local models: `KROMA_MODELS_DIR`, else `$XDG_DATA_HOME/kroma/models`
/// (kromad's own default, which the daemons the tests start use too).
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KROMA_MODELS_DIR") {
        return PathBuf::from(dir);
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".local/share")
        });
    data.join("kroma/models")
}
