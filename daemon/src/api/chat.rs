//! `chat.*` handlers: sessions and messages, a voice recording stored as an `audio` asset, and a
//! session's log with the instructions its messages produced.

use std::path::PathBuf;
use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::asset::AssetKind;
use protocol::chat::{
    AppendParams, ChatLog, ChatMessage, ChatSession, ChatSessionList, CreateParams, ListParams,
    LogParams, Role,
};
use protocol::{ErrorCode, ErrorKind};

use super::{find_project, parse_limit};
use crate::Daemon;
use crate::error::Problem;
use crate::instructions::{Caller, check_text};
use crate::projects::import::Candidate;
use crate::store::NewEvent;
use crate::store::chat::{self as rows, MessageRow, SessionRow};

/// Messages one `chat.log` answers with unless it asks for fewer or more.
const DEFAULT_LOG_LIMIT: u32 = 200;

pub async fn create(daemon: Arc<Daemon>, params: CreateParams) -> Result<ChatSession, Problem> {
    let project = find_project(&daemon, &params.project).await?;
    let title = params.title.unwrap_or_else(|| "New session".to_owned());
    check_text("title", &title, protocol::chat::MAX_TITLE_CHARS, true)?;
    let id = uuid::Uuid::new_v4().to_string();
    let at = daemon.clock.now();
    let row = daemon
        .store
        .write(move |tx| {
            rows::insert_session(tx, &id, &project.id, title.trim(), &at)?;
            let row = session(tx, &id)?;
            let event = NewEvent::of(
                at,
                Some(row.project_slug.clone()),
                &protocol::chat::ChatCreated {
                    session: id.clone(),
                },
            );
            Ok::<_, Problem>((row, vec![event]))
        })
        .await?;
    Ok(session_to_proto(&row))
}

pub async fn list(daemon: Arc<Daemon>, params: ListParams) -> Result<ChatSessionList, Problem> {
    let limit = parse_limit(params.limit)?;
    let project_id = match &params.project {
        Some(project) => Some(find_project(&daemon, project).await?.id),
        None => None,
    };
    let rows = daemon
        .store
        .read(move |conn| rows::list_sessions(conn, project_id.as_deref(), limit))
        .await?;
    Ok(ChatSessionList {
        sessions: rows.iter().map(session_to_proto).collect(),
    })
}

pub async fn append(
    daemon: Arc<Daemon>,
    caller: Caller,
    params: AppendParams,
) -> Result<ChatMessage, Problem> {
    check_text(
        "text",
        &params.text,
        protocol::chat::MAX_MESSAGE_CHARS,
        false,
    )?;
    let session_row = {
        let id = params.session.clone();
        daemon
            .store
            .read(move |conn| Ok(session(conn, &id)))
            .await??
    };
    let audio_asset = match &params.audio_path {
        Some(path) => Some(import_recording(&daemon, &caller, &session_row, path).await?),
        None => None,
    };
    let id = uuid::Uuid::new_v4().to_string();
    let at = daemon.clock.now();
    let role = params.role;
    let message = daemon
        .store
        .write(move |tx| {
            // The session may have been deleted with its project meanwhile.
            let session_row = session(tx, &session_row.id)?;
            let row = rows::append(
                tx,
                &id,
                &session_row.id,
                role.as_str(),
                &params.text,
                audio_asset.as_deref(),
                &at,
            )?;
            let event = NewEvent::of(
                at,
                Some(session_row.project_slug.clone()),
                &protocol::chat::ChatAppended {
                    session: session_row.id.clone(),
                    message: row.id.clone(),
                    seq: row.seq,
                    role,
                },
            );
            Ok::<_, Problem>((row, vec![event]))
        })
        .await?;
    message_to_proto(&message)
}

