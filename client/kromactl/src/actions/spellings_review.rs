//! The commands that review outputs, by method: the QA guard (`qa`, `archive-bad`, `inspect`),
//! approving baselines, the contact sheet, and `run retry`, which calls drifted candidates again.

use super::{Spelling, asked, flag, positional, positionals, switch};

pub(super) static SPELLINGS: &[Spelling] = &[
    // `--enforce-grayscale` and `--fail-on-chroma-exceed` are switches one way round: a `false`
    // that turns a project's setting off has no flag, so an action sending either goes through
    // `rpc call`.
    Spelling {
        method: "qa.check",
        command: "qa",
        args: &[
            positionals("paths", "PATH").optional(),
            flag("run", "--run", "RUN"),
            flag("asset", "--asset", "ID"),
            flag("project", "--project", "PROJECT"),
            flag("max_chroma_delta", "--max-chroma-delta", "DELTA"),
        ],
    },
    Spelling {
        method: "qa.archive_bad",
        command: "archive-bad",
        args: &[positionals("paths", "PATH"), flag("into", "--into", "DIR")],
    },
    Spelling {
        method: "file.inspect",
        command: "inspect",
        args: &[
            positional("path", "FILE"),
            flag("project", "--project", "PROJECT"),
        ],
    },
    Spelling {
        method: "run.approve",
        command: "run approve",
        args: &[
            positional("run", "RUN"),
            positional("job", "JOB"),
            positional("candidate", "CANDIDATE"),
        ],
    },
    Spelling {
        method: "run.baselines",
        command: "run baselines",
        args: &[positional("project", "PROJECT")],
    },
    Spelling {
        method: "run.sheet",
        command: "run sheet",
        args: &[positional("run", "RUN"), flag("thumb", "--thumb", "N")],
    },
    Spelling {
        method: "run.retry",
        command: "run retry",
        args: &[
            positional("run", "RUN"),
            switch("only_failed", "--only-failed"),
            switch("only_drifted", "--only-drifted"),
            asked("confirm_cost_usd"),
        ],
    },
];
