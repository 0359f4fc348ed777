//! systemd user units: `kromad.socket` (made at login; a connection starts kromad, and
//! connections made while it restarts wait) and `kromad.service` (kromad itself, `Type=notify`,
//! restarted after a crash), in `$XDG_CONFIG_HOME/systemd/user/`.

use std::path::{Path, PathBuf};

use super::{
    Installed, Removed, Setup, command_line, home, manager_command, unit_text, write_file,
};
use crate::output::Failure;

pub const SERVICE_TEMPLATE: &str = include_str!("../../../../packaging/systemd/kromad.service");
pub const SOCKET_TEMPLATE: &str = include_str!("../../../../packaging/systemd/kromad.socket");

const FINISH: &str = "is your systemd user manager running (`systemctl --user status`)? Once it is: \
     systemctl --user daemon-reload && systemctl --user enable --now kromad.socket kromad.service";

/// `$XDG_CONFIG_HOME/systemd/user` (`~/.config/systemd/user`).
fn unit_dir() -> Result<PathBuf, Failure> {
    directories::BaseDirs::new()
        .map(|dirs| dirs.config_dir().join("systemd").join("user"))
        .ok_or_else(|| Failure::other("cannot find your config folder", Some("set HOME")))
}

/// `kromad.service` in the user's unit folder, when install-service wrote it.
pub fn installed() -> Option<PathBuf> {
    unit_dir()
        .ok()
        .map(|dir| dir.join("kromad.service"))
        .filter(|unit| unit.is_file())
}

