//! `bootstrap.*`: the prompt exchange with an outside AI (journey J03). `bootstrap.export` gives a
//! prompt and the project's current knowledge as a [`BootstrapDocument`]; the AI answers with a
//! document of the same shape; `bootstrap.import` validates it with these same types, reports the
//! exact changes, and applies them in one transaction unless it is a dry run.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::Method;

/// The version of the document format.
pub const SCHEMA_VERSION: &str = "kroma.bootstrap.v1";

/// A project's knowledge as an outside AI reads and writes it. A section that is absent is left
/// alone by an import; reference images are not part of it (the AI cannot know asset ids).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BootstrapDocument {
    /// `kroma.bootstrap.v1` when given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<ProjectPart>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub style_guides: Option<Vec<StyleGuidePart>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub characters: Option<Vec<CharacterPart>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_templates: Option<Vec<PromptTemplatePart>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectPart {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StyleGuidePart {
    /// Matches an existing guide by name, ignoring case.
    pub name: String,
    /// Required for a new guide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub palette: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lighting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// At most one guide of the document may be the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_default: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CharacterPart {
    /// Matches an existing character by name, ignoring case.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_notes: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PromptTemplatePart {
    /// Matches an existing template by name, ignoring case.
    pub name: String,
    /// Required for a new template; `{{variable}}` placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Every variable the body uses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<String>>,
}

/// `bootstrap.export`.
pub enum Export {}

impl Method for Export {
    const NAME: &'static str = "bootstrap.export";
    const SUMMARY: &'static str =
        "The prompt and current knowledge document to hand to an outside AI";
    const MUTATING: bool = false;
    type Params = crate::knowledge::ProjectParams;
    type Output = BootstrapExport;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BootstrapExport {
    pub schema_version: String,
    /// Paste this into the AI; it contains the rules, the JSON Schema and the current document.
    pub prompt: String,
    /// The project's knowledge now.
    pub current: BootstrapDocument,
    /// The JSON Schema the answer must follow.
    pub schema: serde_json::Value,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportMode {
    /// Create what is new, change what is given, keep everything else.
    #[default]
    Merge,
    /// Every section the document gives becomes exactly the document's: entities it does not name
    /// are deleted, and the fields an entity omits are emptied. Absent sections are kept.
    Replace,
}

/// `bootstrap.import`.
pub enum Import {}

impl Method for Import {
    const NAME: &'static str = "bootstrap.import";
    const SUMMARY: &'static str =
        "Apply an AI's knowledge document (merge or replace), or preview it with dry_run";
    const MUTATING: bool = true;
    type Params = ImportParams;
    type Output = ImportSummary;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    pub project: String,
    /// The document as JSON. Give this or `text`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<BootstrapDocument>,
    /// The AI's answer as it came: raw JSON, JSON in a ``` fence, or prose around one JSON object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default)]
    pub mode: ImportMode,
    /// Report the changes without making them.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportSummary {
    pub mode: ImportMode,
    pub dry_run: bool,
    pub project: ProjectChange,
    pub style_guides: SectionChange,
    pub characters: SectionChange,
    pub prompt_templates: SectionChange,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProjectChange {
    pub name_changed: bool,
    pub description_changed: bool,
}

/// What an import does to one section, by entity name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SectionChange {
    /// Whether the document has this section at all.
    pub provided: bool,
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub deleted: Vec<String>,
    pub unchanged: Vec<String>,
}

/// The JSON Schema of [`BootstrapDocument`], as handed to the outside AI.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(BootstrapDocument))
        .unwrap_or(serde_json::Value::Null)
}
