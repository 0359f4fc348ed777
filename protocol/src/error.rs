//! Error kinds, error codes and the `data` object every Kroma error carries.
//!
//! A JSON-RPC error from kromad always has a stable numeric `code` (one per kind, listed in
//! [`ErrorKind::code`]) and `data: {kind, code, message, hint}`, where `data.code` is a stable
//! snake_case name of the exact condition (`project_not_found`) that scripts can branch on. Every
//! such name is an [`ErrorCode`]; the list grows, so a client reads `data.code` through
//! [`ErrorData::code`] and treats a name it does not know by its `kind`. Next to the prose
//! `hint`, `data.action` may name the next step as an [`Action`].

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Action;

/// JSON-RPC 2.0 reserved code of a frame that is not JSON ([`ErrorCode::ParseError`]).
pub const PARSE_ERROR: i32 = -32700;
/// JSON-RPC 2.0 reserved code of JSON that is not a request ([`ErrorCode::InvalidRequest`]).
pub const INVALID_REQUEST: i32 = -32600;
/// JSON-RPC 2.0 reserved code of an unknown method ([`ErrorCode::MethodNotFound`]).
pub const METHOD_NOT_FOUND: i32 = -32601;

/// What went wrong, in the terms a caller branches on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request itself is wrong: fix the input.
    Validation,
    /// A named thing does not exist.
    NotFound,
    /// The request clashes with existing state (a taken slug, a second daemon).
    Conflict,
    /// A rule forbids it: spend, budget, a missing confirmation, another user.
    Policy,
    /// A remote API failed.
    Provider,
    /// The machine failed: disk, database, a timeout, too many connections.
    Infra,
    /// A bug in kromad.
    Internal,
}

impl ErrorKind {
    /// The JSON-RPC error code of this kind. Stable: clients may match on it.
    pub const fn code(self) -> i32 {
        match self {
            ErrorKind::Validation => -32602,
            ErrorKind::NotFound => -32001,
            ErrorKind::Conflict => -32002,
            ErrorKind::Policy => -32003,
            ErrorKind::Provider => -32004,
            ErrorKind::Infra => -32005,
            ErrorKind::Internal => -32603,
        }
    }

    /// The wire name, e.g. `not_found`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Validation => "validation",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Policy => "policy",
            ErrorKind::Provider => "provider",
            ErrorKind::Infra => "infra",
            ErrorKind::Internal => "internal",
        }
    }

    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 7] = [
        ErrorKind::Validation,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Policy,
        ErrorKind::Provider,
        ErrorKind::Infra,
        ErrorKind::Internal,
    ];
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Declares [`ErrorCode`] from one table: variant, wire name and the kinds it is sent with, so
/// the enum, its names, its kinds and its schema cannot disagree.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])+ $variant:ident = $name:literal, $($kind:ident)|+;)+) => {
        /// The exact condition behind an error: `data.code` of every Kroma error.
        ///
        /// Stable: a name is never reused for another condition. The list grows, so clients must
        /// tolerate names they do not know and fall back on the error's `kind`. `x-kinds` in the
        /// schema lists the kinds each code is sent with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        pub enum ErrorCode {
            $(
                $(#[doc = $doc])+
                #[serde(rename = $name)]
                #[schemars(extend("x-kinds" = [$(ErrorKind::$kind),+]))]
                $variant,
            )+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];

            /// The wire name, e.g. `project_not_found`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)+
                }
            }

            /// The kinds kromad sends this code with: one for all codes but those whose kind
            /// depends on where the condition arose (see [`ErrorCode::TemplateSyntax`]).
            pub const fn kinds(self) -> &'static [ErrorKind] {
                match self {
                    $(ErrorCode::$variant => &[$(ErrorKind::$kind),+],)+
                }
            }
        }

        impl FromStr for ErrorCode {
            type Err = UnknownErrorCode;

            fn from_str(name: &str) -> Result<ErrorCode, UnknownErrorCode> {
                match name {
                    $($name => Ok(ErrorCode::$variant),)+
                    _ => Err(UnknownErrorCode(name.to_owned())),
                }
            }
        }
    };
}

