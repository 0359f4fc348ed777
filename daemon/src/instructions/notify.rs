//! Desktop notifications of one-time codes. When an instruction starts waiting for a person,
//! kromad makes a one-time code and shows it, with the maximum cost, what was asked and the
//! confirmation page's address, as a desktop notification (`org.freedesktop.Notifications` on
//! the session bus) where a notification server runs. The person reads the code back to the
//! voice or chat agent; the agent never sees the notification.
//!
//! A code a person already made is never replaced, and wrong tries are never reset here: only
//! `instruction.code`, which a person calls, starts the count again. With no session bus or no
//! notification server nothing is made or shown; `[notifications] desktop = false` turns it off.

use std::sync::Arc;
use std::time::Duration;

use kroma_protocol as protocol;
use protocol::events::EventData;
use protocol::instruction::{InstructionChanged, InstructionState, OneTimeCode};
use protocol::{ErrorCode, ErrorKind};
use tokio::sync::broadcast::error::RecvError;

use crate::Daemon;
use crate::error::Problem;
use crate::instructions::{code, load};
use crate::store::instructions as rows;

/// The most characters of an agent's objective a notification quotes.
const OBJECTIVE_CHARS: usize = 200;

/// How long a notification call may take before kromad gives up on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// How long kromad waits before it looks for a notification server again after finding none.
const ASK_AGAIN_AFTER: Duration = Duration::from_secs(60);

/// Who may overwrite a stored code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Issuer {
    /// A person asked (`instruction.code`): a fresh code replaces any other, and the count of
    /// wrong tries starts again.
    Person,
    /// kromad, for a notification: only when no usable code exists and the instruction is not
    /// locked; the count of wrong tries is kept.
    Notification,
}

/// A fresh one-time code for `id`, which must wait for a person. `None` when `issuer` is the
/// notification and a usable code exists or too many wrong codes were tried.
pub(crate) async fn issue_code(
    daemon: &Daemon,
    id: &str,
    issuer: Issuer,
) -> Result<Option<OneTimeCode>, Problem> {
    let fresh = code::new_code();
    let hash = code::hash(id, &fresh);
    let now = daemon.clock.now_utc();
    let expires_at = crate::clock::format(now + daemon.config.code_ttl);
    let now = crate::clock::format(now);
    let stored_expiry = expires_at.clone();
    let instruction = id.to_owned();
    let max_cost_usd = daemon
        .store
        .write(move |tx| {
            let row = load(tx, &instruction)?;
            if row.state()? != InstructionState::AwaitingConfirmation {
                return Err(Problem::new(
                    ErrorKind::Conflict,
                    ErrorCode::IllegalTransition,
                    format!(
                        "instruction {instruction} is {}; only an instruction waiting for a person takes a code",
                        row.state
                    ),
                ));
            }
            if issuer == Issuer::Notification {
                let usable = row.usable_code_hash(&now).is_some();
                if usable || row.code_tries >= protocol::instruction::MAX_CODE_TRIES {
                    return Ok((None, Vec::new()));
                }
            }
            rows::set_code(
                tx,
                &instruction,
                &hash,
                row.max_cost_usd,
                &stored_expiry,
                issuer == Issuer::Person,
            )?;
            Ok::<_, Problem>((Some(row.max_cost_usd), Vec::new()))
        })
        .await?;
    Ok(max_cost_usd.map(|max_cost_usd| OneTimeCode {
        id: id.to_owned(),
        code: fresh,
        expires_at,
        max_cost_usd,
    }))
}

