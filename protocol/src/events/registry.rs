//! The list of every event kind with its payload type: [`for_each_event_data`] walks it for the
//! OpenRPC document and the tests, and each payload type gets its [`EventData`] impl here.

use super::*;

/// Calls `$callback!` with every [`EventData`] type, so the OpenRPC document and the tests walk
/// one list.
macro_rules! for_each_event_data {
    ($callback:ident) => {
        $callback! {
            $crate::events::DaemonStarted,
            $crate::events::DaemonStopping,
            $crate::events::ProjectCreated,
            $crate::events::ProjectUpdated,
            $crate::events::ProjectDeleted,
            $crate::events::AssetImported,
            $crate::events::AssetDeleted,
            $crate::events::AssetLinked,
            $crate::events::StyleGuideChanged,
            $crate::events::CharacterChanged,
            $crate::events::ReferenceSetChanged,
            $crate::events::PromptTemplateChanged,
            $crate::events::BootstrapImported,
            $crate::events::SecretChanged,
            $crate::events::ProviderChanged,
            $crate::events::RunCreated,
            $crate::events::RunStarted,
            $crate::events::RunProgress,
            $crate::events::RunFinished,
            $crate::events::JobStarted,
            $crate::events::JobFinished,
            $crate::events::CandidateStarted,
            $crate::events::CandidateFinished,
            $crate::events::CandidateFailed,
            $crate::events::CandidatePostprocessed,
            $crate::events::PostprocessFile,
            $crate::events::PostprocessProgress,
            $crate::export::ExportProgress,
            $crate::storage::SyncProgress,
            $crate::instruction::InstructionChanged,
            $crate::chat::ChatCreated,
            $crate::chat::ChatAppended,
            $crate::watch::WatchFileChanged,
            $crate::watch::WatchRuleChanged,
        }
    };
}
pub(crate) use for_each_event_data;

macro_rules! event_data {
    ($($payload:ident => $kind:ident),+ $(,)?) => {
        $(impl EventData for $payload {
            const KIND: &'static str = kind::$kind;
        })+
    };
}

event_data! {
    DaemonStarted => DAEMON_STARTED,
    DaemonStopping => DAEMON_STOPPING,
    ProjectCreated => PROJECT_CREATED,
    ProjectUpdated => PROJECT_UPDATED,
    ProjectDeleted => PROJECT_DELETED,
    AssetImported => ASSET_IMPORTED,
    AssetDeleted => ASSET_DELETED,
    AssetLinked => ASSET_LINKED,
    StyleGuideChanged => STYLE_GUIDE_CHANGED,
    CharacterChanged => CHARACTER_CHANGED,
    ReferenceSetChanged => REFERENCE_SET_CHANGED,
    PromptTemplateChanged => PROMPT_TEMPLATE_CHANGED,
    BootstrapImported => BOOTSTRAP_IMPORTED,
    SecretChanged => SECRET_CHANGED,
    ProviderChanged => PROVIDER_CHANGED,
    RunCreated => RUN_CREATED,
    RunStarted => RUN_STARTED,
    RunProgress => RUN_PROGRESS,
    RunFinished => RUN_FINISHED,
    JobStarted => JOB_STARTED,
    JobFinished => JOB_FINISHED,
    CandidateStarted => CANDIDATE_STARTED,
    CandidateFinished => CANDIDATE_FINISHED,
    CandidateFailed => CANDIDATE_FAILED,
    CandidatePostprocessed => CANDIDATE_POSTPROCESSED,
    PostprocessFile => POSTPROCESS_FILE,
    PostprocessProgress => POSTPROCESS_PROGRESS,
}

impl EventData for crate::export::ExportProgress {
    const KIND: &'static str = kind::EXPORT_PROGRESS;
}

impl EventData for crate::storage::SyncProgress {
    const KIND: &'static str = kind::STORAGE_PROGRESS;
}

impl EventData for crate::instruction::InstructionChanged {
    const KIND: &'static str = kind::INSTRUCTION_CHANGED;
}

impl EventData for crate::chat::ChatCreated {
    const KIND: &'static str = kind::CHAT_CREATED;
}

impl EventData for crate::chat::ChatAppended {
    const KIND: &'static str = kind::CHAT_APPENDED;
}

impl EventData for crate::watch::WatchFileChanged {
    const KIND: &'static str = kind::WATCH_FILE;
}

impl EventData for crate::watch::WatchRuleChanged {
    const KIND: &'static str = kind::WATCH_RULE;
}
