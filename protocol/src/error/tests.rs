//! Tests of `error.rs`.

use super::*;

#[test]
fn every_kind_has_its_own_code() {
    let mut codes: Vec<i32> = ErrorKind::ALL.iter().map(|kind| kind.code()).collect();
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), ErrorKind::ALL.len());
    for kind in ErrorKind::ALL {
        let json = serde_json::to_value(kind).unwrap();
        assert_eq!(json, kind.as_str());
    }
}

#[test]
fn every_code_round_trips_by_name_and_through_serde() {
    let mut names = Vec::new();
    for &code in ErrorCode::ALL {
        let name = code.as_str();
        assert_eq!(serde_json::to_value(code).unwrap(), name);
        assert_eq!(
            serde_json::from_value::<ErrorCode>(name.into()).unwrap(),
            code
        );
        assert_eq!(name.parse::<ErrorCode>(), Ok(code));
        assert_eq!(code.to_string(), name);
        let snake = name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        assert!(
            snake && !name.starts_with('_') && !name.ends_with('_'),
            "{name}"
        );
        assert!(!code.kinds().is_empty(), "{name}");
        names.push(name);
    }
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ErrorCode::ALL.len(), "a name is used twice");
}

#[test]
fn only_template_syntax_has_two_kinds() {
    let several: Vec<ErrorCode> = ErrorCode::ALL
        .iter()
        .copied()
        .filter(|code| code.kind().is_none())
        .collect();
    assert_eq!(several, [ErrorCode::TemplateSyntax]);
    assert_eq!(
        ErrorCode::TemplateSyntax.kinds(),
        [ErrorKind::Validation, ErrorKind::Internal]
    );
    assert_eq!(ErrorCode::ProjectNotFound.kind(), Some(ErrorKind::NotFound));
}

#[test]
fn an_unknown_code_is_tolerated_in_data_but_refused_as_a_code() {
    let data: ErrorData = serde_json::from_value(serde_json::json!({
        "kind": "conflict",
        "code": "added_in_a_later_kromad",
        "message": "something new",
        "hint": "do the new thing",
    }))
    .unwrap();
    assert_eq!(data.code(), None);
    assert_eq!(data.kind, ErrorKind::Conflict);
    assert_eq!(data.hint.as_deref(), Some("do the new thing"));
    assert_eq!(
        "added_in_a_later_kromad".parse::<ErrorCode>(),
        Err(UnknownErrorCode("added_in_a_later_kromad".to_owned()))
    );
    assert!(serde_json::from_value::<ErrorCode>("added_in_a_later_kromad".into()).is_err());
}

#[test]
fn an_action_rides_along_and_an_unknown_one_reads_as_absent() {
    let data = ErrorData::new(
        ErrorKind::Provider,
        ErrorCode::NoKey,
        "the key of provider `openai` (secret `openai`) cannot be read",
    )
    .with_hint("store the key in secret `openai`, then start the run again")
    .with_action(Action::call::<crate::secret::Set>(
        [("name", "openai".into())],
        &[],
    ));
    let json = serde_json::to_value(&data).unwrap();
    assert_eq!(
        json["action"],
        serde_json::json!({"type": "call", "method": "secret.set", "params": {"name": "openai"}, "needs": ["value"]})
    );
    assert_eq!(serde_json::from_value::<ErrorData>(json).unwrap(), data);

    let later: ErrorData = serde_json::from_value(serde_json::json!({
        "kind": "infra", "code": "models_missing", "message": "no models",
        "hint": "install the local models",
        "action": {"type": "open_installer_gui", "where": "a later kromad"},
    }))
    .unwrap();
    assert_eq!(later.action, None);
    assert_eq!(later.hint.as_deref(), Some("install the local models"));
    let older: ErrorData = serde_json::from_value(serde_json::json!({
        "kind": "infra", "code": "models_missing", "message": "no models",
    }))
    .unwrap();
    assert_eq!(
        older,
        ErrorData::new(ErrorKind::Infra, ErrorCode::ModelsMissing, "no models")
    );
}

#[test]
fn data_built_from_a_code_is_what_kromad_sends() {
    let data = ErrorData::new(
        ErrorKind::NotFound,
        ErrorCode::ProjectNotFound,
        "project `x` not found",
    )
    .with_hint("project.list shows the projects that exist");
    assert_eq!(data.code(), Some(ErrorCode::ProjectNotFound));
    assert_eq!(
        serde_json::to_value(&data).unwrap(),
        serde_json::json!({
            "kind": "not_found",
            "code": "project_not_found",
            "message": "project `x` not found",
            "hint": "project.list shows the projects that exist",
        })
    );
    let without_hint = ErrorData::new(ErrorKind::Internal, ErrorCode::Internal, "oops");
    assert_eq!(
        serde_json::to_string(&without_hint).unwrap(),
        r#"{"kind":"internal","code":"internal","message":"oops"}"#
    );
}
