//! The table of kromactl commands by method: each command and how each param becomes a
//! positional argument or a flag.

use super::{
    Form, Spelling, arg, asked, flag, object, pairs, positional, positionals, repeated, switch,
};

/// The params of `run.plan` (`run.create` has them too, flattened), then `$more`.
macro_rules! plan_args {
    ($($more:expr),*) => {
        [
            positional("project", "PROJECT"),
            positionals("scenes", "SCENE"),
            flag("stage", "--stage", "STAGE"),
            repeated("style_refs", "--style-ref", "REF"),
            repeated("characters", "--character", "CHARACTER"),
            flag("style_guide", "--style-guide", "GUIDE"),
            object("template"),
            flag("template.name", "--template", "TEMPLATE"),
            pairs("template.vars", "--var"),
            flag("time", "--time", "TIME"),
            flag("weather", "--weather", "WEATHER"),
            flag("candidates", "--candidates", "N"),
            flag("provider", "--provider", "NAME"),
            flag("model", "--model", "MODEL"),
            flag("size", "--size", "WxH"),
            flag("quality", "--quality", "QUALITY"),
            object("postprocess"),
            flag("postprocess.bg_remove", "--bg-remove", "BOOL"),
            flag("postprocess.upscale", "--upscale", "SCALE"),
            flag("postprocess.color", "--color", "PROFILE"),
            $($more,)*
        ]
    };
}

/// The commands of a project's knowledge family (`style`, `character`, ...): list, show, rm.
macro_rules! knowledge_spellings {
    ($family:literal, $command:literal) => {
        [
            Spelling {
                method: concat!($family, ".list"),
                command: concat!($command, " list"),
                args: &[positional("project", "PROJECT")],
            },
            Spelling {
                method: concat!($family, ".get"),
                command: concat!($command, " show"),
                args: &[positional("project", "PROJECT"), positional("id", "ID")],
            },
            Spelling {
                method: concat!($family, ".delete"),
                command: concat!($command, " rm"),
                args: &[
                    positional("project", "PROJECT"),
                    positional("id", "ID"),
                    asked("confirm"),
                ],
            },
        ]
    };
}

/// `$args`, then the project's S3 settings (`$s3`, the object) and a flag per field.
macro_rules! with_s3_args {
    ($s3:expr; $($arg:expr),* $(,)?) => {
        [
            $($arg,)*
            $s3,
            flag("s3.bucket", "--s3-bucket", "BUCKET"),
            flag("s3.prefix", "--s3-prefix", "PREFIX"),
            flag("s3.region", "--s3-region", "REGION"),
            flag("s3.endpoint", "--s3-endpoint", "URL"),
            flag("s3.path_style", "--s3-path-style", "BOOL"),
            flag("s3.checksum_mode", "--s3-checksum-mode", "MODE"),
            flag("s3.access_key_secret", "--s3-access-key-secret", "SECRET"),
            flag("s3.secret_key_secret", "--s3-secret-key-secret", "SECRET"),
        ]
    };
}

