//! The bootstrap exchange as pure functions: the prompt for the outside AI, reading its answer,
//! and planning an import against the project's current knowledge. The plan is both the dry-run
//! report and what `api::bootstrap` applies in one transaction.

use std::collections::{BTreeMap, BTreeSet};

use kroma_protocol as protocol;
use protocol::ErrorCode;
use protocol::bootstrap::{
    BootstrapDocument, CharacterPart, ImportMode, ImportSummary, PromptTemplatePart, SectionChange,
    StyleGuidePart,
};

use crate::error::Problem;
use crate::knowledge::{self, name_key, parse_name, parse_required_text, parse_text};
use crate::store::knowledge::{CharacterRow, Common, PromptTemplateRow, StyleGuideRow};

/// The project's knowledge when an import starts.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub project_slug: String,
    pub project_name: String,
    pub project_description: String,
    pub style_guides: Vec<StyleGuideRow>,
    pub characters: Vec<CharacterRow>,
    pub prompt_templates: Vec<PromptTemplateRow>,
}

/// Rows to write and ids to delete for one section.
#[derive(Debug, Clone)]
pub struct SectionPlan<T> {
    pub put: Vec<T>,
    pub delete: Vec<String>,
}

impl<T> Default for SectionPlan<T> {
    fn default() -> Self {
        SectionPlan {
            put: Vec::new(),
            delete: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub project_name: Option<String>,
    pub project_description: Option<String>,
    pub style_guides: SectionPlan<StyleGuideRow>,
    pub characters: SectionPlan<CharacterRow>,
    pub prompt_templates: SectionPlan<PromptTemplateRow>,
    pub summary: ImportSummary,
}

/// The current knowledge as a document.
pub fn document_of(snapshot: &Snapshot) -> BootstrapDocument {
    let text = |value: &str| (!value.is_empty()).then(|| value.to_owned());
    BootstrapDocument {
        schema_version: Some(protocol::bootstrap::SCHEMA_VERSION.to_owned()),
        project: Some(protocol::bootstrap::ProjectPart {
            name: Some(snapshot.project_name.clone()),
            description: Some(snapshot.project_description.clone()),
        }),
        style_guides: Some(
            snapshot
                .style_guides
                .iter()
                .map(|guide| StyleGuidePart {
                    name: guide.common.name.clone(),
                    instructions: Some(guide.instructions.clone()),
                    palette: text(&guide.palette),
                    line: text(&guide.line),
                    lighting: text(&guide.lighting),
                    notes: text(&guide.notes),
                    is_default: Some(guide.is_default),
                })
                .collect(),
        ),
        characters: Some(
            snapshot
                .characters
                .iter()
                .map(|character| CharacterPart {
                    name: character.common.name.clone(),
                    description: text(&character.description),
                    prompt_text: text(&character.prompt_text),
                    identity_notes: text(&character.identity_notes),
                })
                .collect(),
        ),
        prompt_templates: Some(
            snapshot
                .prompt_templates
                .iter()
                .map(|template| PromptTemplatePart {
                    name: template.common.name.clone(),
                    body: Some(template.body.clone()),
                    variables: Some(template.variables.clone()),
                })
                .collect(),
        ),
    }
}

/// The prompt to paste into an outside AI.
pub fn prompt(current: &BootstrapDocument, schema: &serde_json::Value) -> String {
    format!(
        "You are configuring a Kroma project: the style guides, characters and prompt templates of \
one comic or graphic novel world, used to generate its images consistently.\n\n\
Return ONLY one JSON object (no markdown, no comments, no prose) that follows the JSON Schema below.\n\
Rules:\n\
- Omit a section you do not want to change; a section you include is applied as a whole.\n\
- Entities are matched by name, ignoring case; each name may appear once per section.\n\
- A style guide needs `instructions`; at most one style guide has \"is_default\": true.\n\
- A prompt template's `body` uses {{{{variable}}}} placeholders, and `variables` lists exactly \
the variables the body uses (lowercase letters, digits and underscores).\n\
- Never include API keys, passwords or other secrets.\n\
- Set \"schema_version\" to \"{version}\".\n\n\
JSON Schema of the answer:\n{schema}\n\n\
The project's current settings:\n{current}\n",
        version = protocol::bootstrap::SCHEMA_VERSION,
        schema = pretty(schema),
        current = pretty(current),
    )
}

fn pretty<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|err| format!("<unprintable: {err}>"))
}

