//! `kromactl style|character|refset|template …`: what a project knows about its world.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use kroma_client::Client;
use kroma_protocol as protocol;
use protocol::knowledge as wire;
use protocol::knowledge::{
    character as character_rpc, prompt_template, reference_set, style_guide,
};

use crate::Global;
use crate::common::confirm;
use crate::output::{self, Failure, print};

#[derive(Debug, Subcommand)]
pub enum StyleCommand {
    /// Create a style guide (the project's first one becomes its default)
    Create {
        /// The project's slug
        project: String,
        name: String,
        /// How images in this style are drawn
        #[arg(long)]
        instructions: String,
        #[arg(long, default_value = "")]
        palette: String,
        /// Line work, e.g. "inked, varying weight"
        #[arg(long, default_value = "")]
        line: String,
        #[arg(long, default_value = "")]
        lighting: String,
        #[arg(long, default_value = "")]
        notes: String,
        /// Asset id of a style reference image (repeat for more)
        #[arg(long = "reference", value_name = "ASSET")]
        references: Vec<String>,
        /// Make it the project's default guide
        #[arg(long = "default")]
        is_default: bool,
    },
    /// List style guides
    List {
        /// The project's slug
        project: String,
    },
    /// Show one style guide
    Show {
        /// The project's slug
        project: String,
        /// UUID or name
        id: String,
    },
    /// Change the given fields of a style guide
    Update {
        /// The project's slug
        project: String,
        /// UUID or name
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        instructions: Option<String>,
        #[arg(long)]
        palette: Option<String>,
        #[arg(long)]
        line: Option<String>,
        #[arg(long)]
        lighting: Option<String>,
        #[arg(long)]
        notes: Option<String>,
        /// Replace the reference images with these (repeat for more)
        #[arg(long = "reference", value_name = "ASSET")]
        references: Vec<String>,
        /// Remove all reference images
        #[arg(long, conflicts_with = "references")]
        clear_references: bool,
        /// Make it the project's default guide
        #[arg(long = "default")]
        is_default: bool,
    },
    /// Delete a style guide (asks first unless --yes)
    Rm {
        /// The project's slug
        project: String,
        /// UUID or name
        id: String,
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CharacterCommand {
    /// Create a character
    Create {
        /// The project's slug
        project: String,
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        /// What generation says about the character, verbatim
        #[arg(long = "prompt", default_value = "")]
        prompt_text: String,
        /// What must never change about the face and build
        #[arg(long, default_value = "")]
        identity_notes: String,
        /// Asset id of a reference image (repeat for more)
        #[arg(long = "reference", value_name = "ASSET")]
        references: Vec<String>,
    },
    /// List characters
    List {
        /// The project's slug
        project: String,
    },
    /// Show one character
    Show {
        /// The project's slug
        project: String,
        /// UUID or name
        id: String,
    },
    /// Change the given fields of a character
    Update {
        /// The project's slug
        project: String,
        /// UUID or name
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long = "prompt")]
        prompt_text: Option<String>,
        #[arg(long)]
        identity_notes: Option<String>,
        /// Replace the reference images with these (repeat for more)
        #[arg(long = "reference", value_name = "ASSET")]
        references: Vec<String>,
        /// Remove all reference images
        #[arg(long, conflicts_with = "references")]
        clear_references: bool,
    },
    /// Delete a character (asks first unless --yes)
    Rm {
        /// The project's slug
        project: String,
        /// UUID or name
        id: String,
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SetKind {
    Style,
    Character,
    Scene,
    Lighting,
    Other,
}

impl From<SetKind> for wire::ReferenceSetKind {
    fn from(kind: SetKind) -> wire::ReferenceSetKind {
        match kind {
            SetKind::Style => wire::ReferenceSetKind::Style,
            SetKind::Character => wire::ReferenceSetKind::Character,
            SetKind::Scene => wire::ReferenceSetKind::Scene,
            SetKind::Lighting => wire::ReferenceSetKind::Lighting,
            SetKind::Other => wire::ReferenceSetKind::Other,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum RefsetCommand {
    /// Create an empty reference set (add images with `refset add`)
    Create {
        /// The project's slug
        project: String,
        name: String,
        #[arg(long, default_value = "")]
        description: String,
        #[arg(long, value_enum, default_value_t = SetKind::Other)]
        kind: SetKind,
    },
    /// Add an asset to a set, or change its role, weight and notes
    Add {
        /// The project's slug
        project: String,
        /// The set's UUID or name
        set: String,
        /// The asset id
        asset: String,
        /// What the image is for, e.g. face-front
        #[arg(long, default_value = "")]
        role: String,
        /// How much it counts (above 0, at most 10)
        #[arg(long, default_value_t = 1.0)]
        weight: f64,
        #[arg(long, default_value = "")]
        notes: String,
    },
    /// Remove an asset from a set
    Remove {
        /// The project's slug
        project: String,
        /// The set's UUID or name
        set: String,
        /// The asset id
        asset: String,
    },
    /// List reference sets
    List {
        /// The project's slug
        project: String,
    },
    /// Show one reference set and its items
    Show {
        /// The project's slug
        project: String,
        /// UUID or name
        id: String,
    },
    /// Change a set's name, description or kind
    Update {
        /// The project's slug
        project: String,
        /// UUID or name
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, value_enum)]
        kind: Option<SetKind>,
    },
    /// Delete a reference set (asks first unless --yes)
    Rm {
        /// The project's slug
        project: String,
        /// UUID or name
        id: String,
        #[arg(long, short)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Create a prompt template; the body's {{variables}} must be declared with --var
    Create {
        /// The project's slug
        project: String,
        name: String,
        /// The template text
        #[arg(
            long,
            required_unless_present = "body_file",
            conflicts_with = "body_file"
        )]
        body: Option<String>,
        /// Read the template text from a file
        #[arg(long, value_name = "FILE")]
        body_file: Option<PathBuf>,
        /// A variable the body uses (repeat for more)
        #[arg(long = "var", value_name = "NAME")]
        variables: Vec<String>,
    },
    /// Fill a template's variables and print the text
    Render {
        /// The project's slug
        project: String,
        /// UUID or name
        id: String,
        /// A value, as NAME=VALUE (repeat for more)
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
    /// List prompt templates
    List {
        /// The project's slug
        project: String,
    },
    /// Show one prompt template
    Show {
        /// The project's slug
        project: String,
        /// UUID or name
        id: String,
    },
    /// Change a template's name, body or variables
    Update {
        /// The project's slug
        project: String,
        /// UUID or name
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, conflicts_with = "body_file")]
        body: Option<String>,
        #[arg(long, value_name = "FILE")]
        body_file: Option<PathBuf>,
        /// Replace the declared variables with these (repeat for more)
        #[arg(long = "var", value_name = "NAME")]
        variables: Vec<String>,
        /// The body uses no variables any more
        #[arg(long, conflicts_with = "variables")]
        clear_vars: bool,
    },
    /// Delete a prompt template (asks first unless --yes)
    Rm {
        /// The project's slug
        project: String,
        /// UUID or name
        id: String,
        #[arg(long, short)]
        yes: bool,
    },
}

fn references_update(references: Vec<String>, clear: bool) -> Option<Vec<String>> {
    if clear {
        Some(Vec::new())
    } else if references.is_empty() {
        None
    } else {
        Some(references)
    }
}

async fn confirmed_delete<M>(
    client: &Client,
    what: &str,
    project: String,
    id: String,
    yes: bool,
) -> Result<wire::Deleted, Failure>
where
    M: protocol::Method<Params = wire::DeleteParams, Output = wire::Deleted>,
{
    if !yes && !confirm(&format!("Delete {what} `{id}` of project `{project}`?"))? {
        return Err(Failure::other(
            "not deleted",
            Some("pass --yes to skip the question"),
        ));
    }
    Ok(client
        .call::<M>(&wire::DeleteParams {
            project,
            id,
            confirm: true,
        })
        .await?)
}

fn print_deleted(global: &Global, what: &str, deleted: &wire::Deleted) {
    print(global, deleted, || {
        format!("deleted {what} {} ({})", deleted.name, deleted.id)
    });
}

pub async fn style(global: &Global, socket: &Path, command: StyleCommand) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    match command {
        StyleCommand::Create {
            project,
            name,
            instructions,
            palette,
            line,
            lighting,
            notes,
            references,
            is_default,
        } => {
            let guide = client
                .call::<style_guide::Create>(&wire::StyleGuideCreate {
                    project,
                    name,
                    instructions,
                    palette,
                    line,
                    lighting,
                    notes,
                    reference_assets: references,
                    is_default,
                })
                .await?;
            print(global, &guide, || {
                format!("created style guide {} ({})", guide.name, guide.id)
            });
        }
        StyleCommand::List { project } => {
            let list = client
                .call::<style_guide::List>(&wire::ProjectParams { project })
                .await?;
            print(global, &list, || {
                let rows: Vec<_> = list
                    .style_guides
                    .iter()
                    .map(|g| {
                        (
                            g.name.clone(),
                            g.id.clone(),
                            if g.is_default {
                                "yes".into()
                            } else {
                                String::new()
                            },
                        )
                    })
                    .collect();
                output::named_table("default", &rows).to_string()
            });
        }
        StyleCommand::Show { project, id } => {
            let g = client
                .call::<style_guide::Get>(&wire::EntityRef { project, id })
                .await?;
            print(global, &g, || {
                output::details(&[
                    ("name", g.name.clone()),
                    ("id", g.id.clone()),
                    ("default", g.is_default.to_string()),
                    ("instructions", g.instructions.clone()),
                    ("palette", g.palette.clone()),
                    ("line", g.line.clone()),
                    ("lighting", g.lighting.clone()),
                    ("notes", g.notes.clone()),
                    ("references", g.reference_assets.join(", ")),
                    ("updated", g.updated_at.clone()),
                ])
                .to_string()
            });
        }
        StyleCommand::Update {
            project,
            id,
            name,
            instructions,
            palette,
            line,
            lighting,
            notes,
            references,
            clear_references,
            is_default,
        } => {
            let guide = client
                .call::<style_guide::Update>(&wire::StyleGuideUpdate {
                    project,
                    id,
                    name,
                    instructions,
                    palette,
                    line,
                    lighting,
                    notes,
                    reference_assets: references_update(references, clear_references),
                    is_default: is_default.then_some(true),
                })
                .await?;
            print(global, &guide, || {
                format!("updated style guide {}", guide.name)
            });
        }
        StyleCommand::Rm { project, id, yes } => {
            let deleted =
                confirmed_delete::<style_guide::Delete>(&client, "style guide", project, id, yes)
                    .await?;
            print_deleted(global, "style guide", &deleted);
        }
    }
    Ok(())
}