/// Every method kromactl has a command for. `daemon.version` has none (`kromactl --version` is
/// kromactl's own); it and any method added later go through `kromactl rpc call`.
pub(super) static SPELLINGS: &[&[Spelling]] = &[
    &[
        Spelling {
            method: "daemon.status",
            command: "daemon status",
            args: &[],
        },
        Spelling {
            method: "daemon.shutdown",
            command: "daemon stop",
            args: &[],
        },
        Spelling {
            method: "daemon.check",
            command: "doctor",
            args: &[],
        },
        Spelling {
            method: "project.create",
            command: "project create",
            args: &with_s3_args!(
                object("s3");
                positional("name", "NAME"),
                flag("slug", "--slug", "SLUG"),
                flag("description", "--description", "DESCRIPTION"),
                flag("root", "--root", "DIR"),
            ),
        },
        Spelling {
            method: "project.list",
            command: "project list",
            args: &[],
        },
        Spelling {
            method: "project.get",
            command: "project show",
            args: &[positional("slug", "SLUG")],
        },
        Spelling {
            method: "project.update",
            command: "project update",
            args: &with_s3_args!(
                object("s3").or_clear("--clear-s3");
                positional("slug", "SLUG"),
                flag("name", "--name", "NAME"),
                flag("description", "--description", "DESCRIPTION"),
            ),
        },
        Spelling {
            method: "project.delete",
            command: "project rm",
            args: &[
                positional("slug", "SLUG"),
                asked("confirm"),
                switch("purge_files", "--purge-files"),
            ],
        },
        Spelling {
            method: "style_guide.create",
            command: "style create",
            args: &[
                positional("project", "PROJECT"),
                positional("name", "NAME"),
                flag("instructions", "--instructions", "INSTRUCTIONS"),
                flag("palette", "--palette", "PALETTE"),
                flag("line", "--line", "LINE"),
                flag("lighting", "--lighting", "LIGHTING"),
                flag("notes", "--notes", "NOTES"),
                repeated("reference_assets", "--reference", "ASSET"),
                switch("is_default", "--default"),
            ],
        },
        Spelling {
            method: "style_guide.update",
            command: "style update",
            args: &[
                positional("project", "PROJECT"),
                positional("id", "ID"),
                flag("name", "--name", "NAME"),
                flag("instructions", "--instructions", "INSTRUCTIONS"),
                flag("palette", "--palette", "PALETTE"),
                flag("line", "--line", "LINE"),
                flag("lighting", "--lighting", "LIGHTING"),
                flag("notes", "--notes", "NOTES"),
                repeated("reference_assets", "--reference", "ASSET").or_clear("--clear-references"),
                switch("is_default", "--default"),
            ],
        },
        Spelling {
            method: "character.create",
            command: "character create",
            args: &[
                positional("project", "PROJECT"),
                positional("name", "NAME"),
                flag("description", "--description", "DESCRIPTION"),
                flag("prompt_text", "--prompt", "PROMPT_TEXT"),
                flag("identity_notes", "--identity-notes", "IDENTITY_NOTES"),
                repeated("reference_assets", "--reference", "ASSET"),
            ],
        },
        Spelling {
            method: "character.update",
            command: "character update",
            args: &[
                positional("project", "PROJECT"),
                positional("id", "ID"),
                flag("name", "--name", "NAME"),
                flag("description", "--description", "DESCRIPTION"),
                flag("prompt_text", "--prompt", "PROMPT_TEXT"),
                flag("identity_notes", "--identity-notes", "IDENTITY_NOTES"),
                repeated("reference_assets", "--reference", "ASSET").or_clear("--clear-references"),
            ],
        },
        Spelling {
            method: "reference_set.create",
            command: "refset create",
            args: &[
                positional("project", "PROJECT"),
                positional("name", "NAME"),
                flag("description", "--description", "DESCRIPTION"),
                flag("kind", "--kind", "KIND"),
            ],
        },
        Spelling {
            method: "reference_set.update",
            command: "refset update",
            args: &[
                positional("project", "PROJECT"),
                positional("id", "ID"),
                flag("name", "--name", "NAME"),
                flag("description", "--description", "DESCRIPTION"),
                flag("kind", "--kind", "KIND"),
            ],
        },
        Spelling {
            method: "reference_set.add_item",
            command: "refset add",
            args: &[
                positional("project", "PROJECT"),
                positional("set", "SET"),
                positional("asset", "ASSET"),
                flag("role", "--role", "ROLE"),
                flag("weight", "--weight", "WEIGHT"),
                flag("notes", "--notes", "NOTES"),
            ],
        },
        Spelling {
            method: "reference_set.remove_item",
            command: "refset remove",
            args: &[
                positional("project", "PROJECT"),
                positional("set", "SET"),
                positional("asset", "ASSET"),
            ],
        },
        Spelling {
            method: "prompt_template.create",
            command: "template create",
            args: &[
                positional("project", "PROJECT"),
                positional("name", "NAME"),
                flag("body", "--body", "BODY"),
                repeated("variables", "--var", "NAME"),
            ],
        },
        Spelling {
            method: "prompt_template.update",
            command: "template update",
            args: &[
                positional("project", "PROJECT"),
                positional("id", "ID"),
                flag("name", "--name", "NAME"),
                flag("body", "--body", "BODY"),
                repeated("variables", "--var", "NAME").or_clear("--clear-vars"),
            ],
        },
        Spelling {
            method: "prompt_template.render",
            command: "template render",
            args: &[
                positional("project", "PROJECT"),
                positional("id", "ID"),
                pairs("vars", "--var"),
            ],
        },
        Spelling {
            method: "bootstrap.export",
            command: "bootstrap export",
            args: &[positional("project", "PROJECT")],
        },
        Spelling {
            method: "bootstrap.import",
            command: "bootstrap import",
            args: &[
                positional("project", "PROJECT"),
                arg("text", Form::FileContent, "FILE"),
                flag("mode", "--mode", "MODE"),
                switch("dry_run", "--dry-run"),
            ],
        },
        Spelling {
            method: "secret.set",
            command: "secret set",
            args: &[positional("name", "NAME"), asked("value")],
        },
        Spelling {
            method: "secret.list",
            command: "secret list",
            args: &[],
        },
        Spelling {
            method: "secret.delete",
            command: "secret rm",
            args: &[positional("name", "NAME"), asked("confirm")],
        },
        Spelling {
            method: "secret.test",
            command: "secret test",
            args: &[positional("name", "NAME")],
        },
        Spelling {
            method: "provider.create",
            command: "provider add",
            args: &[
                positional("name", "NAME"),
                flag("kind", "--kind", "KIND").kebab(),
                flag("base_url", "--base-url", "URL"),
                flag("default_model", "--default-model", "MODEL"),
                flag("organization", "--organization", "ORGANIZATION"),
                flag("secret", "--secret", "SECRET"),
                switch("honors_idempotency_key", "--honors-idempotency-key"),
            ],
        },
        Spelling {
            method: "provider.list",
            command: "provider list",
            args: &[],
        },
        Spelling {
            method: "provider.get",
            command: "provider show",
            args: &[positional("name", "NAME")],
        },
        Spelling {
            method: "provider.update",
            command: "provider update",
            args: &[
                positional("name", "NAME"),
                flag("base_url", "--base-url", "URL"),
                flag("default_model", "--default-model", "MODEL"),
                flag("organization", "--organization", "ORGANIZATION"),
                flag("secret", "--secret", "SECRET"),
                flag("honors_idempotency_key", "--honors-idempotency-key", "BOOL"),
            ],
        },
        Spelling {
            method: "provider.delete",
            command: "provider rm",
            args: &[positional("name", "NAME"), asked("confirm")],
        },
        Spelling {
            method: "provider.check",
            command: "provider check",
            args: &[positional("name", "NAME")],
        },
        // `kromactl events` pages through every event after `--since`; a page's `limit` has no
        // flag.
        Spelling {
            method: "events.list",
            command: "events",
            args: &[flag("since", "--since", "ID")],
        },
        Spelling {
            method: "asset.import",
            command: "asset import",
            args: &[
                positional("project", "PROJECT"),
                positionals("paths", "PATHS"),
                flag("kind", "--kind", "KIND"),
            ],
        },
        Spelling {
            method: "asset.list",
            command: "asset list",
            args: &[
                positional("project", "PROJECT"),
                flag("kind", "--kind", "KIND"),
            ],
        },
        Spelling {
            method: "asset.get",
            command: "asset show",
            args: &[positional("project", "PROJECT"), positional("id", "ID")],
        },
        Spelling {
            method: "asset.delete",
            command: "asset rm",
            args: &[
                positional("project", "PROJECT"),
                positional("id", "ID"),
                asked("confirm"),
            ],
        },
        Spelling {
            method: "asset.link",
            command: "asset link",
            args: &[
                positional("project", "PROJECT"),
                positional("from", "FROM"),
                positional("relation", "RELATION").kebab(),
                positional("to", "TO"),
            ],
        },
        Spelling {
            method: "asset.lineage",
            command: "asset lineage",
            args: &[positional("project", "PROJECT"), positional("id", "ID")],
        },
        Spelling {
            method: "audit.list",
            command: "audit list",
            args: &[
                flag("since", "--since", "ID"),
                flag("limit", "--limit", "LIMIT"),
            ],
        },
        Spelling {
            method: "settings.effective",
            command: "settings show --effective",
            args: &[flag("project", "--project", "PROJECT")],
        },
        Spelling {
            method: "image_model.list",
            command: "image-models list",
            args: &[flag("refresh", "--refresh", "PROVIDER")],
        },
        Spelling {
            method: "local_model.list",
            command: "local-models list",
            args: &[switch("verify", "--verify")],
        },
        Spelling {
            method: "run.plan",
            command: "run plan",
            args: &plan_args!(),
        },
        Spelling {
            method: "run.create",
            command: "run create",
            args: &plan_args!(switch("dry_run", "--dry-run")),
        },
        // `run start` and `run retry` (in `spellings_review.rs`) show the most the run can cost and
        // ask to confirm it.
        Spelling {
            method: "run.start",
            command: "run start",
            args: &[positional("plan_id", "RUN"), asked("confirm_cost_usd")],
        },
        Spelling {
            method: "run.list",
            command: "run list",
            args: &[
                flag("project", "--project", "PROJECT"),
                flag("status", "--status", "STATUS"),
                flag("limit", "--limit", "LIMIT"),
            ],
        },
        Spelling {
            method: "run.show",
            command: "run show",
            args: &[positional("run", "RUN")],
        },
        Spelling {
            method: "run.cancel",
            command: "run cancel",
            args: &[positional("run", "RUN")],
        },
        Spelling {
            method: "cost.summary",
            command: "cost",
            args: &[
                flag("project", "--project", "PROJECT"),
                flag("since", "--since", "DATE"),
            ],
        },
        Spelling {
            method: "postprocess.color",
            command: "color",
            args: &[
                positionals("paths", "PATHS"),
                flag("profile", "--profile", "PROFILE"),
                flag("output_dir", "--output", "DIR"),
            ],
        },
        Spelling {
            method: "postprocess.bg_remove",
            command: "bg-remove",
            args: &[
                positionals("paths", "PATHS"),
                flag("output_dir", "--output", "DIR"),
                flag("model", "--model", "MODEL"),
                switch("mask_only", "--mask-only"),
                switch("matting", "--matting"),
                flag("background", "--background", "#RRGGBB"),
            ],
        },
        Spelling {
            method: "postprocess.upscale",
            command: "upscale",
            args: &[
                positionals("paths", "PATHS"),
                flag("output_dir", "--output", "DIR"),
                flag("scale", "--scale", "SCALE"),
                flag("model", "--model", "MODEL"),
                flag("tile", "--tile", "TILE"),
            ],
        },
        Spelling {
            method: "rpc.discover",
            command: "rpc schema",
            args: &[],
        },
    ],
    &[
        Spelling {
            method: "instruction.list",
            command: "instruction list",
            args: &[
                flag("project", "--project", "PROJECT"),
                flag("state", "--state", "STATE"),
                flag("limit", "--limit", "LIMIT"),
            ],
        },
        Spelling {
            method: "instruction.get",
            command: "instruction show",
            args: &[positional("id", "ID")],
        },
        // Shows the plan and its maximum cost and asks the person to confirm it.
        Spelling {
            method: "instruction.confirm",
            command: "instruction confirm",
            args: &[positional("id", "ID"), asked("confirm_cost_usd")],
        },
        Spelling {
            method: "instruction.cancel",
            command: "instruction cancel",
            args: &[positional("id", "ID")],
        },
        Spelling {
            method: "instruction.code",
            command: "instruction code",
            args: &[positional("id", "ID")],
        },
        Spelling {
            method: "chat.list",
            command: "chat list",
            args: &[
                flag("project", "--project", "PROJECT"),
                flag("limit", "--limit", "LIMIT"),
            ],
        },
        Spelling {
            method: "chat.log",
            command: "chat log",
            args: &[
                positional("session", "SESSION"),
                flag("since", "--since", "SEQ"),
                flag("limit", "--limit", "LIMIT"),
            ],
        },
        Spelling {
            method: "agent.allowance_get",
            command: "agent allowance show",
            args: &[],
        },
        Spelling {
            method: "agent.allowance_set",
            command: "agent allowance set",
            args: &[
                flag("per_instruction_usd", "--per-instruction", "USD"),
                flag("per_project_daily_usd", "--per-project-daily", "USD"),
                flag("daily_usd", "--daily", "USD"),
            ],
        },
    ],
    // `watch.add` is not here: its action (a pipeline's run settings or a chain's steps) has no
    // form in this table, so an action naming it goes through `kromactl rpc call`.
    &[
        Spelling {
            method: "watch.list",
            command: "watch list",
            args: &[],
        },
        Spelling {
            method: "watch.get",
            command: "watch show",
            args: &[positional("rule", "RULE")],
        },
        Spelling {
            method: "watch.update",
            command: "watch update",
            args: &[
                positional("rule", "RULE"),
                repeated("patterns", "--pattern", "GLOB").or_clear("--default-patterns"),
                flag("budget_usd", "--budget", "USD"),
                flag("settle_ms", "--settle", "DURATION"),
            ],
        },
        Spelling {
            method: "watch.remove",
            command: "watch remove",
            args: &[positional("rule", "RULE")],
        },
        Spelling {
            method: "watch.pause",
            command: "watch pause",
            args: &[positional("rule", "RULE")],
        },
        Spelling {
            method: "watch.resume",
            command: "watch resume",
            args: &[positional("rule", "RULE")],
        },
        Spelling {
            method: "watch.log",
            command: "watch log",
            args: &[
                positional("rule", "RULE"),
                flag("limit", "--limit", "LIMIT"),
            ],
        },
    ],
    super::spellings_review::SPELLINGS,
    super::spellings_export::SPELLINGS,
    super::spellings_storage::SPELLINGS,
    &knowledge_spellings!("style_guide", "style"),
    &knowledge_spellings!("character", "character"),
    &knowledge_spellings!("reference_set", "refset"),
    &knowledge_spellings!("prompt_template", "template"),
];