error_codes! {
    // The frame, the request and the connection.
    /// A frame is not UTF-8 JSON (sent with the JSON-RPC code -32700).
    ParseError = "parse_error", Validation;
    /// A frame is JSON but not a JSON-RPC 2.0 request (sent with the JSON-RPC code -32600).
    InvalidRequest = "invalid_request", Validation;
    /// No method has the requested name (sent with the JSON-RPC code -32601).
    MethodNotFound = "method_not_found", NotFound;
    /// The params are a JSON array; kromad takes named params only.
    ParamsNotObject = "params_not_object", Validation;
    /// The params do not match the method's params, or give fields that exclude each other.
    InvalidParams = "invalid_params", Validation;
    /// A `limit` param is outside its range.
    InvalidLimit = "invalid_limit", Validation;
    /// A batch member was not run: the batch's answers already fill `limits.max_reply_bytes`.
    ReplyTooLarge = "reply_too_large", Infra;
    /// A call did not finish within `limits.request_timeout_secs`.
    RequestTimeout = "request_timeout", Infra;
    /// A connection was refused: kromad already serves `limits.max_connections`.
    TooManyConnections = "too_many_connections", Infra;
    /// A subscribe call was refused: the connection already holds
    /// `limits.max_subscriptions_per_connection`.
    TooManySubscriptions = "too_many_subscriptions", Infra;
    /// A connection was refused: its user is not the one who started kromad.
    PermissionDenied = "permission_denied", Policy;
    /// A deletion was asked without `confirm: true`.
    ConfirmationRequired = "confirmation_required", Policy;

    // Projects.
    /// A slug does not match the slug rule, or none can be derived from the name.
    InvalidSlug = "invalid_slug", Validation;
    /// Another project has this slug.
    SlugTaken = "slug_taken", Conflict;
    /// No project has this slug.
    ProjectNotFound = "project_not_found", NotFound;
    /// A project or knowledge name is empty, too long or holds control characters.
    InvalidName = "invalid_name", Validation;
    /// A project description is too long.
    InvalidDescription = "invalid_description", Validation;
    /// A project root is relative, climbs with `..` or cannot be resolved.
    InvalidRoot = "invalid_root", Validation;
    /// A new project's root folder exists and is not empty.
    RootNotEmpty = "root_not_empty", Conflict;
    /// A project root would share kromad's data dir or another project's root.
    RootOverlaps = "root_overlaps", Conflict;
    /// Files were not purged: the folder's marker does not name the project.
    RootNotOwned = "root_not_owned", Policy;
    /// A project's S3 settings are invalid.
    InvalidS3Settings = "invalid_s3_settings", Validation;

    // Assets, files and folders.
    /// No asset has this id in the project.
    AssetNotFound = "asset_not_found", NotFound;
    /// The two assets are already linked this way.
    LinkExists = "link_exists", Conflict;
    /// An asset was to be linked to itself.
    SelfLink = "self_link", Validation;
    /// Assets of this kind are made by the pipeline, not imported.
    KindNotImportable = "kind_not_importable", Validation;
    /// Too few or too many paths were named.
    InvalidPaths = "invalid_paths", Validation;
    /// A named path is not absolute (kromad does not share the caller's working directory).
    RelativePath = "relative_path", Validation;
    /// A named path climbs with `..`, or a link leads outside the named folder.
    PathEscape = "path_escape", Validation;
    /// Walking the named folders stopped: they hold more entries than kromad visits.
    TooManyEntries = "too_many_entries", Validation;
    /// The named folders hold more files than one call takes.
    TooManyFiles = "too_many_files", Validation;
    /// The named paths hold no image files.
    NoImages = "no_images", Validation;
    /// A named file does not exist.
    FileNotFound = "file_not_found", NotFound;
    /// A named file cannot be read by the user kromad runs as.
    FileUnreadable = "file_unreadable", Validation;
    /// A path is not a regular file (a FIFO, a device).
    NotAFile = "not_a_file", Validation;
    /// A file is larger than kromad reads.
    FileTooLarge = "file_too_large", Validation;
    /// A file to import is not a regular file or folder, lies too deep or is too large.
    BadFile = "bad_file", Validation;
    /// A file is not an image kroma reads (PNG, JPEG or WebP).
    NotAnImage = "not_an_image", Validation;
    /// An image's data is damaged or truncated.
    ImageDamaged = "image_damaged", Validation;
    /// An image is larger than the pixel budget, or a step on it would need more memory than
    /// local steps may use.
    ImageTooLarge = "image_too_large", Validation;
    /// An output folder is not absolute.
    InvalidOutputDir = "invalid_output_dir", Validation;
    /// An output folder lies inside kromad's data dir.
    OutputInDataDir = "output_in_data_dir", Validation;
    /// A file to archive lies outside every project's folder and no archive folder was named.
    NoArchive = "no_archive", Validation;
    /// An output file exists already; kroma never overwrites a file.
    OutputExists = "output_exists", Conflict;

    // Project knowledge and bootstrap.
    /// No style guide, character, reference set, prompt template or provider has this id or
    /// name.
    NotFound = "not_found", NotFound;
    /// Another entity of this kind in the project has this name (ignoring case).
    NameTaken = "name_taken", Conflict;
    /// The asset is not in the reference set.
    ItemNotFound = "item_not_found", NotFound;
    /// The default style guide cannot go while others remain, or a document marks several.
    DefaultRequired = "default_required", Validation;
    /// An asset is listed twice in one reference list.
    DuplicateReference = "duplicate_reference", Validation;
    /// More reference images than one list or set holds.
    TooManyReferences = "too_many_references", Validation;
    /// A weight is not above 0 and at most 10.
    InvalidWeight = "invalid_weight", Validation;
    /// A required text field is empty or missing.
    MissingText = "missing_text", Validation;
    /// A text field is too long.
    TextTooLong = "text_too_long", Validation;
    /// A template variable name is invalid or declared twice.
    InvalidVariable = "invalid_variable", Validation;
    /// A template body uses variables it does not declare.
    UndeclaredVariable = "undeclared_variable", Validation;
    /// A template declares variables its body never uses.
    UnusedVariable = "unused_variable", Validation;
    /// The variables given to render a template are not the ones it declares.
    TemplateVariables = "template_variables", Validation;
    /// A template body does not parse: `validation` when it is written, `internal` when a
    /// stored one fails at rendering.
    TemplateSyntax = "template_syntax", Validation | Internal;
    /// Rendering a template failed.
    TemplateRender = "template_render", Validation;
    /// A bootstrap answer or document is empty.
    EmptyDocument = "empty_document", Validation;
    /// A bootstrap answer holds no JSON object, or the document does not match the schema.
    InvalidDocument = "invalid_document", Validation;
    /// A bootstrap document has another schema version.
    SchemaVersion = "schema_version", Validation;
    /// A bootstrap document names an entity twice in one section.
    DuplicateName = "duplicate_name", Validation;

    // Secrets and provider accounts.
    /// A secret name does not match the name rule (the name is not shown: it may be a key).
    InvalidSecretName = "invalid_secret_name", Validation;
    /// A secret value is empty or too long.
    InvalidSecretValue = "invalid_secret_value", Validation;
    /// No secret has this name.
    SecretNotFound = "secret_not_found", NotFound;
    /// The secret store (the keyring) does not answer.
    SecretStoreUnavailable = "secret_store_unavailable", Infra;
    /// The secret store answered with an error.
    SecretStoreFailed = "secret_store_failed", Infra;
    /// A provider name does not match the name rule.
    InvalidProviderName = "invalid_provider_name", Validation;
    /// A provider base URL is missing, not a URL, not http(s) or carries credentials.
    InvalidBaseUrl = "invalid_base_url", Validation;
    /// A run names a provider account that does not exist.
    NoProvider = "no_provider", Validation;
    /// A provider's key cannot be read from its secret.
    NoKey = "no_key", Provider;
    /// A provider's model list could not be fetched.
    ProviderUnreachable = "provider_unreachable", Provider;

    // Planning and starting runs.
    /// A run id is not a UUID.
    InvalidRun = "invalid_run", Validation;
    /// A scene is neither an asset id nor an absolute path.
    InvalidScene = "invalid_scene", Validation;
    /// A scene is an image format runs do not take (BMP, TIFF).
    UnsupportedScene = "unsupported_scene", Validation;
    /// A run names no scene, or a named folder holds no image.
    NoScenes = "no_scenes", Validation;
    /// The character stage was asked without characters.
    NoCharacters = "no_characters", Validation;
    /// Characters were given to a stage other than the character stage.
    CharactersNotAllowed = "characters_not_allowed", Validation;
    /// `time` was given to a stage other than time and weather.
    TimeNotAllowed = "time_not_allowed", Validation;
    /// `weather` was given to a stage other than weather.
    WeatherNotAllowed = "weather_not_allowed", Validation;
    /// A run would have more jobs than the safety limit allows.
    BatchLimit = "batch_limit", Policy;
    /// A prompt the stage needs is missing from the settings.
    MissingPrompt = "missing_prompt", Validation;
    /// A composed prompt is longer than the provider takes.
    PromptTooLong = "prompt_too_long", Validation;
    /// Kroma has no price table for the model, so it cannot cap the spend.
    UnpricedModel = "unpriced_model", Validation;
    /// The model was shut down.
    ModelRetired = "model_retired", Validation;
    /// A settings file or value is invalid.
    InvalidSettings = "invalid_settings", Validation;
    /// A settings file cannot be read.
    SettingsUnreadable = "settings_unreadable", Infra;
    /// `confirm_cost_usd` is not a number at least 0.
    InvalidConfirmation = "invalid_confirmation", Validation;
    /// The confirmed cost is below the most the run (or the retry) can cost.
    ConfirmationTooLow = "confirmation_too_low", Policy;
    /// Starting would break the project's or the daily budget.
    BudgetExceeded = "budget_exceeded", Policy;
    /// A dry run cannot be started.
    DryRun = "dry_run", Conflict;
    /// The run is no longer planned (started, maybe meanwhile).
    AlreadyStarted = "already_started", Conflict;
    /// Only planned or running runs can be canceled.
    NotCancelable = "not_cancelable", Conflict;
    /// Only finished runs can be retried (or the run was retried meanwhile).
    NotRetryable = "not_retryable", Conflict;
    /// The run has no candidate to call again and no failed post-process chain.
    NothingToRetry = "nothing_to_retry", Conflict;
    /// A run has no job with this key, or the job no candidate with this index.
    CandidateNotFound = "candidate_not_found", NotFound;
    /// The candidate cannot be a baseline: it has no output, or its output failed the QA guard.
    NotApprovable = "not_approvable", Conflict;
    /// A contact sheet would be larger than kromad renders.
    SheetTooLarge = "sheet_too_large", Validation;
    /// No export has this id.
    ExportNotFound = "export_not_found", NotFound;
    /// An export's selection holds no file.
    EmptyExport = "empty_export", Validation;
    /// An export has no readable `manifest.json`, or one of another format.
    BadManifest = "bad_manifest", Validation;
    /// The project has no S3 settings.
    S3NotConfigured = "s3_not_configured", Validation;
    /// A secret the project's S3 settings name is not set.
    S3CredentialsMissing = "s3_credentials_missing", Validation;
    /// The store refused the keys (unknown access key, wrong secret key, access denied).
    S3AuthFailed = "s3_auth_failed", Provider;
    /// The bucket does not exist.
    S3NoSuchBucket = "s3_no_such_bucket", Provider;
    /// The store rejected the request's time: this machine's clock is off.
    S3ClockSkew = "s3_clock_skew", Infra;
    /// Nothing answered at the endpoint (no network, wrong URL, server down).
    S3Unreachable = "s3_unreachable", Infra;
    /// The store failed a request in another way.
    S3Failed = "s3_failed", Provider;
    /// Another sync of this project is running.
    SyncInProgress = "sync_in_progress", Conflict;
    /// A sync would hold more files than kromad plans at once.
    SyncTooLarge = "sync_too_large", Validation;
    /// `since` is neither a date nor an RFC 3339 time.
    InvalidSince = "invalid_since", Validation;

    // A candidate's provider call (in `candidate.failed` and run details).
    /// The candidate was canceled before its call.
    Canceled = "canceled", Policy;
    /// An input image changed since the run was planned.
    InputChanged = "input_changed", Validation;
    /// An input image cannot be read.
    InputUnreadable = "input_unreadable", Infra;
    /// An input image could not be attached to the call.
    BadInput = "bad_input", Provider;
    /// The provider refused the key (HTTP 401 or 403).
    ProviderAuth = "provider_auth", Provider;
    /// The provider does not know the model or the URL (HTTP 404).
    ProviderNotFound = "provider_not_found", Provider;
    /// The provider refused the request (another HTTP 4xx).
    ProviderRejected = "provider_rejected", Provider;
    /// The provider stayed busy or down through every attempt.
    ProviderUnavailable = "provider_unavailable", Provider;
    /// The call may have been billed, but its answer was lost.
    CallLost = "call_lost", Provider;
    /// The provider answered (and billed) with something unusable.
    BadAnswer = "bad_answer", Provider;

    // Local models and steps.
    /// The local models are not installed, or their manifest is unreadable.
    ModelsMissing = "models_missing", Infra;
    /// No installed local model has this name.
    UnknownModel = "unknown_model", Validation;
    /// An installed model has a scale kroma does not run.
    UnsupportedModel = "unsupported_model", Validation;
    /// The ONNX Runtime library is missing.
    RuntimeMissing = "runtime_missing", Infra;
    /// The ONNX Runtime library cannot be loaded.
    RuntimeUnusable = "runtime_unusable", Infra;
    /// ONNX Runtime cannot load a model file.
    ModelUnloadable = "model_unloadable", Infra;
    /// A model's inputs or outputs are not what kroma expects.
    ModelInterface = "model_interface", Infra;
    /// A model's inference failed.
    InferenceFailed = "inference_failed", Internal;
    /// No colour profile has this name.
    UnknownProfile = "unknown_profile", Validation;
    /// A colour is not like `#ffffff`.
    InvalidColour = "invalid_colour", Validation;
    /// Step options exclude each other (a mask with a background colour).
    InvalidOptions = "invalid_options", Validation;
    /// An upscale scale is not 2 or 4.
    InvalidScale = "invalid_scale", Validation;
    /// A tile side is not between 32 and 1024.
    InvalidTile = "invalid_tile", Validation;
    /// Local work stopped before it finished: kromad is stopping or the caller left.
    Stopped = "stopped", Infra;

    // Agents and instructions.
    /// The method is a person's (approving spend, showing a code, setting the allowance) and
    /// the connection called `agent.hello`.
    NotForAgents = "not_for_agents", Policy;
    /// The connection already called `agent.hello`.
    AlreadyAgent = "already_agent", Conflict;
    /// No instruction has this id.
    InstructionNotFound = "instruction_not_found", NotFound;
    /// The instruction's state does not allow this step (confirming a finished one, …).
    IllegalTransition = "illegal_transition", Conflict;
    /// The instruction kind cannot be carried out here, or its payload does not fit its project.
    InvalidInstruction = "invalid_instruction", Validation;
    /// An objective or source text is empty or too long.
    InvalidText = "invalid_text", Validation;
    /// An allowance amount is negative or not a number.
    InvalidAllowance = "invalid_allowance", Validation;
    /// The one-time code is wrong, expired, used, or for another instruction or cost.
    InvalidCode = "invalid_code", Policy;
    /// Too many wrong codes: the instruction takes no more codes; a person confirms it another way.
    CodeLocked = "code_locked", Policy;
    /// The instruction's plan or price changed since it was approved: a person approves it again.
    PlanChanged = "plan_changed", Policy;
    /// A path an agent named lies outside the project's folder.
    PathOutsideProject = "path_outside_project", Policy;
    /// No chat session has this id.
    ChatNotFound = "chat_not_found", NotFound;

    // Drop folders.
    /// No drop-folder rule has this name or id.
    WatchNotFound = "watch_not_found", NotFound;
    /// Another rule has this name.
    WatchNameTaken = "watch_name_taken", Conflict;
    /// A rule's folder, output folder, patterns or settings cannot work (a folder inside another
    /// rule's or a project's, an output inside the watched folder, …).
    InvalidWatch = "invalid_watch", Validation;
    /// The OS refused one more watch (inotify's `max_user_watches` or `max_user_instances`).
    WatchLimit = "watch_limit", Infra;

    // The machine and kromad itself.
    /// Reading or writing a file or folder failed.
    IoError = "io_error", Infra;
    /// The database failed; the request was not applied.
    DatabaseError = "database_error", Infra;
    /// The database was written by a newer kromad.
    NewerSchema = "newer_schema", Infra;
    /// kromad could not set up its HTTP client.
    HttpClient = "http_client", Internal;
    /// A bug in kromad (a failed task, a caught panic).
    Internal = "internal", Internal;
}

