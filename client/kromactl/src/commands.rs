//! The dispatcher: `run` sends each command to its function, here for the project,
//! events, rpc, bootstrap, secret and provider commands, else in its own module. Each builds
//! typed params, calls kromad and prints; modules import from `output` and `common`, not here.

use std::io::IsTerminal;
use std::path::Path;

use clap::CommandFactory;
use kroma_client::Client;
use kroma_client::follow::EventFollower;
use kroma_protocol as protocol;
use protocol::NoParams;

use crate::common::confirm;
use crate::output::{self, Failure, print};
use crate::{
    BootstrapCommand, Cli, Command, EventsArgs, Global, ImportModeArg, ProjectCommand,
    ProviderCommand, ProviderKindArg, RpcCommand, SecretCommand,
};

pub async fn run(cli: Cli) -> Result<(), Failure> {
    let global = &cli.global;
    let socket = kroma_client::discovery::discover_socket(global.socket.as_deref());
    match cli.command {
        Command::Daemon(command) => crate::daemon::run(global, &socket, command).await,
        Command::Project(command) => project(global, &socket, command).await,
        Command::Asset(command) => crate::assets::run(global, &socket, command).await,
        Command::Style(command) => crate::knowledge::style(global, &socket, command).await,
        Command::Character(command) => crate::knowledge::character(global, &socket, command).await,
        Command::Refset(command) => crate::knowledge::refset(global, &socket, command).await,
        Command::Template(command) => crate::knowledge::template(global, &socket, command).await,
        Command::Bootstrap(command) => bootstrap(global, &socket, command).await,
        Command::Secret(command) => secret(global, &socket, command).await,
        Command::Provider(command) => provider(global, &socket, command).await,
        Command::Run(command) => crate::runs::run(global, &socket, command).await,
        Command::Cost(args) => crate::runs::cost(global, &socket, args).await,
        Command::Settings(command) => crate::settings::settings(global, &socket, command).await,
        Command::ImageModels(command) => crate::settings::model(global, &socket, command).await,
        Command::LocalModels(command) => crate::local_models::run(global, &socket, command).await,
        Command::Color(args) => crate::postprocess::color(global, &socket, args).await,
        Command::BgRemove(args) => crate::postprocess::bg_remove(global, &socket, args).await,
        Command::Upscale(args) => crate::postprocess::upscale(global, &socket, args).await,
        Command::Qa(args) => crate::qa::check(global, &socket, args).await,
        Command::ArchiveBad(args) => crate::qa::archive_bad(global, &socket, args).await,
        Command::Inspect(args) => crate::qa::inspect(global, &socket, args).await,
        Command::Export(command) => crate::export::run(global, &socket, command).await,
        Command::Storage(command) => crate::storage::run(global, &socket, command).await,
        Command::Watch(command) => crate::watch::run(global, &socket, command).await,
        Command::Doctor => crate::doctor::run(global, &socket).await,
        Command::Events(args) => events(global, &socket, args).await,
        Command::Instruction(command) => {
            crate::instructions::instruction(global, &socket, command).await
        }
        Command::Agent(command) => crate::instructions::agent(global, &socket, command).await,
        Command::Chat(command) => crate::instructions::chat(global, &socket, command).await,
        Command::Audit(command) => crate::instructions::audit(global, &socket, command).await,
        Command::Rpc(RpcCommand::Call { method, params }) => {
            let params = match params {
                None => None,
                Some(text) => {
                    let value: serde_json::Value = serde_json::from_str(&text).map_err(|err| {
                        Failure::Usage(format!("params are not valid JSON: {err}"))
                    })?;
                    if !value.is_object() {
                        return Err(Failure::Usage(
                            "params must be a JSON object of named params".into(),
                        ));
                    }
                    Some(value)
                }
            };
            let client = Client::connect(&socket).await?;
            let result = client.call_raw(&method, params.as_ref()).await?;
            if !global.quiet {
                output::print_json(&result);
            }
            Ok(())
        }
        Command::Rpc(RpcCommand::Schema) => {
            let client = Client::connect(&socket).await?;
            let document = client.call::<protocol::rpc::Discover>(&NoParams {}).await?;
            output::print_json(&document);
            Ok(())
        }
        Command::Bench(command) => crate::bench::run(global, command).await,
        Command::Dev(command) => crate::dev::run(command).await,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "kromactl",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

async fn project(global: &Global, socket: &Path, command: ProjectCommand) -> Result<(), Failure> {
    match command {
        ProjectCommand::Create {
            name,
            slug,
            description,
            root,
            s3,
        } => {
            // kromad does not share our working directory.
            let root = root.as_deref().map(crate::common::absolute).transpose()?;
            let client = Client::connect(socket).await?;
            let project = client
                .call::<protocol::project::Create>(&protocol::project::CreateParams {
                    name,
                    slug,
                    description,
                    root,
                    s3: crate::storage::s3_settings(s3),
                })
                .await?;
            print(global, &project, || {
                format!("created project {} at {}", project.slug, project.root)
            });
        }
        ProjectCommand::List => {
            let client = Client::connect(socket).await?;
            let list = client.call::<protocol::project::List>(&NoParams {}).await?;
            print(global, &list, || {
                if list.projects.is_empty() {
                    "no projects yet; create one with `kromactl project create NAME`".to_owned()
                } else {
                    output::project_table(&list.projects).to_string()
                }
            });
        }
        ProjectCommand::Show { slug } => {
            let client = Client::connect(socket).await?;
            let project = client
                .call::<protocol::project::Get>(&protocol::project::ProjectRef { slug })
                .await?;
            print(global, &project, || {
                output::project_details(&project).to_string()
            });
        }
        ProjectCommand::Update {
            slug,
            name,
            description,
            s3,
            clear_s3,
        } => {
            let s3 = match (clear_s3, crate::storage::s3_settings(s3)) {
                (true, _) => Some(None),
                (false, Some(s3)) => Some(Some(s3)),
                (false, None) => None,
            };
            let client = Client::connect(socket).await?;
            let project = client
                .call::<protocol::project::Update>(&protocol::project::UpdateParams {
                    slug,
                    name,
                    description,
                    s3,
                })
                .await?;
            print(global, &project, || {
                format!("updated project {}", project.slug)
            });
        }
        ProjectCommand::Rm {
            slug,
            yes,
            purge_files,
        } => {
            let client = Client::connect(socket).await?;
            if !yes {
                let project = client
                    .call::<protocol::project::Get>(&protocol::project::ProjectRef {
                        slug: slug.clone(),
                    })
                    .await?;
                let what = if purge_files {
                    format!("project `{slug}` and every file in {}", project.root)
                } else {
                    format!("project `{slug}` (its files in {} are kept)", project.root)
                };
                if !confirm(&format!("Delete {what}?"))? {
                    return Err(Failure::other(
                        "not deleted",
                        Some("pass --yes to skip the question"),
                    ));
                }
            }
            let deleted = client
                .call::<protocol::project::Delete>(&protocol::project::DeleteParams {
                    slug,
                    confirm: true,
                    purge_files,
                })
                .await?;
            print(global, &deleted, || {
                if deleted.purged_files {
                    format!("deleted project {} and its files", deleted.slug)
                } else {
                    format!(
                        "deleted project {}; its files stay in {}",
                        deleted.slug, deleted.root
                    )
                }
            });
        }
    }
    Ok(())
}

async fn events(global: &Global, socket: &Path, args: EventsArgs) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    if args.follow {
        let mut follower = EventFollower::start(&client, args.since).await?;
        loop {
            let event = follower.next().await?;
            print_event(global, &event);
        }
    }
    // Pages through events.list; with --json the pages are joined into one result of the same
    // shape, {events, last_id}.
    let mut since = args.since.unwrap_or(0);
    let mut all = protocol::events::EventPage {
        events: Vec::new(),
        last_id: 0,
    };
    loop {
        let page = client
            .call::<protocol::events::List>(&protocol::events::ListParams {
                since: Some(since),
                limit: Some(protocol::events::MAX_LIST_LIMIT),
            })
            .await?;
        all.last_id = page.last_id;
        let Some(last) = page.events.last().map(|event| event.id) else {
            break;
        };
        since = last;
        if global.json {
            all.events.extend(page.events);
        } else {
            for event in &page.events {
                print_event(global, event);
            }
        }
    }
    if global.json && !global.quiet {
        output::print_json(&all);
    }
    Ok(())
}

fn print_event(global: &Global, event: &protocol::events::Event) {
    if global.quiet {
        return;
    }
    if global.json {
        // One JSON object per line, so `--follow --json` can be piped into other tools.
        println!("{}", serde_json::to_string(event).unwrap_or_default());
    } else {
        println!("{}", output::event_line(event));
    }
}

async fn bootstrap(
    global: &Global,
    socket: &Path,
    command: BootstrapCommand,
) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    match command {
        BootstrapCommand::Export { project } => {
            let export = client
                .call::<protocol::bootstrap::Export>(&protocol::knowledge::ProjectParams {
                    project,
                })
                .await?;
            print(global, &export, || export.prompt.clone());
        }
        BootstrapCommand::Import {
            project,
            file,
            mode,
            dry_run,
        } => {
            let text = match file.as_deref() {
                None => read_stdin()?,
                Some(path) if path == Path::new("-") => read_stdin()?,
                Some(path) => std::fs::read_to_string(path).map_err(|err| {
                    Failure::other(format!("reading {}: {err}", path.display()), None)
                })?,
            };
            let summary = client
                .call::<protocol::bootstrap::Import>(&protocol::bootstrap::ImportParams {
                    project,
                    document: None,
                    text: Some(text),
                    mode: match mode {
                        ImportModeArg::Merge => protocol::bootstrap::ImportMode::Merge,
                        ImportModeArg::Replace => protocol::bootstrap::ImportMode::Replace,
                    },
                    dry_run,
                })
                .await?;
            print(global, &summary, || output::bootstrap_summary(&summary));
        }
    }
    Ok(())
}

