//! The `storage` commands, by method: a project's folder, or one export, synced with its S3
//! bucket; and the check of its settings, which `doctor` runs for every project.

use super::{Spelling, Variant, asked, positional, switch, variants};

/// The whole project folder unless `--export ID`.
const WHAT: &[Variant] = &[
    Variant::default("project"),
    Variant::typed("export", "--export", "id", "ID"),
];

/// A push unless `--pull`.
const DIRECTION: &[Variant] = &[Variant::default("push"), Variant::switch("pull", "--pull")];

pub(super) static SPELLINGS: &[Spelling] = &[
    Spelling {
        method: "storage.plan",
        command: "storage plan",
        args: &[
            positional("project", "PROJECT"),
            variants("what", WHAT).optional(),
            variants("direction", DIRECTION).optional(),
            switch("delete", "--delete"),
        ],
    },
    // `storage sync` shows the plan and asks before it deletes; the deletes the person saw go
    // in `confirmed_deletes`.
    Spelling {
        method: "storage.sync",
        command: "storage sync",
        args: &[
            positional("project", "PROJECT"),
            variants("what", WHAT).optional(),
            variants("direction", DIRECTION).optional(),
            switch("delete", "--delete"),
            switch("dry_run", "--dry-run"),
            asked("confirmed_deletes"),
        ],
    },
    // `doctor` checks the S3 settings of every project that has them, so the project is its own
    // to give.
    Spelling {
        method: "storage.check",
        command: "doctor",
        args: &[asked("project")],
    },
];
