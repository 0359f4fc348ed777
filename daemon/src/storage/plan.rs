//! Pure: where a project's objects live in the bucket, which names may cross between the bucket
//! and a project folder, and the diff of the two sides that a plan shows.

use std::collections::{BTreeMap, BTreeSet};

use kroma_protocol::storage::{Direction, Op, PlanItem, Reason};

/// The key prefix of a project's objects: `<prefix>/<slug>/`, or `<slug>/` without a prefix.
pub fn base(prefix: &str, slug: &str) -> String {
    let prefix = prefix.trim_matches('/');
    if prefix.is_empty() {
        format!("{slug}/")
    } else {
        format!("{prefix}/{slug}/")
    }
}

/// `s3://<bucket>/<base>`.
pub fn destination(bucket: &str, base: &str) -> String {
    format!("s3://{bucket}/{base}")
}

/// The path in the project folder an object's key stands for, when it is one a pull may write:
/// relative, `/`-separated, no empty, `.` or `..` component, no control character or backslash,
/// and not one of kromad's own files (the project's marker, temporary files).
pub fn path_of_key(base: &str, key: &str) -> Option<String> {
    let path = key.strip_prefix(base)?;
    if path.is_empty() || path.len() > 1024 || is_private(path) {
        return None;
    }
    let safe = path.split('/').all(|part| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && !part.contains('\\')
            && !part.chars().any(char::is_control)
    });
    safe.then(|| path.to_owned())
}

/// Files of a project folder no sync moves: the marker naming the project that owns the folder
/// (another project's marker would take the folder over) and kromad's temporary files.
pub fn is_private(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path == crate::projects::layout::MARKER
        || (name.starts_with(".kroma-") && name.ends_with(".part"))
}

/// Both sides of a plan: each path with its size. `equal` holds the paths both sides have with
/// the same size whose sha256 also matched.
pub struct Sides<'a> {
    pub local: &'a BTreeMap<String, u64>,
    pub remote: &'a BTreeMap<String, u64>,
    pub equal: &'a BTreeSet<String>,
}

/// What a plan holds besides its items.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Transfers sorted by path, then deletes sorted by path.
    pub items: Vec<PlanItem>,
    pub unchanged: u32,
    pub kept: u32,
}

/// The paths both sides hold with the same size: only these need a sha256 comparison.
pub fn same_size<'a>(sides: &Sides<'a>) -> Vec<&'a str> {
    sides
        .local
        .iter()
        .filter(|(path, size)| sides.remote.get(*path) == Some(size))
        .map(|(path, _)| path.as_str())
        .collect()
}

/// Compares the source side of a sync with its destination.
pub fn diff(direction: Direction, delete: bool, base: &str, sides: &Sides<'_>) -> Diff {
    let (source, target, op) = match direction {
        Direction::Push => (sides.local, sides.remote, Op::Upload),
        Direction::Pull => (sides.remote, sides.local, Op::Download),
    };
    let item = |op, reason, path: &str, size| PlanItem {
        op,
        reason,
        path: path.to_owned(),
        key: format!("{base}{path}"),
        size,
    };
    let mut diff = Diff::default();
    for (path, size) in source {
        match target.get(path) {
            None => diff.items.push(item(op, Reason::New, path, *size)),
            Some(_) if sides.equal.contains(path) => diff.unchanged += 1,
            Some(_) => diff.items.push(item(op, Reason::Changed, path, *size)),
        }
    }
    for (path, size) in target {
        if source.contains_key(path) {
            continue;
        }
        if delete {
            diff.items.push(item(Op::Delete, Reason::Gone, path, *size));
        } else {
            diff.kept += 1;
        }
    }
    diff
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, u64)]) -> BTreeMap<String, u64> {
        entries.iter().map(|(p, s)| ((*p).to_owned(), *s)).collect()
    }

    fn ops(diff: &Diff) -> Vec<(Op, Reason, &str)> {
        diff.items
            .iter()
            .map(|item| (item.op, item.reason, item.path.as_str()))
            .collect()
    }

    #[test]
    fn keys_sit_under_the_prefix_and_slug() {
        assert_eq!(base("", "noir"), "noir/");
        assert_eq!(base("team/comics/", "noir"), "team/comics/noir/");
        assert_eq!(destination("b1", "noir/"), "s3://b1/noir/");
    }

    #[test]
    fn only_safe_names_come_down() {
        let base = "p/noir/";
        assert_eq!(
            path_of_key(base, "p/noir/outputs/a.png").as_deref(),
            Some("outputs/a.png")
        );
        for bad in [
            "p/noir/",
            "p/noir/../x",
            "p/noir/a/../../x",
            "p/noir//x",
            "p/noir/./x",
            "p/noir/a\\..\\x",
            "p/noir/a\nb",
            "p/noir/.kroma/project.json",
            "p/noir/outputs/.kroma-abc.part",
            "p/other/x",
            "p/noir-2/x",
        ] {
            assert_eq!(path_of_key(base, bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_push_uploads_new_and_changed_and_deletes_only_when_asked() {
        let local = map(&[("a", 1), ("b", 2), ("c", 3), ("d", 4)]);
        let remote = map(&[("b", 2), ("c", 3), ("d", 5), ("z", 9)]);
        let equal = BTreeSet::from(["b".to_owned()]);
        let sides = Sides {
            local: &local,
            remote: &remote,
            equal: &equal,
        };
        assert_eq!(same_size(&sides), vec!["b", "c"]);
        let kept = diff(Direction::Push, false, "n/", &sides);
        assert_eq!(
            ops(&kept),
            vec![
                (Op::Upload, Reason::New, "a"),
                (Op::Upload, Reason::Changed, "c"),
                (Op::Upload, Reason::Changed, "d"),
            ]
        );
        assert_eq!((kept.unchanged, kept.kept), (1, 1));
        assert_eq!(kept.items[0].key, "n/a");
        let deleting = diff(Direction::Push, true, "n/", &sides);
        assert_eq!(
            deleting
                .items
                .last()
                .map(|i| (i.op, i.path.as_str(), i.size)),
            Some((Op::Delete, "z", 9))
        );
        assert_eq!(deleting.kept, 0);
    }

    #[test]
    fn a_pull_is_the_mirror_image() {
        let local = map(&[("a", 1), ("b", 2)]);
        let remote = map(&[("b", 3), ("c", 4)]);
        let equal = BTreeSet::new();
        let sides = Sides {
            local: &local,
            remote: &remote,
            equal: &equal,
        };
        let pulled = diff(Direction::Pull, true, "n/", &sides);
        assert_eq!(
            ops(&pulled),
            vec![
                (Op::Download, Reason::Changed, "b"),
                (Op::Download, Reason::New, "c"),
                (Op::Delete, Reason::Gone, "a"),
            ]
        );
        assert_eq!(pulled.items[0].size, 3, "a download moves the remote size");
    }
}