/// `systemctl --user start kromad.socket kromad.service`.
pub fn start() -> Result<String, String> {
    let args = ["--user", "start", "kromad.socket", "kromad.service"];
    let shown = format!("systemctl {}", args.join(" "));
    match std::process::Command::new("systemctl")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(output) if output.status.success() => Ok(shown),
        Ok(output) => Err(format!(
            "`{shown}` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        )),
        Err(err) => Err(format!("`{shown}` could not run: {err}")),
    }
}

pub fn install(setup: &Setup) -> Result<Installed, Failure> {
    let dir = unit_dir()?;
    let (service, socket) = render(setup, &home()?)?;
    let service_file = dir.join("kromad.service");
    let socket_file = dir.join("kromad.socket");
    write_file(&socket_file, &socket)?;
    write_file(&service_file, &service)?;
    let done = format!("wrote the units into {}", dir.display());
    let mut ran = Vec::new();
    let mut systemctl = |args: &[&str]| manager_command("systemctl", args, &mut ran, &done, FINISH);
    systemctl(&["--user", "daemon-reload"])?;
    systemctl(&["--user", "enable", "kromad.socket", "kromad.service"])?;
    if setup.now {
        systemctl(&["--user", "restart", "kromad.socket", "kromad.service"])?;
    }
    Ok(Installed {
        manager: "systemd",
        kromad: setup.kromad.clone(),
        files: vec![socket_file, service_file],
        ran,
        started: setup.now,
        logs: "journalctl --user -u kromad".to_owned(),
    })
}

pub fn uninstall() -> Result<Removed, Failure> {
    let dir = unit_dir()?;
    let files: Vec<PathBuf> = ["kromad.service", "kromad.socket"]
        .iter()
        .map(|name| dir.join(name))
        .filter(|file| file.exists())
        .collect();
    let mut ran = Vec::new();
    if files.is_empty() {
        return Ok(Removed {
            manager: "systemd",
            files,
            ran,
        });
    }
    let done = "nothing removed yet";
    let finish = "is your systemd user manager running (`systemctl --user status`)? Once it is, \
                  run this again";
    manager_command(
        "systemctl",
        &[
            "--user",
            "disable",
            "--now",
            "kromad.socket",
            "kromad.service",
        ],
        &mut ran,
        done,
        finish,
    )?;
    for file in &files {
        std::fs::remove_file(file)
            .map_err(|err| Failure::other(format!("removing {}: {err}", file.display()), None))?;
    }
    let done = "removed the units";
    manager_command(
        "systemctl",
        &["--user", "daemon-reload"],
        &mut ran,
        done,
        finish,
    )?;
    Ok(Removed {
        manager: "systemd",
        files,
        ran,
    })
}

/// The two units for `setup`: the templates with `ExecStart=` naming this kromad (and the
/// socket and data dir when they are not the defaults), and `ReadWritePaths=` also holding the
/// writable folders outside `home`.
pub fn render(setup: &Setup, home: &Path) -> Result<(String, String), Failure> {
    let exec: Vec<String> = command_line(setup)?.into_iter().map(exec_word).collect();
    let mut writable = vec!["%h".to_owned()];
    let mut outside: Vec<&PathBuf> = setup
        .data_dir
        .iter()
        .chain(&setup.writable)
        .filter(|dir| !dir.starts_with(home))
        .collect();
    outside.sort();
    outside.dedup();
    for dir in outside {
        // `-`: a folder that is gone must not keep kromad from starting.
        writable.push(quoted(&format!("-{}", specifiers(unit_text(dir)?))));
    }
    let service = replace_line(
        SERVICE_TEMPLATE,
        "ExecStart=",
        &format!("ExecStart={}", exec.join(" ")),
    );
    let service = replace_line(
        &service,
        "ReadWritePaths=",
        &format!("ReadWritePaths={}", writable.join(" ")),
    );
    let socket = match &setup.socket {
        Some(socket) => replace_line(
            SOCKET_TEMPLATE,
            "ListenStream=",
            &format!("ListenStream={}", specifiers(unit_text(socket)?)),
        ),
        None => SOCKET_TEMPLATE.to_owned(),
    };
    Ok((service, socket))
}

/// The template with its one line starting with `key` replaced.
fn replace_line(template: &str, key: &str, line: &str) -> String {
    template
        .lines()
        .map(|old| if old.starts_with(key) { line } else { old })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// `%` starts a specifier in unit files.
fn specifiers(text: &str) -> String {
    text.replace('%', "%%")
}

/// A word of `ExecStart=`: specifiers and `$` (variable expansion) escaped, quoted when it holds
/// white space. [`unit_text`] has already refused quotes and backslashes.
fn exec_word(text: &str) -> String {
    quoted(&specifiers(text).replace('$', "$$"))
}

fn quoted(word: &str) -> String {
    if word.chars().any(char::is_whitespace) {
        format!("\"{word}\"")
    } else {
        word.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> Setup {
        Setup {
            kromad: PathBuf::from("/home/ana/.local/bin/kromad"),
            socket: None,
            data_dir: None,
            writable: Vec::new(),
            now: false,
        }
    }

    #[test]
    fn the_default_units_differ_from_the_templates_only_in_the_binary() {
        let (service, socket) = render(&setup(), Path::new("/home/ana")).unwrap();
        assert_eq!(socket, SOCKET_TEMPLATE);
        let expected = SERVICE_TEMPLATE.replace(
            "ExecStart=%h/.local/bin/kromad",
            "ExecStart=/home/ana/.local/bin/kromad",
        );
        assert_eq!(service, expected);
    }

    #[test]
    fn folders_outside_home_become_writable_and_odd_characters_are_escaped() {
        let setup = Setup {
            kromad: PathBuf::from("/opt/kroma 1/bin/kromad"),
            socket: Some(PathBuf::from("/run/kroma%/k.sock")),
            data_dir: Some(PathBuf::from("/srv/kroma/data")),
            writable: vec![
                PathBuf::from("/home/ana/comics"),
                PathBuf::from("/mnt/art work"),
                PathBuf::from("/srv/kroma/data"),
            ],
            now: false,
        };
        let (service, socket) = render(&setup, Path::new("/home/ana")).unwrap();
        assert!(service.contains(
            "\nExecStart=\"/opt/kroma 1/bin/kromad\" --socket /run/kroma%%/k.sock --data-dir /srv/kroma/data\n"
        ));
        assert!(
            service.contains("\nReadWritePaths=%h \"-/mnt/art work\" -/srv/kroma/data\n"),
            "{service}"
        );
        assert!(socket.contains("\nListenStream=/run/kroma%%/k.sock\n"));
    }

    #[test]
    fn a_path_that_would_add_a_line_is_refused() {
        let setup = Setup {
            kromad: PathBuf::from("/tmp/x\nExecStartPre=/bin/rm -rf ~/kromad"),
            ..setup()
        };
        assert!(render(&setup, Path::new("/home/ana")).is_err());
        let setup = Setup {
            writable: vec![PathBuf::from("/srv/a\"b")],
            ..self::setup()
        };
        assert!(render(&setup, Path::new("/home/ana")).is_err());
    }
}
