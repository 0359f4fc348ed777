//! kromactl says why it cannot use a socket: another user's file, another user's kromad, or a
//! permission that keeps it out. It never calls that "not running", and never sends anything to
//! a socket that is not the user's own. Switching users needs root; as another user, the cases
//! that need it are skipped with a printed reason, and the permission cases run as that user.

use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kroma_tests::{RawConnection, bin, kromactl};

const NOBODY: u32 = 65534;
const EXIT_SOCKET_NOT_YOURS: i32 = 4;

fn own_uid() -> u32 {
    std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A temporary folder in /tmp that other users may enter (tempdir's default is 0700).
fn open_temp() -> tempfile::TempDir {
    let temp = tempfile::Builder::new()
        .prefix("kroma-sock")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    temp
}

/// A listening socket whose connections are noted (and closed) by a thread.
fn listen(socket: &Path) -> Arc<AtomicBool> {
    let listener = UnixListener::bind(socket).unwrap();
    let connected = Arc::new(AtomicBool::new(false));
    let noted = connected.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            noted.store(true, Ordering::SeqCst);
            drop(stream);
        }
    });
    connected
}

/// Runs `kromactl --socket SOCKET daemon status` as `uid`, from a copy in `folder` that user
/// can execute (the build folder may be closed to them).
fn kromactl_as(uid: u32, folder: &Path, socket: &Path) -> Output {
    let copy = folder.join("kromactl");
    if !copy.exists() {
        std::fs::copy(bin("kromactl"), &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    Command::new(&copy)
        .arg("--socket")
        .arg(socket)
        .args(["daemon", "status"])
        .env_remove("KROMA_SOCKET")
        .env("HOME", folder)
        .uid(uid)
        .gid(uid)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_socket_file_of_another_user_is_named_and_never_used() {
    if own_uid() != 0 {
        println!(
            "SKIPPED: making a file another user's needs root; this test runs as uid {}",
            own_uid()
        );
        return;
    }
    let temp = open_temp();
    let socket = temp.path().join("kromad.sock");
    let connected = listen(&socket);
    chown(&socket, Some(NOBODY), Some(NOBODY)).unwrap();

    let output = kromactl(&socket, &["daemon", "status"]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(EXIT_SOCKET_NOT_YOURS), "{err}");
    assert!(
        err.contains(&format!(
            "error: the socket at {} belongs to user {NOBODY}, not you (uid 0)",
            socket.display()
        )),
        "{err}"
    );
    assert!(err.contains("hint: send nothing there"), "{err}");
    assert!(!err.contains("not running"), "{err}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        !connected.load(Ordering::SeqCst),
        "kromactl connected to another user's socket"
    );
}

#[test]
fn a_kromad_of_another_user_is_named_not_called_not_running() {
    if own_uid() != 0 {
        println!(
            "SKIPPED: running kromad as another user needs root; this test runs as uid {}",
            own_uid()
        );
        return;
    }
    // kromad runs as `nobody`; its socket file is then handed to us, as someone replacing the
    // file would: only the server's credentials tell.
    let temp = open_temp();
    let kromad = temp.path().join("kromad");
    std::fs::copy(bin("kromad"), &kromad).unwrap();
    std::fs::set_permissions(&kromad, std::fs::Permissions::from_mode(0o755)).unwrap();
    let home = temp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chown(&home, Some(NOBODY), Some(NOBODY)).unwrap();
    let socket = home.join("kromad.sock");
    let mut child = Command::new(&kromad)
        .arg("--socket")
        .arg(&socket)
        .arg("--data-dir")
        .arg(home.join("data"))
        .env("HOME", &home)
        .env("RUST_LOG", "warn")
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while RawConnection::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "kromad as nobody never listened");
        assert!(child.try_wait().unwrap().is_none(), "kromad exited early");
        std::thread::sleep(Duration::from_millis(10));
    }
    chown(&socket, Some(0), Some(0)).unwrap();

    let output = kromactl(&socket, &["daemon", "status"]);
    let _ = child.kill();
    let _ = child.wait();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(EXIT_SOCKET_NOT_YOURS), "{err}");
    assert!(
        err.contains(&format!(
            "error: the socket at {} is served by user {NOBODY}, not you (uid 0)",
            socket.display()
        )),
        "{err}"
    );
    assert!(!err.contains("not running"), "{err}");
}

/// Where the permission cases run: as `nobody` when root (root passes every permission check),
/// else as the user running the tests.
struct Runner {
    uid: u32,
}

impl Runner {
    fn new() -> Runner {
        Runner {
            uid: if own_uid() == 0 { NOBODY } else { own_uid() },
        }
    }

    fn kromactl(&self, folder: &Path, socket: &Path) -> Output {
        if self.uid == own_uid() {
            kromactl(socket, &["daemon", "status"])
        } else {
            kromactl_as(self.uid, folder, socket)
        }
    }

    /// Makes `path` the runner's own, where the test may change owners.
    fn own(&self, path: &Path) {
        if self.uid != own_uid() {
            chown(path, Some(self.uid), Some(self.uid)).unwrap();
        }
    }
}

#[test]
fn a_folder_the_user_cannot_enter_is_named() {
    let runner = Runner::new();
    let temp = open_temp();
    let folder = temp.path().join("closed");
    std::fs::create_dir(&folder).unwrap();
    let socket: PathBuf = folder.join("kromad.sock");
    let connected = listen(&socket);
    // Closed to the runner: mode 000 for its own folder, or another user's 0700 folder.
    if runner.uid == own_uid() {
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o000)).unwrap();
    } else {
        std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    }

    let output = runner.kromactl(temp.path(), &socket);
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(EXIT_SOCKET_NOT_YOURS), "{err}");
    assert!(
        err.contains(&format!(
            "error: permission denied on {}, the folder holding the socket at {}",
            folder.display(),
            socket.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("hint: check `ls -ld {}`", folder.display())),
        "{err}"
    );
    assert!(!connected.load(Ordering::SeqCst));
}

#[test]
fn a_socket_the_user_may_not_write_is_named() {
    let runner = Runner::new();
    let temp = open_temp();
    let socket = temp.path().join("kromad.sock");
    let connected = listen(&socket);
    runner.own(&socket);
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o000)).unwrap();

    let output = runner.kromactl(temp.path(), &socket);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(EXIT_SOCKET_NOT_YOURS), "{err}");
    assert!(
        err.contains(&format!(
            "error: permission denied on the socket at {}",
            socket.display()
        )),
        "{err}"
    );
    assert!(err.contains("0600 for the user who started it"), "{err}");
    assert!(!connected.load(Ordering::SeqCst));
}
