//! Planning bootstrap imports against in-memory snapshots.

use super::*;
use protocol::bootstrap::ProjectPart;

const NOW: &str = "2026-11-27T10:00:00.000Z";

fn common(name: &str) -> Common {
    Common {
        id: format!("id-{}", name_key(name)),
        project_slug: "p".into(),
        name: name.into(),
        created_at: "2026-01-01T00:00:00.000Z".into(),
        updated_at: "2026-01-01T00:00:00.000Z".into(),
    }
}

fn guide(name: &str, instructions: &str, is_default: bool) -> StyleGuideRow {
    StyleGuideRow {
        common: common(name),
        instructions: instructions.into(),
        palette: "teal".into(),
        line: String::new(),
        lighting: String::new(),
        notes: String::new(),
        is_default,
        references: vec!["asset-1".into()],
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        project_slug: "p".into(),
        project_name: "Harbor".into(),
        project_description: "Rain".into(),
        style_guides: vec![
            guide("Ink", "brush ink", true),
            guide("Noir", "hard shadows", false),
        ],
        characters: vec![CharacterRow {
            common: common("Mara"),
            description: "pilot".into(),
            prompt_text: "grey braid".into(),
            identity_notes: "scar".into(),
            references: Vec::new(),
        }],
        prompt_templates: vec![PromptTemplateRow {
            common: common("Scene"),
            body: "{{who}} at dusk".into(),
            variables: vec!["who".into()],
        }],
    }
}

/// What the project would hold after the plan, in memory.
fn apply(snapshot: &Snapshot, plan: &Plan) -> Snapshot {
    fn section<T: Clone>(rows: &[T], section: &SectionPlan<T>, id: impl Fn(&T) -> &str) -> Vec<T> {
        let mut next: Vec<T> = rows
            .iter()
            .filter(|row| !section.delete.iter().any(|deleted| deleted == id(row)))
            .cloned()
            .collect();
        for put in &section.put {
            match next.iter_mut().find(|row| id(row) == id(put)) {
                Some(row) => *row = put.clone(),
                None => next.push(put.clone()),
            }
        }
        next
    }
    let mut next = snapshot.clone();
    if let Some(name) = &plan.project_name {
        next.project_name = name.clone();
    }
    if let Some(description) = &plan.project_description {
        next.project_description = description.clone();
    }
    next.style_guides = section(&snapshot.style_guides, &plan.style_guides, |row| {
        &row.common.id
    });
    next.characters = section(&snapshot.characters, &plan.characters, |row| &row.common.id);
    next.prompt_templates = section(&snapshot.prompt_templates, &plan.prompt_templates, |row| {
        &row.common.id
    });
    next
}

fn doc(json: serde_json::Value) -> BootstrapDocument {
    serde_json::from_value(json).unwrap()
}

#[test]
fn merge_creates_updates_and_keeps_what_is_not_named() {
    let document = doc(serde_json::json!({
        "project": {"description": "Rain and neon"},
        "style_guides": [{"name": "ink", "lighting": "low sun"}, {"name": "Watercolor", "instructions": "soft edges"}],
        "characters": [{"name": "Mara", "prompt_text": "grey braid"}],
    }));
    let plan = plan(&snapshot(), &document, ImportMode::Merge, NOW).unwrap();
    let summary = &plan.summary;
    assert!(!summary.project.name_changed && summary.project.description_changed);
    assert_eq!(summary.style_guides.updated, ["ink"]);
    assert_eq!(summary.style_guides.created, ["Watercolor"]);
    assert!(summary.style_guides.deleted.is_empty());
    assert_eq!(summary.characters.unchanged, ["Mara"]);
    assert!(!summary.prompt_templates.provided);
    let ink = plan
        .style_guides
        .put
        .iter()
        .find(|g| g.common.id == "id-ink")
        .unwrap();
    assert_eq!(ink.palette, "teal", "merge keeps omitted fields");
    assert_eq!(ink.lighting, "low sun");
    assert_eq!(
        ink.references,
        ["asset-1"],
        "reference images are never touched"
    );
    assert_eq!(ink.common.updated_at, NOW);
    assert!(ink.is_default);
}

#[test]
fn replace_deletes_what_is_not_named_and_empties_omitted_fields() {
    let document = doc(serde_json::json!({
        "style_guides": [{"name": "Ink", "instructions": "brush ink"}],
        "prompt_templates": [],
    }));
    let plan = plan(&snapshot(), &document, ImportMode::Replace, NOW).unwrap();
    assert_eq!(plan.summary.style_guides.updated, ["Ink"]);
    assert_eq!(plan.summary.style_guides.deleted, ["Noir"]);
    assert_eq!(plan.summary.prompt_templates.deleted, ["Scene"]);
    assert!(
        !plan.summary.characters.provided,
        "absent sections are kept"
    );
    assert_eq!(
        plan.style_guides.put[0].palette, "",
        "replace empties omitted fields"
    );
}

