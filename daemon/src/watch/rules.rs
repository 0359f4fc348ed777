//! Pure rules of drop folders: rule names, which file names are ignored or matched, and which
//! folders may be watched given the others (no folder inside another rule's or a project's, no
//! output folder that feeds back into a watched one). Paths come in with their links resolved.

use std::path::{Path, PathBuf};

use globset::{GlobSet, GlobSetBuilder};
use kroma_protocol::ErrorCode;
use kroma_protocol::watch::{DEFAULT_PATTERNS, MAX_PATTERNS};

use crate::error::Problem;

/// The folders a rule keeps its inputs in, inside the watched folder.
pub const PROCESSING: &str = "processing";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";
pub const DUPLICATES: &str = "duplicates";

/// The shortest and longest settle interval, in milliseconds.
pub const SETTLE_MS: std::ops::RangeInclusive<u64> = 100..=600_000;

const MAX_NAME_CHARS: usize = 64;
const MAX_PATTERN_CHARS: usize = 200;

/// Whether a rule name is letters, digits, `-` and `_`, 1 to 64 of them, and not a UUID's shape
/// (names and ids share one lookup).
pub fn check_name(name: &str) -> Result<(), Problem> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && uuid::Uuid::parse_str(name).is_err();
    if ok {
        Ok(())
    } else {
        Err(Problem::validation(
            ErrorCode::InvalidWatch,
            format!("`{name}` is not a rule name"),
        )
        .with_hint("use 1 to 64 letters, digits, `-` or `_`"))
    }
}

/// The name a rule gets when none is given: its folder's name, cleaned, made unique with a
/// number when `taken` says so.
pub fn default_name(folder: &Path, taken: impl Fn(&str) -> bool) -> String {
    let base: String = folder
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(MAX_NAME_CHARS - 4)
        .collect();
    let base = if base.trim_matches('-').is_empty() {
        "watch".to_owned()
    } else {
        base
    };
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|name| !taken(name))
        .unwrap_or(base)
}

/// Names that are never taken, whatever the patterns: files still being written by common
/// tools (`.part`, `.tmp`, `.crdownload`, `.download`, `.partial`, `~…`), dotfiles (our own
/// temporary files among them) and `.reason.txt` notes.
pub fn ignored(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    name.starts_with('.')
        || name.starts_with('~')
        || name.ends_with('~')
        || [
            ".part",
            ".tmp",
            ".temp",
            ".crdownload",
            ".download",
            ".partial",
            ".swp",
            ".reason.txt",
        ]
        .iter()
        .any(|suffix| lower.ends_with(suffix))
}

/// A rule's file name patterns, matched case-insensitively against the bare file name.
#[derive(Debug, Clone)]
pub struct Patterns {
    set: GlobSet,
}

impl Patterns {
    /// Checks and compiles `patterns`; none means PNG, JPEG and WebP files.
    pub fn new(patterns: &[String]) -> Result<Patterns, Problem> {
        let invalid = |message: String| {
            Problem::validation(ErrorCode::InvalidWatch, message)
                .with_hint("patterns match file names, e.g. `*.png` or `scan-*.jpg`")
        };
        if patterns.len() > MAX_PATTERNS {
            return Err(invalid(format!(
                "{} patterns; at most {MAX_PATTERNS}",
                patterns.len()
            )));
        }
        let mut builder = GlobSetBuilder::new();
        let defaults: Vec<String> = DEFAULT_PATTERNS.iter().map(|p| (*p).to_owned()).collect();
        let patterns = if patterns.is_empty() {
            &defaults
        } else {
            patterns
        };
        for pattern in patterns {
            if pattern.is_empty()
                || pattern.len() > MAX_PATTERN_CHARS
                || pattern.contains('/')
                || pattern.contains('\\')
            {
                return Err(invalid(format!("`{pattern}` is not a file name pattern")));
            }
            let glob = globset::GlobBuilder::new(pattern)
                .case_insensitive(true)
                .literal_separator(true)
                .build()
                .map_err(|err| invalid(format!("`{pattern}`: {err}")))?;
            builder.add(glob);
        }
        let set = builder
            .build()
            .map_err(|err| invalid(format!("the patterns: {err}")))?;
        Ok(Patterns { set })
    }

