//! The store's errors as problems a caller can act on: a missing project, a taken slug, a
//! database from a newer kromad.

use kroma_protocol as protocol;
use protocol::{ErrorCode, ErrorKind};

use super::StoreError;
use crate::error::{Hint, Problem};

impl From<StoreError> for Problem {
    fn from(err: StoreError) -> Problem {
        match &err {
            StoreError::ProjectNotFound(slug) => Problem::new(
                ErrorKind::NotFound,
                ErrorCode::ProjectNotFound,
                format!("project `{slug}` not found"),
            )
            .with_hint(Hint::new(
                "the project list shows the projects that exist",
                protocol::Action::call::<protocol::project::List>([], &[]),
            )),
            StoreError::SlugTaken(slug) => Problem::new(
                ErrorKind::Conflict,
                ErrorCode::SlugTaken,
                format!("a project with slug `{slug}` already exists"),
            )
            .with_hint("pick another name or pass a different slug"),
            StoreError::AssetNotFound(id) => Problem::new(
                ErrorKind::NotFound,
                ErrorCode::AssetNotFound,
                format!("asset `{id}` not found in this project"),
            )
            .with_hint(Hint::new(
                "the project's asset list shows its assets",
                protocol::Action::call::<protocol::asset::List>([], &["project"]),
            )),
            StoreError::NotAnImage(id) => Problem::validation(
                ErrorCode::NotAnImage,
                format!("asset `{id}` is a voice recording, not an image"),
            )
            .with_hint("name an image asset of the project"),
            StoreError::LinkExists => Problem::new(
                ErrorKind::Conflict,
                ErrorCode::LinkExists,
                "these assets are already linked this way",
            ),
            StoreError::EntityNotFound { what, key } => Problem::new(
                ErrorKind::NotFound,
                ErrorCode::NotFound,
                format!("{what} `{key}` not found in this project"),
            )
            .with_hint(listing(what)),
            StoreError::NameTaken { what, name } => Problem::new(
                ErrorKind::Conflict,
                ErrorCode::NameTaken,
                format!("a {what} named `{name}` already exists in this project"),
            )
            .with_hint("names are unique per project, ignoring case; pick another"),
            StoreError::NewerSchema { .. } => {
                Problem::new(ErrorKind::Infra, ErrorCode::NewerSchema, err.to_string())
                    .with_hint("upgrade kromad to the version that wrote this database")
            }
            StoreError::Open { .. }
            | StoreError::Migrate { .. }
            | StoreError::Sqlite(_)
            | StoreError::Corrupt(_)
            | StoreError::Task(_) => {
                Problem::new(ErrorKind::Infra, ErrorCode::DatabaseError, err.to_string())
                    .with_hint("check the disk and the kromad log; the request was not applied")
            }
        }
    }
}

/// Where the names of `what` (a [`StoreError::EntityNotFound`] thing) are listed.
fn listing(what: &str) -> Hint {
    use protocol::Action;
    use protocol::knowledge as wire;
    let (text, action) = match what {
        "style guide" => (
            "list the project's style guides to see their names",
            Action::call::<wire::style_guide::List>([], &["project"]),
        ),
        "character" => (
            "list the project's characters to see their names",
            Action::call::<wire::character::List>([], &["project"]),
        ),
        "reference set" => (
            "list the project's reference sets to see their names",
            Action::call::<wire::reference_set::List>([], &["project"]),
        ),
        "prompt template" => (
            "list the project's prompt templates to see their names",
            Action::call::<wire::prompt_template::List>([], &["project"]),
        ),
        "provider" => (
            "the provider list shows the provider accounts that exist",
            Action::call::<protocol::provider::List>([], &[]),
        ),
        "candidate" => (
            "a run's details list its candidates",
            Action::call::<protocol::run::Show>([], &["run"]),
        ),
        "run" => (
            "the run list shows the runs that exist",
            Action::call::<protocol::run::List>([], &[]),
        ),
        other => return format!("list the {other}s to see their names").into(),
    };
    Hint::new(text, action)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_entity_names_the_list_that_has_it() {
        let method = |what: &'static str| {
            let err = Problem::from(StoreError::EntityNotFound {
                what,
                key: "x".into(),
            });
            match err.action.map(|action| *action) {
                Some(protocol::Action::Call(call)) => (call.method, call.needs),
                other => panic!("{what}: {other:?}"),
            }
        };
        let project = vec!["project".to_owned()];
        assert_eq!(
            method("style guide"),
            ("style_guide.list".into(), project.clone())
        );
        assert_eq!(
            method("character"),
            ("character.list".into(), project.clone())
        );
        assert_eq!(
            method("reference set"),
            ("reference_set.list".into(), project.clone())
        );
        assert_eq!(
            method("prompt template"),
            ("prompt_template.list".into(), project)
        );
        assert_eq!(method("provider"), ("provider.list".into(), vec![]));
        assert_eq!(method("run"), ("run.list".into(), vec![]));
        assert_eq!(
            method("candidate"),
            ("run.show".into(), vec!["run".to_owned()])
        );
    }

    /// The error a store failure becomes has the expected code, sent with one of its kinds.
    fn check_store(err: StoreError, expected: ErrorCode) {
        let what = err.to_string();
        let api = Problem::from(err);
        assert_eq!(api.code, expected, "{what}");
        assert!(api.code.kinds().contains(&api.kind), "{what}");
        assert_eq!(api.to_data().code(), Some(expected), "{what}");
    }

    #[test]
    fn store_errors_keep_their_codes_and_kinds() {
        check_store(
            StoreError::ProjectNotFound("x".into()),
            ErrorCode::ProjectNotFound,
        );
        check_store(StoreError::SlugTaken("x".into()), ErrorCode::SlugTaken);
        check_store(
            StoreError::AssetNotFound("a1".into()),
            ErrorCode::AssetNotFound,
        );
        check_store(StoreError::LinkExists, ErrorCode::LinkExists);
        check_store(
            StoreError::EntityNotFound {
                what: "style guide",
                key: "Ink".into(),
            },
            ErrorCode::NotFound,
        );
        check_store(
            StoreError::NameTaken {
                what: "character",
                name: "Mara".into(),
            },
            ErrorCode::NameTaken,
        );
        check_store(
            StoreError::NewerSchema {
                path: "/data/kroma.db".into(),
                found: 9,
                supported: 8,
            },
            ErrorCode::NewerSchema,
        );
        check_store(StoreError::Corrupt("x".into()), ErrorCode::DatabaseError);
        check_store(StoreError::Task("x".into()), ErrorCode::DatabaseError);
    }
}
