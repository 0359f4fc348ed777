//! Running kromad as a user service: socket activation as systemd does it (with systemd's own
//! `systemd-socket-activate`), the readiness notice, `install-service` into a temporary config
//! folder, and the unit files, man pages and completions as install.sh lays them out, checked with
//! `systemd-analyze verify` and `man`.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use kroma_protocol as protocol;
use kroma_tests::{bin, bin_dir, kromactl, wait_with_timeout};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// A private folder, as `$XDG_RUNTIME_DIR` is.
fn private_dir(path: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    path.to_owned()
}

/// `systemd-socket-activate -l SOCKET kromad …`: systemd's tool binds the socket, and on the first
/// connection runs kromad with it as fd 3 and `LISTEN_FDS=1`, exactly as a socket unit does.
fn socket_activated_kromad(folder: &Path, socket: &Path, extra: &[&str]) -> Activated {
    // It passes its own environment on, except NOTIFY_SOCKET: that one goes with -E.
    Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(socket)
        .arg("-E")
        .arg(format!("NOTIFY_SOCKET={}", folder.join("notify").display()))
        .args(extra)
        .arg(bin("kromad"))
        // A socket of its own on the command line: the passed one must win.
        .arg("--socket")
        .arg(folder.join("unused.sock"))
        .arg("--data-dir")
        .arg(folder.join("data"))
        .env("KROMA_SETTINGS", folder.join("user-settings.toml"))
        .env_remove("KROMA_SOCKET")
        .env_remove("KROMA_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map(Activated)
        .expect("systemd-socket-activate (from the systemd package) runs")
}

/// The activator, which becomes kromad: killed when dropped, so a failing test leaves no kromad.
struct Activated(Child);

impl std::ops::Deref for Activated {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Activated {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Activated {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn notice(notify: &UnixDatagram) -> String {
    let mut buffer = [0u8; 512];
    let length = notify.recv(&mut buffer).expect("a notice within 20 s");
    String::from_utf8_lossy(&buffer[..length]).into_owned()
}

#[tokio::test]
async fn kromad_serves_the_socket_systemd_passes_and_says_when_it_is_ready_and_stopping() {
    let temp = tempfile::tempdir().unwrap();
    let notify = UnixDatagram::bind(temp.path().join("notify")).unwrap();
    notify
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let run = private_dir(&temp.path().join("run"));
    let socket = run.join("kromad.sock");
    let mut activator = socket_activated_kromad(temp.path(), &socket, &[]);
    wait_for_file(&socket);

    // The first connection starts kromad, which accepts it on the passed socket.
    let client = kroma_client::Client::connect(&socket).await.unwrap();
    let status = client
        .call::<protocol::daemon::Status>(&protocol::NoParams {})
        .await
        .unwrap();
    assert_eq!(notice(&notify), "READY=1\n");
    assert_eq!(status.socket, socket.display().to_string());
    assert!(status.service.socket_activated);
    assert_eq!(status.pid, activator.id(), "kromad replaced the activator");
    assert!(!temp.path().join("unused.sock").exists());
    drop(client);

    let shown = kromactl(&socket, &["daemon", "status"]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("socket-activated"), "{text}");

    // Stopped, kromad says so first, and leaves the socket to the service manager, which would
    // start it again on the next connection.
    let stopped = kromactl(&socket, &["daemon", "stop"]);
    let text = String::from_utf8_lossy(&stopped.stdout);
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        text.contains("starts it again on the next connection"),
        "{text}"
    );
    assert_eq!(notice(&notify), "STOPPING=1\n");
    let exit = wait_with_timeout(&mut activator, Duration::from_secs(20));
    assert!(exit.success(), "{exit:?}");
    assert!(socket.exists(), "the socket belongs to the service manager");
}

#[test]
fn a_passed_socket_kromad_cannot_serve_is_refused_with_the_reason() {
    let temp = tempfile::tempdir().unwrap();
    let run = private_dir(&temp.path().join("run"));
    let socket = run.join("kromad.sock");
    let mut activator = socket_activated_kromad(temp.path(), &socket, &["--datagram"]);
    wait_for_file(&socket);
    let sender = UnixDatagram::unbound().unwrap();
    sender.send_to(b"hello", &socket).unwrap();
    let exit = wait_with_timeout(&mut activator, Duration::from_secs(20));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut activator.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(exit.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the socket passed by the service manager cannot be served")
            && stderr.contains("ListenStream="),
        "{stderr}"
    );
    assert!(!temp.path().join("data").join("kroma.db").exists());
}

/// kromactl with `HOME`, `XDG_CONFIG_HOME` and `XDG_RUNTIME_DIR` in `home`, and no session bus:
/// nothing reaches the real user's config or service manager.
fn kromactl_at_home(home: &Path, args: &[&str]) -> Output {
    Command::new(bin("kromactl"))
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_RUNTIME_DIR", private_dir(&home.join("run")))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("KROMA_SOCKET")
        .env_remove("KROMA_DATA_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run kromactl")
}

/// `systemd-analyze --user verify` of unit files, with `HOME` at `home`; answers its stderr.
fn verify(home: &Path, units: &[PathBuf], check_man: bool, man_path: Option<&Path>) -> String {
    let mut command = Command::new("systemd-analyze");
    command
        .arg("--user")
        .arg(format!("--man={}", if check_man { "yes" } else { "no" }))
        .arg("verify")
        .args(units)
        .env("HOME", home)
        .env("XDG_RUNTIME_DIR", private_dir(&home.join("run")));
    if let Some(man_path) = man_path {
        command.env("MANPATH", man_path);
    }
    let output = command.output().expect("systemd-analyze runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "systemd-analyze verify: {stderr}");
    stderr
}

#[test]
fn install_service_writes_units_systemd_accepts_into_the_users_config_only() {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("home");
    let real_unit = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".config/systemd/user/kromad.service"));
    let real_unit_existed = real_unit.as_ref().is_some_and(|unit| unit.exists());
    let outside = temp.path().join("elsewhere/data");

    let output = kromactl_at_home(
        &home,
        &[
            "daemon",
            "install-service",
            "--data-dir",
            outside.to_str().unwrap(),
        ],
    );
    // The units are written; with no user manager to reach, enabling them fails and says how
    // to finish.
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("wrote the units into")
            && stderr.contains("systemctl --user daemon-reload")
            && stderr.contains("systemctl --user enable --now kromad.socket kromad.service"),
        "{stderr}"
    );
    let dir = home.join(".config/systemd/user");
    let service = std::fs::read_to_string(dir.join("kromad.service")).unwrap();
    let socket = std::fs::read_to_string(dir.join("kromad.socket")).unwrap();
    let kromad = std::fs::canonicalize(bin("kromad")).unwrap();
    let outside = std::path::absolute(&outside).unwrap();
    assert!(
        service.contains(&format!(
            "\nExecStart={} --data-dir {}\n",
            kromad.display(),
            outside.display()
        )),
        "{service}"
    );
    assert!(
        service.contains(&format!("\nReadWritePaths=%h -{}\n", outside.display())),
        "{service}"
    );
    assert!(service.contains("\nType=notify\n") && service.contains("\nRestart=on-failure\n"));
    assert!(socket.contains("\nListenStream=%t/kroma/kromad.sock\n"));
    assert_eq!(
        real_unit.as_ref().is_some_and(|unit| unit.exists()),
        real_unit_existed,
        "the real config is untouched"
    );

    let stderr = verify(
        &home,
        &[dir.join("kromad.service"), dir.join("kromad.socket")],
        false,
        None,
    );
    assert!(stderr.trim().is_empty(), "warnings: {stderr}");

    // With the unit installed, `daemon start` asks systemd to start it; with no manager to ask,
    // it says so and starts kromad by hand (in this temporary home).
    let socket = private_dir(&home.join("run")).join("kroma-test.sock");
    let socket = socket.to_str().unwrap();
    let output = kromactl_at_home(&home, &["--socket", socket, "daemon", "start"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stderr.contains("is installed as a service")
            && stderr.contains("systemctl --user start kromad.socket kromad.service")
            && stderr.contains("starting it by hand"),
        "{stderr}"
    );
    let output = kromactl_at_home(&home, &["--socket", socket, "daemon", "stop"]);
    assert!(output.status.success(), "{output:?}");

    // Uninstalling needs the manager to disable the units first: refused, and nothing removed.
    let output = kromactl_at_home(&home, &["daemon", "uninstall-service"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(dir.join("kromad.service").exists());
    std::fs::remove_dir_all(&dir).unwrap();
    let output = kromactl_at_home(&home, &["daemon", "uninstall-service", "--json"]);
    assert!(output.status.success(), "{output:?}");
    let removed: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(removed["files"], serde_json::json!([]));
}

#[test]
fn install_service_now_refuses_while_a_kromad_started_by_hand_holds_the_socket() {
    let daemon = kroma_tests::Daemon::start();
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("home");
    let output = kromactl_at_home(
        &home,
        &[
            "--socket",
            daemon.socket.to_str().unwrap(),
            "daemon",
            "install-service",
            "--now",
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("a kromad started by hand (pid {})", daemon.pid()))
            && stderr.contains("kromactl daemon stop"),
        "{stderr}"
    );
    assert!(!home.join(".config/systemd/user/kromad.service").exists());
    let shown = kromactl(&daemon.socket, &["daemon", "status"]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("none (started by hand)"));
}

#[test]
fn install_lays_out_man_pages_completions_and_units_that_verify() {
    let temp = tempfile::tempdir().unwrap();
    let prefix = temp.path().join("prefix");
    let output = Command::new("bash")
        .arg(workspace_root().join("packaging/install-share.sh"))
        .arg(bin_dir())
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");

    let man = prefix.join("share/man/man1");
    for page in [
        "kromactl.1",
        "kromactl-daemon-install-service.1",
        "kromactl-run-plan.1",
        "kromad.1",
        "kroma-mcp.1",
    ] {
        assert!(man.join(page).is_file(), "{page} is missing");
    }
    let rendered = Command::new("man")
        .arg("-l")
        .arg(man.join("kromad.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "200")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(rendered.status.success(), "{rendered:?}");
    assert!(
        text.contains("socket activation") && text.contains("--data-dir"),
        "{text}"
    );

    let bash =
        std::fs::read_to_string(prefix.join("share/bash-completion/completions/kromactl")).unwrap();
    assert!(bash.contains("install-service") && bash.contains("complete -F"));
    let zsh = std::fs::read_to_string(prefix.join("share/zsh/site-functions/_kromactl")).unwrap();
    assert!(zsh.starts_with("#compdef kromactl"));
    let fish =
        std::fs::read_to_string(prefix.join("share/fish/vendor_completions.d/kromactl.fish"))
            .unwrap();
    assert!(fish.contains("complete -c kromactl"));

    // The templates as shipped, with kromad where install.sh puts it by default
    // (~/.local/bin), pass systemd's own check, their man: links included.
    let home = temp.path().join("home");
    std::fs::create_dir_all(home.join(".local/bin")).unwrap();
    std::os::unix::fs::symlink(bin("kromad"), home.join(".local/bin/kromad")).unwrap();
    let units = prefix.join("share/kroma/systemd");
    let stderr = verify(
        &home,
        &[units.join("kromad.service"), units.join("kromad.socket")],
        true,
        Some(&prefix.join("share/man")),
    );
    assert!(stderr.trim().is_empty(), "warnings: {stderr}");
    assert!(
        prefix
            .join("share/kroma/launchd/org.kroma.kromad.plist")
            .is_file()
    );
}
