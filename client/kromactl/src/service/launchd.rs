//! A launchd agent of the logged-in user (`~/Library/LaunchAgents/org.kroma.kromad.plist`):
//! started at login, restarted when it exits with a failure. kromad binds its own socket there.

use std::path::{Path, PathBuf};

use super::{
    Installed, Removed, Setup, command_line, home, manager_command, unit_text, write_file,
};
use crate::output::Failure;

pub const TEMPLATE: &str = include_str!("../../../../packaging/launchd/org.kroma.kromad.plist");
const LABEL: &str = "org.kroma.kromad";

fn plist_file(home: &Path) -> PathBuf {
    home.join("Library/LaunchAgents")
        .join(format!("{LABEL}.plist"))
}

fn log_file(home: &Path) -> PathBuf {
    home.join("Library/Logs/kroma/kromad.log")
}

/// `gui/<uid>`: the launchd domain of the logged-in user.
fn domain() -> String {
    #[cfg(unix)]
    let uid = nix::unistd::getuid().as_raw();
    #[cfg(not(unix))]
    let uid = 0;
    format!("gui/{uid}")
}

pub fn install(setup: &Setup) -> Result<Installed, Failure> {
    let home = home()?;
    let file = plist_file(&home);
    let log = log_file(&home);
    let text = render(setup, &log)?;
    if let Some(folder) = log.parent() {
        std::fs::create_dir_all(folder)
            .map_err(|err| Failure::other(format!("creating {}: {err}", folder.display()), None))?;
    }
    write_file(&file, &text)?;
    let mut ran = Vec::new();
    if setup.now {
        let domain = domain();
        // A loaded older job must go before the new one loads; not loaded is fine.
        let _ = std::process::Command::new("launchctl")
            .args(["bootout", &format!("{domain}/{LABEL}")])
            .output();
        let path = file.display().to_string();
        manager_command(
            "launchctl",
            &["bootstrap", &domain, &path],
            &mut ran,
            &format!("wrote {path}"),
            "it loads at your next login; or run `launchctl bootstrap gui/$(id -u) <that file>`",
        )?;
    }
    Ok(Installed {
        manager: "launchd",
        kromad: setup.kromad.clone(),
        files: vec![file],
        ran,
        started: setup.now,
        logs: log.display().to_string(),
    })
}

pub fn uninstall() -> Result<Removed, Failure> {
    let file = plist_file(&home()?);
    let mut ran = Vec::new();
    if !file.exists() {
        return Ok(Removed {
            manager: "launchd",
            files: Vec::new(),
            ran,
        });
    }
    let target = format!("{}/{LABEL}", domain());
    // Not loaded (already stopped) is not a failure here.
    if std::process::Command::new("launchctl")
        .args(["bootout", &target])
        .output()
        .is_ok_and(|output| output.status.success())
    {
        ran.push(format!("launchctl bootout {target}"));
    }
    std::fs::remove_file(&file)
        .map_err(|err| Failure::other(format!("removing {}: {err}", file.display()), None))?;
    Ok(Removed {
        manager: "launchd",
        files: vec![file],
        ran,
    })
}

/// The template with the program's arguments and the log file filled in.
pub fn render(setup: &Setup, log: &Path) -> Result<String, Failure> {
    let program = command_line(setup)?
        .into_iter()
        .map(|arg| format!("\t\t<string>{}</string>", xml(arg)))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(TEMPLATE
        .replace("\t\t<string>@KROMAD@</string>", &program)
        .replace(
            "<string>@LOG@</string>",
            &format!("<string>{}</string>", xml(unit_text(log)?)),
        )
        // The template's comment names the placeholders; the installed file has none.
        .replace("@KROMAD@", "the installed kromad")
        .replace("@LOG@", "the log file"))
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_runs_this_kromad_and_logs_to_the_users_library() {
        let setup = Setup {
            kromad: PathBuf::from("/Users/ana/bin/kromad"),
            socket: None,
            data_dir: Some(PathBuf::from("/Volumes/Art & Co/kroma")),
            writable: Vec::new(),
            now: false,
        };
        let text = render(
            &setup,
            Path::new("/Users/ana/Library/Logs/kroma/kromad.log"),
        )
        .unwrap();
        assert!(text.contains(
            "\t\t<string>/Users/ana/bin/kromad</string>\n\t\t<string>--data-dir</string>\n\t\t<string>/Volumes/Art &amp; Co/kroma</string>\n"
        ));
        assert!(text.contains("<string>/Users/ana/Library/Logs/kroma/kromad.log</string>"));
        assert!(!text.contains('@'), "{text}");
        assert!(text.contains("<key>Label</key>\n\t<string>org.kroma.kromad</string>"));
    }
}
