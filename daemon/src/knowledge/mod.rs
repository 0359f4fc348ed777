//! The rules of a project's knowledge, as pure functions: entity names, text fields, reference
//! weights, and prompt templates (declared variables, checking and rendering).

pub mod bootstrap;

use std::collections::{BTreeMap, BTreeSet};

use kroma_protocol as protocol;
use protocol::{ErrorCode, ErrorKind};

use crate::error::Problem;

const MAX_NAME_CHARS: usize = 120;
/// Longest text field (instructions, descriptions, template bodies).
pub const MAX_TEXT_CHARS: usize = 20_000;
const MAX_VARIABLE_LEN: usize = 64;
/// Most reference images one guide, character or set may hold.
pub const MAX_REFERENCES: usize = 64;

/// A validated entity name and its case-folded key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name {
    pub name: String,
    pub key: String,
}

pub fn parse_name(what: &str, name: &str) -> Result<Name, Problem> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(Problem::validation(
            ErrorCode::InvalidName,
            format!(
                "a {what} name must be 1 to {MAX_NAME_CHARS} characters without control characters"
            ),
        ));
    }
    Ok(Name {
        name: name.to_owned(),
        key: name_key(name),
    })
}

/// The key names are unique by: trimmed and lower-cased.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

pub fn parse_text(field: &str, text: &str) -> Result<String, Problem> {
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(Problem::validation(
            ErrorCode::TextTooLong,
            format!("`{field}` is longer than {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}

pub fn parse_required_text(field: &str, text: &str) -> Result<String, Problem> {
    if text.trim().is_empty() {
        return Err(Problem::validation(
            ErrorCode::MissingText,
            format!("`{field}` must not be empty"),
        ));
    }
    parse_text(field, text)
}

pub fn parse_weight(weight: f64) -> Result<f64, Problem> {
    if weight.is_finite() && weight > 0.0 && weight <= 10.0 {
        Ok(weight)
    } else {
        Err(Problem::validation(
            ErrorCode::InvalidWeight,
            format!("weight {weight} must be above 0 and at most 10"),
        ))
    }
}

/// Reference asset ids: at most [`MAX_REFERENCES`], each once.
pub fn parse_references(assets: &[String]) -> Result<Vec<String>, Problem> {
    if assets.len() > MAX_REFERENCES {
        return Err(Problem::validation(
            ErrorCode::TooManyReferences,
            format!("at most {MAX_REFERENCES} reference images"),
        ));
    }
    let mut seen = BTreeSet::new();
    for asset in assets {
        if !seen.insert(asset) {
            return Err(Problem::validation(
                ErrorCode::DuplicateReference,
                format!("asset `{asset}` is listed twice"),
            ));
        }
    }
    Ok(assets.to_vec())
}

/// Declared variable names: `[a-z_][a-z0-9_]*`, at most 64 bytes, each once.
pub fn parse_variables(variables: &[String]) -> Result<Vec<String>, Problem> {
    let mut seen = BTreeSet::new();
    for variable in variables {
        let valid = !variable.is_empty()
            && variable.len() <= MAX_VARIABLE_LEN
            && variable.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && variable
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(Problem::validation(
                ErrorCode::InvalidVariable,
                format!(
                    "variable name `{variable}` must match [a-z_][a-z0-9_]* (at most {MAX_VARIABLE_LEN} bytes)"
                ),
            ));
        }
        if !seen.insert(variable.as_str()) {
            return Err(Problem::validation(
                ErrorCode::InvalidVariable,
                format!("variable `{variable}` is declared twice"),
            ));
        }
    }
    Ok(variables.to_vec())
}

fn environment() -> minijinja::Environment<'static> {
    let mut environment = minijinja::Environment::new();
    environment.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    environment.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    environment
}

/// Checks that `body` parses and uses exactly the declared variables.
pub fn check_template(body: &str, declared: &[String]) -> Result<(), Problem> {
    let environment = environment();
    let template = environment.template_from_str(body).map_err(|err| {
        Problem::validation(
            ErrorCode::TemplateSyntax,
            format!("template does not parse: {err}"),
        )
        .with_hint("placeholders look like {{variable}}")
    })?;
    let used: BTreeSet<String> = template.undeclared_variables(false).into_iter().collect();
    let declared: BTreeSet<String> = declared.iter().cloned().collect();
    let undeclared: Vec<&String> = used.difference(&declared).collect();
    if !undeclared.is_empty() {
        return Err(Problem::validation(
            ErrorCode::UndeclaredVariable,
            format!("the body uses undeclared variables: {}", join(&undeclared)),
        )
        .with_hint("add them to the template's variables"));
    }
    let unused: Vec<&String> = declared.difference(&used).collect();
    if !unused.is_empty() {
        return Err(Problem::validation(
            ErrorCode::UnusedVariable,
            format!("declared variables the body never uses: {}", join(&unused)),
        )
        .with_hint("remove them from the variables, or use them as {{name}} in the body"));
    }
    Ok(())
}

/// Renders `body` with `vars`, which must give every declared variable and nothing else.
pub fn render(
    body: &str,
    declared: &[String],
    vars: &BTreeMap<String, String>,
) -> Result<String, Problem> {
    let declared_set: BTreeSet<&String> = declared.iter().collect();
    let missing: Vec<&String> = declared
        .iter()
        .filter(|name| !vars.contains_key(*name))
        .collect();
    let unknown: Vec<&String> = vars
        .keys()
        .filter(|name| !declared_set.contains(name))
        .collect();
    if !missing.is_empty() || !unknown.is_empty() {
        let mut problems = Vec::new();
        if !missing.is_empty() {
            problems.push(format!("missing {}", join(&missing)));
        }
        if !unknown.is_empty() {
            problems.push(format!("unknown {}", join(&unknown)));
        }
        return Err(Problem::validation(
            ErrorCode::TemplateVariables,
            format!("template variables do not match: {}", problems.join("; ")),
        )
        .with_hint(format!(
            "this template takes: {}",
            join(&declared.iter().collect::<Vec<_>>())
        )));
    }
    let environment = environment();
    let template = environment.template_from_str(body).map_err(|err| {
        Problem::new(
            ErrorKind::Internal,
            ErrorCode::TemplateSyntax,
            format!("stored template does not parse: {err}"),
        )
    })?;
    let context: BTreeMap<&str, &str> =
        vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    template
        .render(minijinja::Value::from_pairs(context))
        .map_err(|err| {
            Problem::validation(
                ErrorCode::TemplateRender,
                format!("rendering failed: {err}"),
            )
        })
}

fn join(names: &[&String]) -> String {
    if names.is_empty() {
        return "nothing".to_owned();
    }
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn declared(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn templates_use_exactly_their_declared_variables() {
        let body = "{{ character }} walks through {{place}} at {{ time_of_day }}";
        assert!(check_template(body, &declared(&["character", "place", "time_of_day"])).is_ok());
        let err = check_template(body, &declared(&["character", "place"])).unwrap_err();
        assert_eq!(err.code, ErrorCode::UndeclaredVariable);
        assert!(err.message.contains("`time_of_day`"), "{}", err.message);
        let err = check_template("plain text", &declared(&["unused"])).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnusedVariable);
        assert_eq!(
            check_template("{{ oops", &[]).unwrap_err().code,
            ErrorCode::TemplateSyntax
        );
    }

    #[test]
    fn rendering_names_missing_and_unknown_variables() {
        let body = "{{a}} and {{b}}";
        let names = declared(&["a", "b"]);
        assert_eq!(
            render(body, &names, &vars(&[("a", "ink"), ("b", "rain")])).unwrap(),
            "ink and rain"
        );
        let err = render(body, &names, &vars(&[("a", "ink"), ("c", "x")])).unwrap_err();
        assert_eq!(err.code, ErrorCode::TemplateVariables);
        assert!(
            err.message.contains("missing `b`") && err.message.contains("unknown `c`"),
            "{}",
            err.message
        );
        // Values are text, never markup: nothing is escaped or evaluated.
        assert_eq!(
            render(
                "{{a}}",
                &declared(&["a"]),
                &vars(&[("a", "<b>{{x}}</b> & co")])
            )
            .unwrap(),
            "<b>{{x}}</b> & co"
        );
    }

    #[test]
    fn names_variables_and_weights_are_checked() {
        assert_eq!(
            parse_name("style guide", "  Ink Wash ").unwrap(),
            Name {
                name: "Ink Wash".into(),
                key: "ink wash".into()
            }
        );
        assert!(parse_name("style guide", " ").is_err());
        assert!(parse_variables(&declared(&["ok_1", "_x"])).is_ok());
        for bad in ["", "Upper", "1st", "with-dash", "dup"] {
            let list = if bad == "dup" {
                declared(&["dup", "dup"])
            } else {
                declared(&[bad])
            };
            assert_eq!(
                parse_variables(&list).unwrap_err().code,
                ErrorCode::InvalidVariable,
                "{bad}"
            );
        }
        for bad in [0.0, -1.0, 10.5, f64::NAN, f64::INFINITY] {
            assert!(parse_weight(bad).is_err(), "{bad}");
        }
        assert!(parse_weight(10.0).is_ok());
        assert_eq!(
            parse_references(&declared(&["a", "a"])).unwrap_err().code,
            ErrorCode::DuplicateReference
        );
    }
}