fn read_stdin() -> Result<String, Failure> {
    if std::io::stdin().is_terminal() {
        eprintln!("paste the AI's answer, then press Ctrl-D");
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
        .map_err(|err| Failure::other(format!("reading stdin: {err}"), None))?;
    Ok(text)
}

async fn secret(global: &Global, socket: &Path, command: SecretCommand) -> Result<(), Failure> {
    if let SecretCommand::Set {
        name,
        value_on_command_line,
    } = &command
    {
        // Refused before anything else, and never repeated: the value is already in the shell's
        // history, it must not reach the terminal, a log or the daemon as well.
        if !value_on_command_line.is_empty() {
            return Err(Failure::Usage(
                crate::secret_args::VALUE_ON_COMMAND_LINE.to_owned(),
            ));
        }
        if crate::secret_args::looks_like_key(name) {
            return Err(Failure::Usage(format!(
                "the secret's NAME looks like a key; {}",
                crate::secret_args::VALUE_ON_COMMAND_LINE
            )));
        }
    }
    let client = Client::connect(socket).await?;
    match command {
        SecretCommand::Set { name, .. } => {
            let value = read_secret_value(&name)?;
            let info = client
                .call::<protocol::secret::Set>(&protocol::secret::SetParams { name, value })
                .await?;
            print(global, &info, || {
                format!("stored secret {} in the {} store", info.name, info.store)
            });
        }
        SecretCommand::List => {
            let list = client.call::<protocol::secret::List>(&NoParams {}).await?;
            print(global, &list, || output::secret_list(&list));
        }
        SecretCommand::Test { name } => {
            let result = client
                .call::<protocol::secret::Test>(&protocol::secret::SecretRef { name })
                .await?;
            print(global, &result, || {
                format!("{}: {}", result.name, result.message)
            });
            if !result.ok {
                return Err(Failure::other(
                    result.message,
                    Some("set it again with `kromactl secret set NAME`"),
                ));
            }
        }
        SecretCommand::Rm { name, yes } => {
            if !yes && !confirm(&format!("Delete secret `{name}`?"))? {
                return Err(Failure::other(
                    "not deleted",
                    Some("pass --yes to skip the question"),
                ));
            }
            let info = client
                .call::<protocol::secret::Delete>(&protocol::secret::DeleteParams {
                    name,
                    confirm: true,
                })
                .await?;
            print(global, &info, || format!("deleted secret {}", info.name));
        }
    }
    Ok(())
}

/// The value of a secret: from a hidden prompt on a terminal, else all of stdin (one trailing
/// newline removed). Never from the command line, where other users and shell history see it.
fn read_secret_value(name: &str) -> Result<String, Failure> {
    let value = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!("value for {name} (hidden): "))
            .map_err(|err| Failure::other(format!("reading the value: {err}"), None))?
    } else {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
            .map_err(|err| Failure::other(format!("reading the value from stdin: {err}"), None))?;
        let trimmed = text.strip_suffix('\n').unwrap_or(&text);
        trimmed.strip_suffix('\r').unwrap_or(trimmed).to_owned()
    };
    if value.is_empty() {
        return Err(Failure::Usage("the secret value is empty".into()));
    }
    Ok(value)
}