pub async fn character(
    global: &Global,
    socket: &Path,
    command: CharacterCommand,
) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    match command {
        CharacterCommand::Create {
            project,
            name,
            description,
            prompt_text,
            identity_notes,
            references,
        } => {
            let c = client
                .call::<character_rpc::Create>(&wire::CharacterCreate {
                    project,
                    name,
                    description,
                    prompt_text,
                    identity_notes,
                    reference_assets: references,
                })
                .await?;
            print(global, &c, || {
                format!("created character {} ({})", c.name, c.id)
            });
        }
        CharacterCommand::List { project } => {
            let list = client
                .call::<character_rpc::List>(&wire::ProjectParams { project })
                .await?;
            print(global, &list, || {
                let rows: Vec<_> = list
                    .characters
                    .iter()
                    .map(|c| {
                        (
                            c.name.clone(),
                            c.id.clone(),
                            c.reference_assets.len().to_string(),
                        )
                    })
                    .collect();
                output::named_table("references", &rows).to_string()
            });
        }
        CharacterCommand::Show { project, id } => {
            let c = client
                .call::<character_rpc::Get>(&wire::EntityRef { project, id })
                .await?;
            print(global, &c, || {
                output::details(&[
                    ("name", c.name.clone()),
                    ("id", c.id.clone()),
                    ("description", c.description.clone()),
                    ("prompt", c.prompt_text.clone()),
                    ("identity notes", c.identity_notes.clone()),
                    ("references", c.reference_assets.join(", ")),
                    ("updated", c.updated_at.clone()),
                ])
                .to_string()
            });
        }
        CharacterCommand::Update {
            project,
            id,
            name,
            description,
            prompt_text,
            identity_notes,
            references,
            clear_references,
        } => {
            let c = client
                .call::<character_rpc::Update>(&wire::CharacterUpdate {
                    project,
                    id,
                    name,
                    description,
                    prompt_text,
                    identity_notes,
                    reference_assets: references_update(references, clear_references),
                })
                .await?;
            print(global, &c, || format!("updated character {}", c.name));
        }
        CharacterCommand::Rm { project, id, yes } => {
            let deleted =
                confirmed_delete::<character_rpc::Delete>(&client, "character", project, id, yes)
                    .await?;
            print_deleted(global, "character", &deleted);
        }
    }
    Ok(())
}