#[test]
fn a_new_default_takes_over_from_the_old_one() {
    let document = doc(serde_json::json!({"style_guides": [{"name": "Noir", "is_default": true}]}));
    let plan = plan(&snapshot(), &document, ImportMode::Merge, NOW).unwrap();
    let after = apply(&snapshot(), &plan);
    let defaults: Vec<&str> = after
        .style_guides
        .iter()
        .filter(|g| g.is_default)
        .map(|g| g.common.name.as_str())
        .collect();
    assert_eq!(defaults, ["Noir"]);
    assert_eq!(plan.summary.style_guides.updated, ["Noir", "Ink"]);
}

#[test]
fn importing_the_exported_document_changes_nothing() {
    for mode in [ImportMode::Merge, ImportMode::Replace] {
        let current = snapshot();
        let plan = plan(&current, &document_of(&current), mode, NOW).unwrap();
        let summary = &plan.summary;
        assert!(!summary.project.name_changed && !summary.project.description_changed);
        for section in [
            &summary.style_guides,
            &summary.characters,
            &summary.prompt_templates,
        ] {
            assert!(
                section.created.is_empty()
                    && section.updated.is_empty()
                    && section.deleted.is_empty(),
                "{mode:?}: {section:?}"
            );
        }
        assert!(plan.style_guides.put.is_empty() && plan.characters.put.is_empty());
    }
}

#[test]
fn applying_a_plan_twice_is_a_no_op_the_second_time() {
    let document = doc(serde_json::json!({
        "project": {"name": "Harbor II"},
        "style_guides": [{"name": "Pastel", "instructions": "soft", "is_default": true}],
        "characters": [{"name": "Ilo", "description": "dock kid"}],
        "prompt_templates": [{"name": "Close-up", "body": "{{who}} close up", "variables": ["who"]}],
    }));
    for mode in [ImportMode::Merge, ImportMode::Replace] {
        let first = plan(&snapshot(), &document, mode, NOW).unwrap();
        let after = apply(&snapshot(), &first);
        let second = plan(&after, &document, mode, NOW).unwrap();
        for section in [
            &second.summary.style_guides,
            &second.summary.characters,
            &second.summary.prompt_templates,
        ] {
            assert!(
                section.created.is_empty()
                    && section.updated.is_empty()
                    && section.deleted.is_empty(),
                "{mode:?}: {section:?}"
            );
        }
    }
}

fn plan_error(json: serde_json::Value) -> Problem {
    plan(&snapshot(), &doc(json), ImportMode::Merge, NOW).unwrap_err()
}

#[test]
fn bad_documents_are_refused_with_the_reason() {
    let err = plan_error(serde_json::json!({"characters": [{"name": "Mara"}, {"name": "MARA"}]}));
    assert_eq!(err.code, ErrorCode::DuplicateName);
    assert!(err.message.contains("`MARA`"), "{}", err.message);
    let err = plan_error(
        serde_json::json!({"style_guides": [{"name": "A", "instructions": "x", "is_default": true}, {"name": "B", "instructions": "y", "is_default": true}]}),
    );
    assert_eq!(err.code, ErrorCode::DefaultRequired);
    assert_eq!(
        plan_error(serde_json::json!({"style_guides": [{"name": "New"}]})).code,
        ErrorCode::MissingText
    );
    let err = plan_error(
        serde_json::json!({"prompt_templates": [{"name": "Bad", "body": "{{x}} {{y}}", "variables": ["x"]}]}),
    );
    assert_eq!(err.code, ErrorCode::UndeclaredVariable);
    assert!(err.message.contains("`Bad`"), "{}", err.message);
    assert_eq!(
        plan_error(serde_json::json!({})).code,
        ErrorCode::EmptyDocument
    );
    assert_eq!(
        plan_error(serde_json::json!({"schema_version": "kroma.bootstrap.v9", "project": {}})).code,
        ErrorCode::SchemaVersion
    );
    assert_eq!(
        plan_error(serde_json::json!({"project": {"name": ""}})).code,
        ErrorCode::InvalidName
    );
    let _ = ProjectPart::default();
}

#[test]
fn answers_are_read_from_raw_fenced_or_wrapped_json() {
    let raw = r#"{"characters": [{"name": "Mara"}]}"#;
    let fenced = format!("Here you go:\n```json\n{raw}\n```\nEnjoy!");
    let wrapped = format!("Sure! {raw} Let me know.");
    for text in [raw.to_owned(), fenced, wrapped] {
        let document = read_answer(&text).unwrap();
        assert_eq!(document.characters.unwrap()[0].name, "Mara");
    }
    assert_eq!(
        read_answer("   ").unwrap_err().code,
        ErrorCode::EmptyDocument
    );
    assert_eq!(
        read_answer("no json here").unwrap_err().code,
        ErrorCode::InvalidDocument
    );
    let err = read_answer(r#"{"characters": [{"name": "Mara", "age": 40}]}"#).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidDocument);
    assert!(
        err.message.contains("unknown field `age`"),
        "{}",
        err.message
    );
}

#[test]
fn the_prompt_carries_rules_schema_and_current_settings() {
    let schema = protocol::bootstrap::schema();
    let text = prompt(&document_of(&snapshot()), &schema);
    assert!(text.contains("Return ONLY one JSON object"));
    assert!(text.contains("{{variable}}"));
    assert!(text.contains("\"brush ink\""));
    assert!(text.contains("\"$schema\""));
    assert!(text.contains(protocol::bootstrap::SCHEMA_VERSION));
}
