//! `chat.*`: the conversations agents have with people, stored with the instructions they
//! produced. A voice transcript is a message whose recording is stored as an `audio` asset of
//! the project. Messages are data: nothing in them approves anything.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Method;
use crate::instruction::Instruction;

/// Longest message text kept, in characters.
pub const MAX_MESSAGE_CHARS: usize = 32_000;

/// Longest session title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;

/// Most messages one `chat.log` answers with.
pub const MAX_LOG_LIMIT: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    System,
    Tool,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
            Role::Tool => "tool",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChatSession {
    pub id: String,
    /// The project's slug.
    pub project: String,
    pub title: String,
    pub messages: u32,
    /// RFC 3339 UTC.
    pub created_at: String,
    /// When the last message was added.
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChatMessage {
    pub id: String,
    pub session: String,
    /// Its place in the session, from 1.
    pub seq: u32,
    pub role: Role,
    pub text: String,
    /// The voice recording this text transcribes, an `audio` asset of the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_asset: Option<String>,
    /// RFC 3339 UTC.
    pub created_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateParams {
    /// The project's slug or UUID.
    pub project: String,
    /// Default: `New session`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// `chat.create`.
pub enum Create {}

impl Method for Create {
    const NAME: &'static str = "chat.create";
    const SUMMARY: &'static str = "Start a chat session in a project";
    const MUTATING: bool = true;
    const FOR_AGENTS: bool = true;
    type Params = CreateParams;
    type Output = ChatSession;
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this project (slug or UUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// At most this many, most recently active first (default 100, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChatSessionList {
    pub sessions: Vec<ChatSession>,
}

/// `chat.list`.
pub enum List {}

impl Method for List {
    const NAME: &'static str = "chat.list";
    const SUMMARY: &'static str = "List chat sessions, most recently active first";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = ListParams;
    type Output = ChatSessionList;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendParams {
    /// The session's id.
    pub session: String,
    pub role: Role,
    /// At most 32000 characters.
    pub text: String,
    /// Absolute path of the voice recording the text transcribes (WAV, MP3, OGG, FLAC, M4A or
    /// WebM, at most 64 MiB); it is copied into the project as an `audio` asset. An agent may
    /// name only a file inside the project's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_path: Option<String>,
}

/// `chat.append`.
pub enum Append {}

impl Method for Append {
    const NAME: &'static str = "chat.append";
    const SUMMARY: &'static str =
        "Add a message to a chat session (a voice transcript with its recording)";
    const MUTATING: bool = true;
    const FOR_AGENTS: bool = true;
    type Params = AppendParams;
    type Output = ChatMessage;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// The session's id.
    pub session: String,
    /// Messages after this `seq` (default 0: from the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u32>,
    /// At most this many messages (default 200, at most 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChatLog {
    pub session: ChatSession,
    /// In order.
    pub messages: Vec<ChatMessage>,
    /// The instructions these messages produced, with their state and outcome.
    pub instructions: Vec<Instruction>,
}

/// `chat.log`.
pub enum Log {}

impl Method for Log {
    const NAME: &'static str = "chat.log";
    const SUMMARY: &'static str =
        "Show a chat session's messages with the instructions they produced and their outcomes";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = LogParams;
    type Output = ChatLog;
}

/// `chat.created`: a chat session was started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChatCreated {
    pub session: String,
}

/// `chat.appended`: a message was added (its text is not in the event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChatAppended {
    pub session: String,
    pub message: String,
    pub seq: u32,
    pub role: Role,
}