    /// Whether a file of this name is to be taken.
    pub fn matches(&self, name: &str) -> bool {
        !ignored(name) && self.set.is_match(name)
    }
}

/// Where a rule's folders lie, links resolved, for the checks between rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub name: String,
    pub folder: PathBuf,
    /// A chain's output folder.
    pub output: Option<PathBuf>,
}

/// Checks a rule's folders against kromad's data dir, the project roots and the other rules.
/// A watched folder may not lie inside (or be) another rule's, nor hold one, since a rule's
/// `done/` would feed the other; nor lie inside a project root (Kroma writes there) or the data
/// dir. An output folder
/// may not lie inside the watched folder, nor close a loop through other rules' folders.
pub fn check_placement(
    rule: &Placed,
    others: &[Placed],
    project_roots: &[PathBuf],
    data_dir: &Path,
) -> Result<(), Problem> {
    let refuse = |message: String, hint: &str| {
        Err(Problem::validation(ErrorCode::InvalidWatch, message).with_hint(hint))
    };
    if let Some(root) = project_roots
        .iter()
        .find(|root| rule.folder.starts_with(root))
    {
        return refuse(
            format!(
                "{} is inside the project folder {}",
                rule.folder.display(),
                root.display()
            ),
            "Kroma writes into project folders; watch a folder outside them",
        );
    }
    // Only files directly in a folder are taken, so a folder that holds the data dir is fine.
    if rule.folder.starts_with(data_dir) {
        return refuse(
            format!(
                "{} is inside kromad's data dir {}",
                rule.folder.display(),
                data_dir.display()
            ),
            "watch a folder of your own",
        );
    }
    for other in others {
        if rule.folder.starts_with(&other.folder) || other.folder.starts_with(&rule.folder) {
            return refuse(
                format!(
                    "{} overlaps the folder {} of rule `{}`",
                    rule.folder.display(),
                    other.folder.display(),
                    other.name
                ),
                "give each rule a folder of its own, neither inside the other",
            );
        }
    }
    if let Some(output) = &rule.output {
        if output.starts_with(&rule.folder) {
            return refuse(
                format!(
                    "the output folder {} is inside the watched folder {}: outputs would be taken again",
                    output.display(),
                    rule.folder.display()
                ),
                "choose an output folder outside the watched one",
            );
        }
        if output.starts_with(data_dir) {
            return refuse(
                format!(
                    "the output folder {} is inside kromad's data dir",
                    output.display()
                ),
                "choose an output folder of your own",
            );
        }
        if let Some(path) = feeds_back(rule, others) {
            return refuse(
                format!(
                    "outputs would come back to {} through {}",
                    rule.folder.display(),
                    path.join(" → ")
                ),
                "one rule's output may feed another rule, but never back around",
            );
        }
    }
    Ok(())
}