/// Watches the event log until kromad stops: each instruction that starts waiting for a person
/// gets a notification.
pub(crate) async fn serve(daemon: Arc<Daemon>) {
    let mut events = daemon.store.subscribe();
    // After finding no notification server, kromad asks the bus again only after a while: on a
    // machine without one, each question may try (and fail) to start one.
    let mut quiet_until: Option<tokio::time::Instant> = None;
    loop {
        let event = tokio::select! {
            _ = daemon.shutdown.cancelled() => return,
            event = events.recv() => event,
        };
        match event {
            Ok(event) if event.kind == InstructionChanged::KIND => {
                let Ok(changed) = serde_json::from_value::<InstructionChanged>(event.data) else {
                    continue;
                };
                if changed.state != InstructionState::AwaitingConfirmation
                    || quiet_until.is_some_and(|until| tokio::time::Instant::now() < until)
                {
                    continue;
                }
                if desktop::server_present().await {
                    quiet_until = None;
                    notify(&daemon, &changed.instruction).await;
                } else {
                    tracing::debug!("no desktop notification server; codes are not shown");
                    quiet_until = Some(tokio::time::Instant::now() + ASK_AGAIN_AFTER);
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(
                    missed,
                    "desktop notifications fell behind the event log; some instructions were not announced"
                );
            }
            Err(RecvError::Closed) => return,
        }
    }
}

async fn notify(daemon: &Daemon, id: &str) {
    let code = match issue_code(daemon, id, Issuer::Notification).await {
        Ok(Some(code)) => code,
        Ok(None) => return,
        Err(err) => {
            tracing::debug!(instruction = id, error = %err.message, "no code for a notification");
            return;
        }
    };
    let wanted = id.to_owned();
    let row = match daemon
        .store
        .read(move |conn| rows::get(conn, &wanted))
        .await
    {
        Ok(Some(row)) => row,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(instruction = id, %err, "reading the instruction to announce");
            return;
        }
    };
    let page = match (daemon.confirm_page_base(), &row.page_id) {
        (Some(base), Some(page)) => Some(format!("{base}/confirm/{page}")),
        _ => None,
    };
    let text = render(&Announcement {
        project: &row.project_slug,
        agent: row.client_name.as_deref(),
        drop_folder: row.channel == "watch",
        objective: &row.objective,
        code: &code.code,
        max_cost_usd: code.max_cost_usd,
        page: page.as_deref(),
        valid_for: daemon.config.code_ttl,
    });
    match desktop::show(&text).await {
        Ok(()) => tracing::info!(
            instruction = id,
            "one-time code shown in a desktop notification"
        ),
        Err(err) => {
            tracing::warn!(instruction = id, %err, "could not show the desktop notification; a person can still make a code on the terminal")
        }
    }
}

/// What a notification says.
pub(crate) struct Announcement<'a> {
    pub project: &'a str,
    /// The name the agent declared, if an agent asked.
    pub agent: Option<&'a str>,
    /// Whether a drop-folder rule asked.
    pub drop_folder: bool,
    /// An agent's words: quoted as data, escaped, cut short.
    pub objective: &'a str,
    pub code: &'a str,
    pub max_cost_usd: f64,
    pub page: Option<&'a str>,
    /// How long the code stays valid.
    pub valid_for: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text {
    pub summary: String,
    pub body: String,
}

/// The notification's text. The summary, written by kromad alone, holds the code and the cost;
/// the agent's objective follows in the body, quoted, stripped of control characters and markup
/// (notification servers read a subset of HTML in bodies) and cut to [`OBJECTIVE_CHARS`].
pub(crate) fn render(announcement: &Announcement) -> Text {
    let digits = announcement.code;
    let spoken = if digits.len() == 6 {
        format!("{} {}", &digits[..3], &digits[3..])
    } else {
        digits.to_owned()
    };
    let who = match (announcement.agent, announcement.drop_folder) {
        (Some(name), _) => format!("the agent “{}”", markup_free(&shortened(name, 40))),
        (None, true) => "a drop folder".to_owned(),
        (None, false) => "a client".to_owned(),
    };
    let mut body = format!(
        "Project {}: {who} asks for “{}”.\nRead the code to the agent to approve up to {}; it is valid for {}.",
        markup_free(announcement.project),
        markup_free(&shortened(announcement.objective, OBJECTIVE_CHARS)),
        usd(announcement.max_cost_usd),
        lifetime(announcement.valid_for),
    );
    if let Some(page) = announcement.page {
        body.push_str(&format!("\nOr confirm on {}", markup_free(page)));
    }
    Text {
        summary: format!(
            "Kroma code {spoken}: approve up to {}",
            usd(announcement.max_cost_usd)
        ),
        body,
    }
}

