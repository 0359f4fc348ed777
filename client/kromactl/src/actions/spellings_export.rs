//! The `export` commands, by method: packages of a project's results, and their verification.

use super::{Spelling, Variant, asked, flag, positional, variants};

/// `export create`'s selection: one of four flags.
const SELECTION: &[Variant] = &[
    Variant::switch("approved", "--approved"),
    Variant::typed("run", "--run", "run", "RUN"),
    Variant::typed("assets", "--asset", "assets", "ID"),
    Variant::switch("project", "--project-all"),
];

/// A `.tar.gz` unless `--folder`.
const FORMAT: &[Variant] = &[
    Variant::default("tar_gz"),
    Variant::switch("folder", "--folder"),
];

pub(super) static SPELLINGS: &[Spelling] = &[
    Spelling {
        method: "export.create",
        command: "export create",
        args: &[
            positional("project", "PROJECT"),
            variants("selection", SELECTION),
            variants("format", FORMAT).optional(),
        ],
    },
    Spelling {
        method: "export.list",
        command: "export list",
        args: &[flag("project", "--project", "PROJECT")],
    },
    Spelling {
        method: "export.get",
        command: "export show",
        args: &[positional("id", "ID")],
    },
    // `export verify` also takes a path, checked here without kromad; kromad's method takes ids.
    Spelling {
        method: "export.verify",
        command: "export verify",
        args: &[positional("id", "EXPORT")],
    },
    Spelling {
        method: "export.delete",
        command: "export rm",
        args: &[positional("id", "ID"), asked("confirm")],
    },
];