pub async fn log(daemon: Arc<Daemon>, params: LogParams) -> Result<ChatLog, Problem> {
    let limit = match params.limit.unwrap_or(DEFAULT_LOG_LIMIT) {
        limit @ 1..=protocol::chat::MAX_LOG_LIMIT => limit,
        _ => {
            return Err(Problem::validation(
                ErrorCode::InvalidLimit,
                format!(
                    "limit must be between 1 and {}",
                    protocol::chat::MAX_LOG_LIMIT
                ),
            ));
        }
    };
    let since = params.since.unwrap_or(0);
    let id = params.session;
    let (session_row, messages, instructions) = daemon
        .store
        .read(move |conn| {
            let session_row = match session(conn, &id) {
                Ok(row) => row,
                Err(err) => return Ok(Err(err)),
            };
            let messages = rows::messages(conn, &id, since, limit)?;
            let through = messages.last().map_or(since, |message| message.seq);
            let instructions = crate::store::instructions::by_messages(conn, &id, since, through)?;
            Ok(Ok((session_row, messages, instructions)))
        })
        .await??;
    let page_base = daemon.confirm_page_base();
    Ok(ChatLog {
        session: session_to_proto(&session_row),
        messages: messages
            .iter()
            .map(message_to_proto)
            .collect::<Result<_, _>>()?,
        instructions: instructions
            .iter()
            .map(|row| crate::instructions::to_proto(row, page_base.as_deref()))
            .collect::<Result<_, _>>()?,
    })
}

/// Copies a voice recording into the project as an `audio` asset. An agent may name only a file
/// inside the project's folder (links resolved); a person, any file of theirs.
async fn import_recording(
    daemon: &Daemon,
    caller: &Caller,
    session_row: &SessionRow,
    path: &str,
) -> Result<String, Problem> {
    let shown = PathBuf::from(path);
    if !shown.is_absolute() {
        return Err(Problem::validation(
            ErrorCode::InvalidParams,
            format!("audio_path must be an absolute path, got `{path}`"),
        ));
    }
    let root = PathBuf::from(&session_row.project_root);
    let agent = caller.is_agent();
    let candidate = tokio::task::spawn_blocking(move || {
        let real = std::fs::canonicalize(&shown).map_err(|err| {
            Problem::new(
                ErrorKind::NotFound,
                ErrorCode::FileNotFound,
                format!("{}: {err}", shown.display()),
            )
        })?;
        if agent {
            let root = crate::projects::root::resolve(&root).map_err(|err| {
                Problem::new(ErrorKind::Infra, ErrorCode::IoError, err.to_string())
            })?;
            if !real.starts_with(&root) {
                return Err(Problem::new(
                    ErrorKind::Policy,
                    ErrorCode::PathOutsideProject,
                    format!("{} lies outside the project's folder", shown.display()),
                )
                .with_hint("agents attach only recordings inside the project's folder"));
            }
        }
        Ok(Candidate { shown, real })
    })
    .await
    .map_err(|err| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string()))??;
    let project = find_project(daemon, &session_row.project_slug).await?;
    let (_, asset) =
        super::assets::import_one(daemon, &project, candidate, AssetKind::Audio).await?;
    Ok(asset.id)
}

fn session(conn: &rusqlite::Connection, id: &str) -> Result<SessionRow, Problem> {
    rows::get_session(conn, id)?.ok_or_else(|| {
        Problem::new(
            ErrorKind::NotFound,
            ErrorCode::ChatNotFound,
            format!("chat session `{id}` not found"),
        )
        .with_hint("listing the chat sessions shows their ids")
        .with_action(protocol::Action::call::<protocol::chat::List>([], &[]))
    })
}

fn session_to_proto(row: &SessionRow) -> ChatSession {
    ChatSession {
        id: row.id.clone(),
        project: row.project_slug.clone(),
        title: row.title.clone(),
        messages: row.messages,
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    }
}

fn message_to_proto(row: &MessageRow) -> Result<ChatMessage, Problem> {
    Ok(ChatMessage {
        id: row.id.clone(),
        session: row.session_id.clone(),
        seq: row.seq,
        role: crate::store::runs::parse_stored::<Role>("chat role", &row.role)?,
        text: row.text.clone(),
        audio_asset: row.audio_asset_id.clone(),
        created_at: row.created_at.clone(),
    })
}