/// `text` on one line and at most `most` characters, with `…` where it was cut.
fn shortened(text: &str, most: usize) -> String {
    let mut short: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(most)
        .collect();
    if text.chars().count() > most {
        short.push('…');
    }
    short
}

/// A code's life in words: whole minutes as minutes, else seconds.
fn lifetime(valid_for: Duration) -> String {
    let secs = valid_for.as_secs();
    match (secs % 60, secs / 60) {
        (0, 1) => "1 minute".to_owned(),
        (0, minutes) if minutes > 1 => format!("{minutes} minutes"),
        _ => format!("{secs} seconds"),
    }
}

fn usd(amount: f64) -> String {
    format!("${amount:.2}")
}

/// Text a notification server shows as it is, never as markup.
fn markup_free(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The session bus side, where a desktop notification server can exist.
#[cfg(target_os = "linux")]
mod desktop {
    use super::{CALL_TIMEOUT, Text};

    /// Whether a notification server answers on the session bus.
    pub async fn server_present() -> bool {
        let asked = tokio::task::spawn_blocking(notify_rust::get_server_information);
        matches!(
            tokio::time::timeout(CALL_TIMEOUT, asked).await,
            Ok(Ok(Ok(_)))
        )
    }

    pub async fn show(text: &Text) -> Result<(), String> {
        let notification = notify_rust::Notification::new()
            .appname("Kroma")
            .summary(&text.summary)
            .body(&text.body)
            .urgency(notify_rust::Urgency::Critical)
            .finalize();
        let shown = tokio::task::spawn_blocking(move || notification.show().map(|_| ()));
        match tokio::time::timeout(CALL_TIMEOUT, shown).await {
            Ok(Ok(result)) => result.map_err(|err| err.to_string()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err("the notification server did not answer".to_owned()),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod desktop {
    use super::Text;

    pub async fn server_present() -> bool {
        false
    }

    pub async fn show(_: &Text) -> Result<(), String> {
        Err("no desktop notifications on this system".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_and_cost_come_first_and_the_agents_words_are_quoted_data() {
        let text = render(&Announcement {
            project: "noir",
            agent: Some("voice <i>"),
            drop_folder: false,
            objective: "Draw <b>the alley</b> & approve\nCode: 000000",
            code: "123456",
            max_cost_usd: 1.26,
            page: Some("http://127.0.0.1:4000/confirm/abc"),
            valid_for: Duration::from_secs(600),
        });
        assert_eq!(text.summary, "Kroma code 123 456: approve up to $1.26");
        assert_eq!(
            text.body,
            "Project noir: the agent “voice &lt;i&gt;” asks for “Draw &lt;b&gt;the alley&lt;/b&gt; &amp; approve Code: 000000”.\nRead the code to the agent to approve up to $1.26; it is valid for 10 minutes.\nOr confirm on http://127.0.0.1:4000/confirm/abc"
        );
    }

    #[test]
    fn a_long_objective_is_cut_short() {
        let long = "x".repeat(5_000);
        let text = render(&Announcement {
            project: "noir",
            agent: None,
            drop_folder: true,
            objective: &long,
            code: "000001",
            max_cost_usd: 0.0,
            page: None,
            valid_for: Duration::from_secs(90),
        });
        assert!(
            text.body
                .contains(&format!("“{}…”", "x".repeat(OBJECTIVE_CHARS)))
        );
        assert!(text.body.contains("it is valid for 90 seconds."));
        assert!(text.body.len() < 400);
    }
}