/// Reads the AI's answer: raw JSON, JSON inside a ``` fence, or prose around one JSON object.
pub fn read_answer(text: &str) -> Result<BootstrapDocument, Problem> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(Problem::validation(
            ErrorCode::EmptyDocument,
            "the AI answer is empty",
        ));
    }
    let mut candidates = vec![trimmed];
    if let Some(fenced) = fenced_block(trimmed) {
        candidates.push(fenced);
    }
    if let (Some(start), Some(end)) = (trimmed.find('{'), trimmed.rfind('}'))
        && start < end
    {
        candidates.push(&trimmed[start..=end]);
    }
    let mut last_error = None;
    for candidate in candidates {
        if serde_json::from_str::<serde_json::Value>(candidate).is_err() {
            continue;
        }
        match serde_json::from_str::<BootstrapDocument>(candidate) {
            Ok(document) => return Ok(document),
            Err(err) => last_error = Some(err.to_string()),
        }
    }
    Err(match last_error {
        Some(err) => Problem::validation(
            ErrorCode::InvalidDocument,
            format!("the document does not match the bootstrap schema: {err}"),
        ),
        None => Problem::validation(
            ErrorCode::InvalidDocument,
            "no JSON object found in the AI answer",
        ),
    }
    .with_hint("the answer must be one JSON object following the schema from `bootstrap.export`"))
}

fn fenced_block(text: &str) -> Option<&str> {
    let start = text.find("```")?;
    let after = &text[start + 3..];
    let body_start = after.find('\n')? + 1;
    let body = &after[body_start..];
    let end = body.find("```")?;
    Some(body[..end].trim())
}

