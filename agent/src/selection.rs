//! Which tools a server offers: all of them, only the read-only ones (`--read-only`), or an
//! allow-list (`--tools a,b,c`). Decided once at start from the tool list; an unknown name is an
//! error, so a typo never silently offers nothing.

use std::collections::BTreeSet;

use rmcp::model::Tool;

/// What the command line asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolSelection {
    /// Offer only tools annotated `readOnlyHint: true`.
    pub read_only: bool,
    /// Offer only these tools; `None` offers every tool the other rules allow.
    pub allow: Option<BTreeSet<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectionError {
    #[error("unknown tool {}; the tools are: {}", quoted(unknown), known.join(", "))]
    UnknownTools {
        unknown: Vec<String>,
        known: Vec<String>,
    },
    #[error("--tools names no tool")]
    Empty,
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl ToolSelection {
    /// Parses `--tools`: names separated by commas, blanks around them ignored.
    pub fn parse_allow_list(list: &str) -> Result<BTreeSet<String>, SelectionError> {
        let names: BTreeSet<String> = list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect();
        if names.is_empty() {
            return Err(SelectionError::Empty);
        }
        Ok(names)
    }

    /// The names of the tools to withdraw from `tools`, or why the selection is wrong.
    pub fn withdrawn(&self, tools: &[Tool]) -> Result<Vec<String>, SelectionError> {
        let known: Vec<String> = tools.iter().map(|tool| tool.name.to_string()).collect();
        if let Some(allow) = &self.allow {
            let unknown: Vec<String> = allow
                .iter()
                .filter(|name| !known.contains(name))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                return Err(SelectionError::UnknownTools { unknown, known });
            }
        }
        Ok(tools
            .iter()
            .filter(|tool| !self.offers(tool))
            .map(|tool| tool.name.to_string())
            .collect())
    }

    fn offers(&self, tool: &Tool) -> bool {
        let read_only = tool
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.read_only_hint)
            == Some(true);
        let allowed = self
            .allow
            .as_ref()
            .is_none_or(|allow| allow.contains(tool.name.as_ref()));
        allowed && (read_only || !self.read_only)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ToolAnnotations;

    fn tool(name: &str, read_only: Option<bool>) -> Tool {
        let annotations = ToolAnnotations::from_raw(None, read_only, None, None, None);
        Tool::new(name.to_owned(), "a tool", serde_json::Map::new()).with_annotations(annotations)
    }

    fn tools() -> Vec<Tool> {
        vec![
            tool("list_projects", Some(true)),
            tool("start_run", Some(false)),
            tool("unannotated", None),
        ]
    }

    fn check(selection: ToolSelection, expected: Result<&[&str], SelectionError>) {
        let expected = expected.map(|names| names.iter().map(|name| name.to_string()).collect());
        assert_eq!(selection.withdrawn(&tools()), expected, "{selection:?}");
    }

    fn allow(list: &str) -> Option<BTreeSet<String>> {
        Some(ToolSelection::parse_allow_list(list).expect("a list"))
    }

    #[test]
    fn read_only_withdraws_every_tool_not_marked_read_only() {
        check(ToolSelection::default(), Ok(&[]));
        let read_only = ToolSelection {
            read_only: true,
            allow: None,
        };
        check(read_only, Ok(&["start_run", "unannotated"]));
    }

    #[test]
    fn the_allow_list_keeps_only_its_tools_and_read_only_still_applies() {
        check(
            ToolSelection {
                read_only: false,
                allow: allow(" start_run ,list_projects"),
            },
            Ok(&["unannotated"]),
        );
        check(
            ToolSelection {
                read_only: true,
                allow: allow("start_run,list_projects"),
            },
            Ok(&["start_run", "unannotated"]),
        );
    }

    #[test]
    fn unknown_or_no_names_are_errors() {
        let err = ToolSelection {
            read_only: false,
            allow: allow("list_projects,lisst_runs"),
        }
        .withdrawn(&tools())
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown tool `lisst_runs`; the tools are: list_projects, start_run, unannotated"
        );
        assert_eq!(
            ToolSelection::parse_allow_list(" , "),
            Err(SelectionError::Empty)
        );
    }
}
