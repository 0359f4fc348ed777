//! One-time codes in desktop notifications, against a real desktop's parts: a private session
//! bus (`dbus-daemon`), a real notification server (dunst on a virtual X display, Xvfb), and
//! `dbus-monitor` reading what kromad sent. The code the person sees is the one that approves.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kroma_protocol as protocol;
use protocol::instruction::{self as wire, Approval, InstructionState};

use crate::instructions::{FAST, agent, get, propose, settled};
use crate::runs::{World, error_of, fake, setup};

/// Processes killed when dropped.
struct Processes(Vec<Child>);

impl Drop for Processes {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The lines a child prints, read on a thread of their own.
fn lines_of(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                return;
            }
        }
    });
    receiver
}

fn first_line(lines: &mpsc::Receiver<String>, what: &str) -> String {
    lines
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("{what} printed nothing within 20 s"))
}

/// A desktop session of its own: a session bus, a virtual display and dunst serving
/// `org.freedesktop.Notifications` on that bus, and a monitor of the `Notify` calls.
struct Desktop {
    address: String,
    notify_calls: mpsc::Receiver<String>,
    _processes: Processes,
    folder: tempfile::TempDir,
}

impl Desktop {
    fn start() -> Desktop {
        let folder = tempfile::tempdir().unwrap();
        let mut processes = Processes(Vec::new());
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon runs");
        let bus_lines = lines_of(bus.stdout.take().unwrap());
        processes.0.push(bus);
        let address = first_line(&bus_lines, "dbus-daemon");

        // Xvfb picks a free display and prints its number once it accepts clients.
        let mut display = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-nolisten",
                "tcp",
                "-screen",
                "0",
                "640x480x24",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb (package xvfb) runs");
        let display_lines = lines_of(display.stdout.take().unwrap());
        processes.0.push(display);
        let number = first_line(&display_lines, "Xvfb");

        std::fs::write(folder.path().join("dunstrc"), "[global]\n").unwrap();
        let dunst = Command::new("dunst")
            .arg("-config")
            .arg(folder.path().join("dunstrc"))
            .env("DISPLAY", format!(":{number}"))
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dunst (package dunst) runs");
        processes.0.push(dunst);
        let deadline = Instant::now() + Duration::from_secs(20);
        while !notification_server_on(&address) {
            assert!(Instant::now() < deadline, "dunst never took the bus name");
            std::thread::sleep(Duration::from_millis(20));
        }

        let mut monitor = Command::new("dbus-monitor")
            .arg("--address")
            .arg(&address)
            .arg("type='method_call',interface='org.freedesktop.Notifications',member='Notify'")
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-monitor runs");
        let notify_calls = lines_of(monitor.stdout.take().unwrap());
        processes.0.push(monitor);
        // It announces itself (NameAcquired) once it is monitoring.
        first_line(&notify_calls, "dbus-monitor");
        Desktop {
            address,
            notify_calls,
            _processes: processes,
            folder,
        }
    }

    /// The summary and body of the next `Notify` call.
    fn next_notification(&self) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut strings: Vec<String> = Vec::new();
        // A string with line breaks goes on over several lines until one ends in a quote.
        let mut open: Option<String> = None;
        let mut in_call = false;
        while Instant::now() < deadline {
            let Ok(line) = self.notify_calls.recv_timeout(Duration::from_millis(200)) else {
                continue;
            };
            if let Some(mut text) = open.take() {
                text.push('\n');
                text.push_str(&line);
                open = Some(text);
            } else if line.starts_with("method call") && line.contains("member=Notify") {
                in_call = true;
                strings.clear();
                continue;
            } else if in_call && let Some(text) = line.trim_start().strip_prefix("string \"") {
                open = Some(text.to_owned());
            }
            if let Some(text) = open.take_if(|text| text.ends_with('"')) {
                strings.push(text.trim_end_matches('"').to_owned());
                // app name, icon, summary, body
                if strings.len() == 4 {
                    return (strings[2].clone(), strings[3].clone());
                }
            }
        }
        panic!("no desktop notification within 20 s");
    }
}

fn notification_server_on(address: &str) -> bool {
    Command::new("dbus-send")
        .arg(format!("--bus={address}"))
        .args([
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            "string:org.freedesktop.Notifications",
        ])
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).contains("boolean true"))
}

/// The digits of `Kroma code 123 456: …`.
fn code_in(summary: &str) -> String {
    let digits: String = summary
        .strip_prefix("Kroma code ")
        .and_then(|rest| rest.split(':').next())
        .unwrap_or_else(|| panic!("no code in {summary:?}"))
        .to_owned();
    assert_eq!(digits.len(), 7, "{summary:?}");
    digits
}

#[tokio::test]
async fn a_waiting_instruction_shows_its_code_on_the_desktop_and_that_code_approves_it() {
    let desktop = Desktop::start();
    let address: &'static str = Box::leak(desktop.address.clone().into_boxed_str());
    // Secrets in the file store: this bus has no unlocked keyring, and it must not start one.
    let config = format!(
        "[secrets]\nstore = \"file\"\nkey_file = \"{}\"\n",
        desktop.folder.path().join("secrets.key").display()
    );
    let world = World::start_with_env(
        FAST,
        &config,
        fake(Duration::ZERO).await,
        &[("DBUS_SESSION_BUS_ADDRESS", address)],
    )
    .await;
    let person = world.client().await;
    let scene = setup(&person, &world.fake, false).await;
    let voice = agent(&world, "voice").await;
    let instruction = propose(&voice, &scene, 1).await;
    assert_eq!(instruction.state, InstructionState::AwaitingConfirmation);

    let (summary, body) = desktop.next_notification();
    let spoken = code_in(&summary);
    assert!(
        summary.ends_with(&format!("approve up to ${:.2}", instruction.max_cost_usd)),
        "{summary}"
    );
    assert!(
        body.contains("Project noir: the agent “voice” asks for “Draw the alley at night”")
            && body.contains("valid for 10 minutes")
            && body.contains("Or confirm on http://127.0.0.1:"),
        "{body}"
    );

    // The agent never saw it; the person reads it out, as spoken, and the agent submits it.
    let approved = voice
        .call::<wire::ConfirmCode>(&wire::ConfirmCodeParams {
            id: instruction.id.clone(),
            code: spoken.clone(),
        })
        .await
        .expect("the code from the notification approves");
    assert_eq!(approved.approval, Some(Approval::Code));
    let done = settled(&voice, &instruction.id).await;
    assert_eq!(done.state, InstructionState::Done, "{done:#?}");

    // A person's `instruction code` replaces the notification's: the code shown is then refused
    // and the person's own approves.
    let second = propose(&voice, &scene, 1).await;
    let (summary, _) = desktop.next_notification();
    let shown = code_in(&summary);
    let own = person
        .call::<wire::Code>(&wire::InstructionRef {
            id: second.id.clone(),
        })
        .await
        .expect("a person's code");
    if own.code != shown.replace(' ', "") {
        let refused = voice
            .call::<wire::ConfirmCode>(&wire::ConfirmCodeParams {
                id: second.id.clone(),
                code: shown,
            })
            .await;
        assert_eq!(error_of(refused).code.as_str(), "invalid_code");
    }
    let approved = voice
        .call::<wire::ConfirmCode>(&wire::ConfirmCodeParams {
            id: second.id.clone(),
            code: own.code,
        })
        .await
        .expect("the person's own code approves");
    assert_eq!(approved.approval, Some(Approval::Code));
    assert_ne!(
        get(&voice, &second.id).await.state,
        InstructionState::AwaitingConfirmation
    );
}