/// Checks each section for repeated names (ignoring case).
fn check_unique<'a>(section: &str, names: impl Iterator<Item = &'a str>) -> Result<(), Problem> {
    let mut seen = BTreeSet::new();
    let mut repeated = BTreeSet::new();
    for name in names {
        if !seen.insert(name_key(name)) {
            repeated.insert(name.trim().to_owned());
        }
    }
    if repeated.is_empty() {
        return Ok(());
    }
    Err(Problem::validation(
        ErrorCode::DuplicateName,
        format!(
            "{section} names appear more than once: {}",
            repeated
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
    .with_hint("each name may appear once per section (case does not matter)"))
}

/// Plans an import. Nothing is written; the plan says exactly what applying it would do.
pub fn plan(
    snapshot: &Snapshot,
    document: &BootstrapDocument,
    mode: ImportMode,
    now: &str,
) -> Result<Plan, Problem> {
    if let Some(version) = &document.schema_version
        && version != protocol::bootstrap::SCHEMA_VERSION
    {
        return Err(Problem::validation(
            ErrorCode::SchemaVersion,
            format!(
                "document version `{version}` is not {}",
                protocol::bootstrap::SCHEMA_VERSION
            ),
        ));
    }
    if document.project.is_none()
        && document.style_guides.is_none()
        && document.characters.is_none()
        && document.prompt_templates.is_none()
    {
        return Err(Problem::validation(
            ErrorCode::EmptyDocument,
            "the document has no section to import",
        )
        .with_hint("include at least one of project, style_guides, characters, prompt_templates"));
    }
    let mut summary = ImportSummary {
        mode,
        dry_run: false,
        project: Default::default(),
        style_guides: SectionChange::default(),
        characters: SectionChange::default(),
        prompt_templates: SectionChange::default(),
    };
    let mut project_name = None;
    let mut project_description = None;
    if let Some(project) = &document.project {
        if let Some(name) = &project.name {
            let name = crate::projects::rules::parse_name(name)?;
            summary.project.name_changed = name != snapshot.project_name;
            project_name = summary.project.name_changed.then_some(name);
        }
        if let Some(description) = &project.description {
            let description = crate::projects::rules::parse_description(description)?;
            summary.project.description_changed = description != snapshot.project_description;
            project_description = summary.project.description_changed.then_some(description);
        }
    }
    let fresh = |name: String| Common {
        id: uuid::Uuid::new_v4().to_string(),
        project_slug: snapshot.project_slug.clone(),
        name,
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    };
    // In replace mode an omitted field is emptied; in merge mode it keeps its value.
    let field = |given: &Option<String>, current: &str, label: &str| -> Result<String, Problem> {
        match (given, mode) {
            (Some(value), _) => parse_text(label, value),
            (None, ImportMode::Merge) => Ok(current.to_owned()),
            (None, ImportMode::Replace) => Ok(String::new()),
        }
    };

    let mut style_guides = SectionPlan::default();
    if let Some(parts) = &document.style_guides {
        check_unique("style guide", parts.iter().map(|part| part.name.as_str()))?;
        let defaults = parts
            .iter()
            .filter(|part| part.is_default == Some(true))
            .count();
        if defaults > 1 {
            return Err(Problem::validation(
                ErrorCode::DefaultRequired,
                "more than one style guide is marked is_default",
            ));
        }
        summary.style_guides.provided = true;
        let existing: BTreeMap<String, &StyleGuideRow> = snapshot
            .style_guides
            .iter()
            .map(|guide| (name_key(&guide.common.name), guide))
            .collect();
        let new_default = parts
            .iter()
            .find(|part| part.is_default == Some(true))
            .map(|part| name_key(&part.name));
        for part in parts {
            let name = parse_name("style guide", &part.name)?;
            let wants_default = new_default.as_deref() == Some(name.key.as_str());
            match existing.get(&name.key) {
                Some(current) => {
                    let mut next = (*current).clone();
                    next.common.name = name.name.clone();
                    next.instructions = match &part.instructions {
                        Some(text) => parse_required_text("instructions", text)?,
                        None => current.instructions.clone(),
                    };
                    next.palette = field(&part.palette, &current.palette, "palette")?;
                    next.line = field(&part.line, &current.line, "line")?;
                    next.lighting = field(&part.lighting, &current.lighting, "lighting")?;
                    next.notes = field(&part.notes, &current.notes, "notes")?;
                    next.is_default = if new_default.is_some() {
                        wants_default
                    } else {
                        current.is_default
                    };
                    push_change(
                        &mut summary.style_guides,
                        &mut style_guides.put,
                        *current,
                        next,
                        now,
                        |row| &mut row.common,
                    );
                }
                None => {
                    let instructions = part.instructions.as_deref().ok_or_else(|| {
                        Problem::validation(
                            ErrorCode::MissingText,
                            format!("new style guide `{}` needs `instructions`", name.name),
                        )
                    })?;
                    summary.style_guides.created.push(name.name.clone());
                    style_guides.put.push(StyleGuideRow {
                        common: fresh(name.name),
                        instructions: parse_required_text("instructions", instructions)?,
                        palette: parse_text("palette", part.palette.as_deref().unwrap_or(""))?,
                        line: parse_text("line", part.line.as_deref().unwrap_or(""))?,
                        lighting: parse_text("lighting", part.lighting.as_deref().unwrap_or(""))?,
                        notes: parse_text("notes", part.notes.as_deref().unwrap_or(""))?,
                        is_default: wants_default,
                        references: Vec::new(),
                    });
                }
            }
        }
        let named: BTreeSet<String> = parts.iter().map(|part| name_key(&part.name)).collect();
        for current in &snapshot.style_guides {
            let key = name_key(&current.common.name);
            if named.contains(&key) {
                continue;
            }
            if mode == ImportMode::Replace {
                summary
                    .style_guides
                    .deleted
                    .push(current.common.name.clone());
                style_guides.delete.push(current.common.id.clone());
            } else if new_default.is_some() && current.is_default {
                // Another guide becomes the default: this one stops being it.
                let mut next = current.clone();
                next.is_default = false;
                push_change(
                    &mut summary.style_guides,
                    &mut style_guides.put,
                    current,
                    next,
                    now,
                    |row| &mut row.common,
                );
            }
        }
    }

    let mut characters = SectionPlan::default();
    if let Some(parts) = &document.characters {
        check_unique("character", parts.iter().map(|part| part.name.as_str()))?;
        summary.characters.provided = true;
        let existing: BTreeMap<String, &CharacterRow> = snapshot
            .characters
            .iter()
            .map(|character| (name_key(&character.common.name), character))
            .collect();
        for part in parts {
            let name = parse_name("character", &part.name)?;
            match existing.get(&name.key) {
                Some(current) => {
                    let mut next = (*current).clone();
                    next.common.name = name.name.clone();
                    next.description =
                        field(&part.description, &current.description, "description")?;
                    next.prompt_text =
                        field(&part.prompt_text, &current.prompt_text, "prompt_text")?;
                    next.identity_notes = field(
                        &part.identity_notes,
                        &current.identity_notes,
                        "identity_notes",
                    )?;
                    push_change(
                        &mut summary.characters,
                        &mut characters.put,
                        *current,
                        next,
                        now,
                        |row| &mut row.common,
                    );
                }
                None => {
                    summary.characters.created.push(name.name.clone());
                    characters.put.push(CharacterRow {
                        common: fresh(name.name),
                        description: parse_text(
                            "description",
                            part.description.as_deref().unwrap_or(""),
                        )?,
                        prompt_text: parse_text(
                            "prompt_text",
                            part.prompt_text.as_deref().unwrap_or(""),
                        )?,
                        identity_notes: parse_text(
                            "identity_notes",
                            part.identity_notes.as_deref().unwrap_or(""),
                        )?,
                        references: Vec::new(),
                    });
                }
            }
        }
        if mode == ImportMode::Replace {
            let named: BTreeSet<String> = parts.iter().map(|part| name_key(&part.name)).collect();
            for current in &snapshot.characters {
                if !named.contains(&name_key(&current.common.name)) {
                    summary.characters.deleted.push(current.common.name.clone());
                    characters.delete.push(current.common.id.clone());
                }
            }
        }
    }

    let mut prompt_templates = SectionPlan::default();
    if let Some(parts) = &document.prompt_templates {
        check_unique(
            "prompt template",
            parts.iter().map(|part| part.name.as_str()),
        )?;
        summary.prompt_templates.provided = true;
        let existing: BTreeMap<String, &PromptTemplateRow> = snapshot
            .prompt_templates
            .iter()
            .map(|template| (name_key(&template.common.name), template))
            .collect();
        for part in parts {
            let name = parse_name("prompt template", &part.name)?;
            let variables = part
                .variables
                .as_deref()
                .map(knowledge::parse_variables)
                .transpose()?;
            match existing.get(&name.key) {
                Some(current) => {
                    let mut next = (*current).clone();
                    next.common.name = name.name.clone();
                    if let Some(body) = &part.body {
                        next.body = parse_required_text("body", body)?;
                    }
                    next.variables = match (variables, mode) {
                        (Some(variables), _) => variables,
                        (None, ImportMode::Merge) => current.variables.clone(),
                        (None, ImportMode::Replace) => Vec::new(),
                    };
                    knowledge::check_template(&next.body, &next.variables)
                        .map_err(|err| named_error(err, "prompt template", &name.name))?;
                    push_change(
                        &mut summary.prompt_templates,
                        &mut prompt_templates.put,
                        *current,
                        next,
                        now,
                        |row| &mut row.common,
                    );
                }
                None => {
                    let body = part.body.as_deref().ok_or_else(|| {
                        Problem::validation(
                            ErrorCode::MissingText,
                            format!("new prompt template `{}` needs a `body`", name.name),
                        )
                    })?;
                    let body = parse_required_text("body", body)?;
                    let variables = variables.unwrap_or_default();
                    knowledge::check_template(&body, &variables)
                        .map_err(|err| named_error(err, "prompt template", &name.name))?;
                    summary.prompt_templates.created.push(name.name.clone());
                    prompt_templates.put.push(PromptTemplateRow {
                        common: fresh(name.name),
                        body,
                        variables,
                    });
                }
            }
        }
        if mode == ImportMode::Replace {
            let named: BTreeSet<String> = parts.iter().map(|part| name_key(&part.name)).collect();
            for current in &snapshot.prompt_templates {
                if !named.contains(&name_key(&current.common.name)) {
                    summary
                        .prompt_templates
                        .deleted
                        .push(current.common.name.clone());
                    prompt_templates.delete.push(current.common.id.clone());
                }
            }
        }
    }

    Ok(Plan {
        project_name,
        project_description,
        style_guides,
        characters,
        prompt_templates,
        summary,
    })
}

/// Files `next` as updated (to be written with a new `updated_at`) or unchanged.
fn push_change<T: Clone + PartialEq>(
    section: &mut SectionChange,
    put: &mut Vec<T>,
    current: &T,
    mut next: T,
    now: &str,
    common: impl Fn(&mut T) -> &mut Common,
) {
    let name = common(&mut next).name.clone();
    if &next == current {
        section.unchanged.push(name);
    } else {
        common(&mut next).updated_at = now.to_owned();
        section.updated.push(name);
        put.push(next);
    }
}

fn named_error(err: Problem, what: &str, name: &str) -> Problem {
    Problem {
        message: format!("{what} `{name}`: {}", err.message),
        ..err
    }
}

#[cfg(test)]
mod tests;