async fn provider(global: &Global, socket: &Path, command: ProviderCommand) -> Result<(), Failure> {
    use protocol::provider as rpc;
    let client = Client::connect(socket).await?;
    match command {
        ProviderCommand::Add {
            name,
            kind,
            base_url,
            default_model,
            organization,
            secret,
            honors_idempotency_key,
        } => {
            let provider = client
                .call::<rpc::Create>(&rpc::CreateParams {
                    name,
                    kind: match kind {
                        ProviderKindArg::Openai => rpc::ProviderKind::Openai,
                        ProviderKindArg::OpenaiCompatible => rpc::ProviderKind::OpenaiCompatible,
                    },
                    base_url,
                    default_model,
                    organization,
                    secret,
                    honors_idempotency_key,
                })
                .await?;
            print(global, &provider, || {
                format!(
                    "added provider {} at {}; its key is the secret `{}` (kromactl secret set {})",
                    provider.name, provider.base_url, provider.secret, provider.secret
                )
            });
        }
        ProviderCommand::List => {
            let list = client.call::<rpc::List>(&NoParams {}).await?;
            print(global, &list, || {
                output::provider_table(&list.providers).to_string()
            });
        }
        ProviderCommand::Show { name } => {
            let p = client.call::<rpc::Get>(&rpc::ProviderRef { name }).await?;
            print(global, &p, || {
                output::details(&[
                    ("name", p.name.clone()),
                    ("kind", p.kind.as_str().to_owned()),
                    ("base url", p.base_url.clone()),
                    ("default model", p.default_model.clone()),
                    ("organization", p.organization.clone().unwrap_or_default()),
                    ("secret", p.secret.clone()),
                    (
                        "honors idempotency key",
                        if p.honors_idempotency_key {
                            "yes"
                        } else {
                            "no"
                        }
                        .to_owned(),
                    ),
                    ("updated", p.updated_at.clone()),
                ])
                .to_string()
            });
        }
        ProviderCommand::Update {
            name,
            base_url,
            default_model,
            organization,
            secret,
            honors_idempotency_key,
        } => {
            let p = client
                .call::<rpc::Update>(&rpc::UpdateParams {
                    name,
                    base_url,
                    default_model,
                    organization,
                    secret,
                    honors_idempotency_key,
                })
                .await?;
            print(global, &p, || format!("updated provider {}", p.name));
        }
        ProviderCommand::Check { name } => {
            let result = client
                .call::<rpc::Check>(&rpc::ProviderRef { name })
                .await?;
            print(global, &result, || {
                let (name, message, ms) = (&result.name, &result.message, result.elapsed_ms);
                let mut lines = vec![format!("{name}: {message} ({ms} ms)")];
                lines.extend(output::hint_lines(
                    result.hint.as_deref(),
                    result.action.as_ref(),
                ));
                lines.join("\n")
            });
            if !result.ok {
                return Err(Failure::other_with_action(
                    format!("provider {} is not usable", result.name),
                    result.hint.as_deref(),
                    result.action.as_ref(),
                ));
            }
        }
        ProviderCommand::Rm { name, yes } => {
            if !yes && !confirm(&format!("Delete provider `{name}` (its secret is kept)?"))? {
                return Err(Failure::other(
                    "not deleted",
                    Some("pass --yes to skip the question"),
                ));
            }
            let p = client
                .call::<rpc::Delete>(&rpc::DeleteParams {
                    name,
                    confirm: true,
                })
                .await?;
            print(global, &p, || format!("deleted provider {}", p.name));
        }
    }
    Ok(())
}