/// The names of the rules through which `rule`'s output comes back to its own folder, if it
/// does: outputs land in a folder some rule watches, whose output lands in another, …
fn feeds_back(rule: &Placed, others: &[Placed]) -> Option<Vec<String>> {
    let mut path = vec![rule.name.clone()];
    let mut current = rule.output.clone();
    // Each rule is visited at most once: the chain is at most as long as the list.
    for _ in 0..=others.len() {
        let output = current?;
        if output.starts_with(&rule.folder) {
            return Some(path);
        }
        let next = others
            .iter()
            .find(|other| output.starts_with(&other.folder))?;
        if path.contains(&next.name) {
            return None;
        }
        path.push(next.name.clone());
        current = next.output.clone();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(name: &str, folder: &str, output: Option<&str>) -> Placed {
        Placed {
            name: name.to_owned(),
            folder: PathBuf::from(folder),
            output: output.map(PathBuf::from),
        }
    }

    const DATA: &str = "/home/u/.local/share/kroma";

    fn check(rule: &Placed, others: &[Placed]) -> Result<(), String> {
        check_placement(
            rule,
            others,
            &[PathBuf::from("/work/comic")],
            Path::new(DATA),
        )
        .map_err(|err| err.message)
    }

    #[test]
    fn files_being_written_and_dotfiles_are_ignored() {
        for name in [
            "scan.png.part",
            "scan.PNG.crdownload",
            ".scan.png",
            "~scan.png",
            "scan.png~",
            "scan.tmp",
            "a.png.reason.txt",
            ".kroma-x.part",
        ] {
            assert!(ignored(name), "{name}");
        }
        for name in ["scan.png", "partial-scan.png", "tmp.png"] {
            assert!(!ignored(name), "{name}");
        }
    }

    #[test]
    fn patterns_match_names_case_insensitively_and_default_to_images() {
        let images = Patterns::new(&[]).unwrap();
        assert!(images.matches("A.PNG"));
        assert!(images.matches("b.jpeg"));
        assert!(!images.matches("notes.txt"));
        assert!(!images.matches("a.png.part"));
        let scans = Patterns::new(&["scan-*.jpg".to_owned()]).unwrap();
        assert!(scans.matches("scan-01.JPG"));
        assert!(!scans.matches("photo.jpg"));
        for bad in ["", "a/*.png", "[", "..\\x"] {
            assert!(Patterns::new(&[bad.to_owned()]).is_err(), "{bad}");
        }
        assert!(Patterns::new(&vec!["*.png".to_owned(); MAX_PATTERNS + 1]).is_err());
    }

    #[test]
    fn names_are_plain_and_default_names_unique() {
        assert!(check_name("scanner-1").is_ok());
        for bad in [
            "",
            "a b",
            "x/y",
            &"n".repeat(65),
            "6f1c1a54-3f4e-4a4e-9a3b-1b2c3d4e5f60",
        ] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let taken = ["inbox", "inbox-2"];
        assert_eq!(
            default_name(Path::new("/x/Inbox"), |n| taken.contains(&n)),
            "inbox-3"
        );
        assert_eq!(
            default_name(Path::new("/x/My Scans"), |_| false),
            "my-scans"
        );
        assert_eq!(default_name(Path::new("/"), |_| false), "watch");
    }

    #[test]
    fn folders_may_not_overlap_rules_projects_or_the_data_dir() {
        let others = [placed("a", "/drop/a", None)];
        assert!(check(&placed("b", "/drop/b", None), &others).is_ok());
        for folder in ["/drop/a", "/drop/a/done", "/drop"] {
            let err = check(&placed("b", folder, None), &others).unwrap_err();
            assert!(err.contains("rule `a`"), "{folder}: {err}");
        }
        let err = check(&placed("b", "/work/comic/in", None), &[]).unwrap_err();
        assert!(err.contains("project folder"), "{err}");
        let err = check(&placed("b", &format!("{DATA}/x"), None), &[]).unwrap_err();
        assert!(err.contains("data dir"), "{err}");
        assert!(check(&placed("b", "/home/u/.local", None), &[]).is_ok());
    }

    #[test]
    fn outputs_may_feed_other_rules_but_never_back() {
        let err = check(&placed("a", "/drop/a", Some("/drop/a/out")), &[]).unwrap_err();
        assert!(err.contains("inside the watched folder"), "{err}");
        let b = placed("b", "/drop/b", Some("/out"));
        assert!(check(&placed("a", "/drop/a", Some("/drop/b")), &[b]).is_ok());
        let b = placed("b", "/drop/b", Some("/drop/c"));
        let c = placed("c", "/drop/c", Some("/drop/a"));
        let err = check(&placed("a", "/drop/a", Some("/drop/b")), &[b, c]).unwrap_err();
        assert!(err.contains("a → b → c"), "{err}");
    }
}