fn set_details(set: &wire::ReferenceSet) -> String {
    let mut text = output::details(&[
        ("name", set.name.clone()),
        ("id", set.id.clone()),
        ("kind", set.kind.as_str().to_owned()),
        ("description", set.description.clone()),
        ("updated", set.updated_at.clone()),
    ])
    .to_string();
    let mut items = output::table(&["asset", "role", "weight", "notes"]);
    for item in &set.items {
        items.add_row(vec![
            item.asset.clone(),
            item.role.clone(),
            item.weight.to_string(),
            item.notes.clone(),
        ]);
    }
    if set.items.is_empty() {
        text.push_str("\n(no items; add one with `kromactl refset add PROJECT SET ASSET`)");
    } else {
        text.push('\n');
        text.push_str(&items.to_string());
    }
    text
}

pub async fn refset(global: &Global, socket: &Path, command: RefsetCommand) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    let set = match command {
        RefsetCommand::Create {
            project,
            name,
            description,
            kind,
        } => {
            client
                .call::<reference_set::Create>(&wire::ReferenceSetCreate {
                    project,
                    name,
                    description,
                    kind: kind.into(),
                    items: Vec::new(),
                })
                .await?
        }
        RefsetCommand::Add {
            project,
            set,
            asset,
            role,
            weight,
            notes,
        } => {
            client
                .call::<reference_set::AddItem>(&wire::ReferenceItemAdd {
                    project,
                    set,
                    asset,
                    role,
                    weight,
                    notes,
                })
                .await?
        }
        RefsetCommand::Remove {
            project,
            set,
            asset,
        } => {
            client
                .call::<reference_set::RemoveItem>(&wire::ReferenceItemRemove {
                    project,
                    set,
                    asset,
                })
                .await?
        }
        RefsetCommand::Show { project, id } => {
            client
                .call::<reference_set::Get>(&wire::EntityRef { project, id })
                .await?
        }
        RefsetCommand::Update {
            project,
            id,
            name,
            description,
            kind,
        } => {
            client
                .call::<reference_set::Update>(&wire::ReferenceSetUpdate {
                    project,
                    id,
                    name,
                    description,
                    kind: kind.map(Into::into),
                    items: None,
                })
                .await?
        }
        RefsetCommand::List { project } => {
            let list = client
                .call::<reference_set::List>(&wire::ProjectParams { project })
                .await?;
            print(global, &list, || {
                let rows: Vec<_> = list
                    .reference_sets
                    .iter()
                    .map(|s| {
                        (
                            s.name.clone(),
                            s.id.clone(),
                            format!("{} ({} items)", s.kind.as_str(), s.items.len()),
                        )
                    })
                    .collect();
                output::named_table("kind", &rows).to_string()
            });
            return Ok(());
        }
        RefsetCommand::Rm { project, id, yes } => {
            let deleted = confirmed_delete::<reference_set::Delete>(
                &client,
                "reference set",
                project,
                id,
                yes,
            )
            .await?;
            print_deleted(global, "reference set", &deleted);
            return Ok(());
        }
    };
    print(global, &set, || set_details(&set));
    Ok(())
}