/// A `data.code` that is not in this build's [`ErrorCode`] list (a newer kromad's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownErrorCode(pub String);

impl fmt::Display for UnknownErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown error code `{}`", self.0)
    }
}

impl std::error::Error for UnknownErrorCode {}

impl ErrorCode {
    /// The one kind kromad sends this code with; `None` for a code sent with more than one
    /// (see [`ErrorCode::kinds`]).
    pub const fn kind(self) -> Option<ErrorKind> {
        match self.kinds() {
            [kind] => Some(*kind),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `data` member of every Kroma JSON-RPC error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorData {
    pub kind: ErrorKind,
    /// Stable snake_case name of the exact condition, e.g. `project_not_found`. A string, so that
    /// clients built before a code was added still read the error.
    #[schemars(with = "ErrorCode")]
    pub code: String,
    pub message: String,
    /// What to do next, when there is something to do: prose for people, naming no program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The next step as data, when it is a method to call or a step to take: kromactl shows it
    /// as a command, an MCP server as a tool call. An action of a type a client does not know
    /// reads as absent, so the error itself still reads.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "crate::action::known"
    )]
    #[schemars(with = "Option<Action>")]
    pub action: Option<Action>,
}

impl ErrorData {
    /// An error without a hint.
    pub fn new(kind: ErrorKind, code: ErrorCode, message: impl Into<String>) -> ErrorData {
        ErrorData {
            kind,
            code: code.as_str().to_owned(),
            message: message.into(),
            hint: None,
            action: None,
        }
    }

    /// The same error with `hint`.
    pub fn with_hint(self, hint: impl Into<String>) -> ErrorData {
        ErrorData {
            hint: Some(hint.into()),
            ..self
        }
    }

    /// The same error with `action`.
    pub fn with_action(self, action: Action) -> ErrorData {
        ErrorData {
            action: Some(action),
            ..self
        }
    }

    /// The code, when this build knows it; `None` for a code a newer kromad added, which the
    /// caller handles by [`ErrorData::kind`](ErrorData#structfield.kind).
    pub fn code(&self) -> Option<ErrorCode> {
        self.code.parse().ok()
    }
}

#[cfg(test)]
mod tests;