fn read_body(body: Option<String>, body_file: Option<PathBuf>) -> Result<Option<String>, Failure> {
    match (body, body_file) {
        (Some(body), _) => Ok(Some(body)),
        (None, Some(file)) => std::fs::read_to_string(&file)
            .map(Some)
            .map_err(|err| Failure::other(format!("reading {}: {err}", file.display()), None)),
        (None, None) => Ok(None),
    }
}

pub async fn template(
    global: &Global,
    socket: &Path,
    command: TemplateCommand,
) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    match command {
        TemplateCommand::Create {
            project,
            name,
            body,
            body_file,
            variables,
        } => {
            let body = read_body(body, body_file)?.unwrap_or_default();
            let t = client
                .call::<prompt_template::Create>(&wire::PromptTemplateCreate {
                    project,
                    name,
                    body,
                    variables,
                })
                .await?;
            print(global, &t, || {
                format!("created prompt template {} ({})", t.name, t.id)
            });
        }
        TemplateCommand::Render { project, id, vars } => {
            let mut values = std::collections::BTreeMap::new();
            for pair in vars {
                let Some((name, value)) = pair.split_once('=') else {
                    return Err(Failure::Usage(format!(
                        "--var `{pair}` must look like NAME=VALUE"
                    )));
                };
                values.insert(name.to_owned(), value.to_owned());
            }
            let rendered = client
                .call::<prompt_template::Render>(&wire::RenderParams {
                    project,
                    id,
                    vars: values,
                })
                .await?;
            print(global, &rendered, || rendered.text.clone());
        }
        TemplateCommand::List { project } => {
            let list = client
                .call::<prompt_template::List>(&wire::ProjectParams { project })
                .await?;
            print(global, &list, || {
                let rows: Vec<_> = list
                    .prompt_templates
                    .iter()
                    .map(|t| (t.name.clone(), t.id.clone(), t.variables.join(", ")))
                    .collect();
                output::named_table("variables", &rows).to_string()
            });
        }
        TemplateCommand::Show { project, id } => {
            let t = client
                .call::<prompt_template::Get>(&wire::EntityRef { project, id })
                .await?;
            print(global, &t, || {
                output::details(&[
                    ("name", t.name.clone()),
                    ("id", t.id.clone()),
                    ("variables", t.variables.join(", ")),
                    ("body", t.body.clone()),
                    ("updated", t.updated_at.clone()),
                ])
                .to_string()
            });
        }
        TemplateCommand::Update {
            project,
            id,
            name,
            body,
            body_file,
            variables,
            clear_vars,
        } => {
            let t = client
                .call::<prompt_template::Update>(&wire::PromptTemplateUpdate {
                    project,
                    id,
                    name,
                    body: read_body(body, body_file)?,
                    variables: references_update(variables, clear_vars),
                })
                .await?;
            print(global, &t, || format!("updated prompt template {}", t.name));
        }
        TemplateCommand::Rm { project, id, yes } => {
            let deleted = confirmed_delete::<prompt_template::Delete>(
                &client,
                "prompt template",
                project,
                id,
                yes,
            )
            .await?;
            print_deleted(global, "prompt template", &deleted);
        }
    }
    Ok(())
}
