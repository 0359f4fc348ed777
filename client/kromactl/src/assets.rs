//! `kromactl asset …`: import with live progress, list, show, delete, link, lineage.

use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use kroma_client::Client;
use kroma_protocol as protocol;
use protocol::asset::{AssetKind, Relation};

use crate::common::confirm;
use crate::output::{self, Failure, print};
use crate::{AnyKind, AssetCommand, Global, ImportKind, RelationArg};

pub async fn run(global: &Global, socket: &Path, command: AssetCommand) -> Result<(), Failure> {
    let client = Client::connect(socket).await?;
    match command {
        AssetCommand::Import {
            project,
            paths,
            kind,
        } => import(global, &client, project, paths, kind).await,
        AssetCommand::List { project, kind } => {
            let list = client
                .call::<protocol::asset::List>(&protocol::asset::ListParams {
                    project,
                    kind: kind.map(any_kind),
                })
                .await?;
            print(global, &list, || {
                if list.assets.is_empty() {
                    "no assets; import some with `kromactl asset import PROJECT PATH…`".to_owned()
                } else {
                    output::asset_table(&list.assets).to_string()
                }
            });
            Ok(())
        }
        AssetCommand::Show { project, id } => {
            let asset = client
                .call::<protocol::asset::Get>(&protocol::asset::AssetRef { project, id })
                .await?;
            print(global, &asset, || output::asset_details(&asset).to_string());
            Ok(())
        }
        AssetCommand::Rm { project, id, yes } => {
            if !yes {
                let asset = client
                    .call::<protocol::asset::Get>(&protocol::asset::AssetRef {
                        project: project.clone(),
                        id: id.clone(),
                    })
                    .await?;
                if !confirm(&format!(
                    "Delete asset {} ({}) and its links?",
                    asset.id, asset.path
                ))? {
                    return Err(Failure::other(
                        "not deleted",
                        Some("pass --yes to skip the question"),
                    ));
                }
            }
            let deleted = client
                .call::<protocol::asset::Delete>(&protocol::asset::DeleteParams {
                    project,
                    id,
                    confirm: true,
                })
                .await?;
            print(global, &deleted, || {
                format!(
                    "deleted asset {} ({}) and {} links",
                    deleted.id, deleted.path, deleted.links_removed
                )
            });
            Ok(())
        }
        AssetCommand::Link {
            project,
            from,
            relation,
            to,
        } => {
            let link = client
                .call::<protocol::asset::Link>(&protocol::asset::LinkParams {
                    project,
                    from,
                    to,
                    relation: relation_of(relation),
                })
                .await?;
            print(global, &link, || {
                format!("{} {} {}", link.from, link.relation.as_str(), link.to)
            });
            Ok(())
        }
        AssetCommand::Lineage { project, id } => {
            let graph = client
                .call::<protocol::asset::Lineage>(&protocol::asset::AssetRef { project, id })
                .await?;
            print(global, &graph, || output::lineage_text(&graph));
            Ok(())
        }
    }
}

async fn import(
    global: &Global,
    client: &Client,
    project: String,
    paths: Vec<std::path::PathBuf>,
    kind: ImportKind,
) -> Result<(), Failure> {
    let cwd = std::env::current_dir()
        .map_err(|err| Failure::other(format!("reading the current directory: {err}"), None))?;
    let paths = paths
        .into_iter()
        .map(|path| cwd.join(path).display().to_string())
        .collect();
    // Progress comes from the daemon's own `asset.imported` events for this project.
    let progress =
        if global.quiet || global.json || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar.set_message("importing…");
            bar
        };
    let mut events = client
        .subscribe::<protocol::events::Subscribe>(&protocol::events::SubscribeParams {
            since: None,
        })
        .await?;
    let params = protocol::asset::ImportParams {
        project: project.clone(),
        paths,
        kind: import_kind(kind),
    };
    let call = client.call::<protocol::asset::Import>(&params);
    tokio::pin!(call);
    let mut imported = 0;
    let report = loop {
        tokio::select! {
            report = &mut call => break report?,
            Some(Ok(event)) = events.next() => {
                if event.project.as_deref() != Some(project.as_str()) {
                    continue;
                }
                if let Some(Ok(asset)) = event.payload::<protocol::events::AssetImported>() {
                    imported += 1;
                    progress.set_message(format!("imported {imported}: {}", asset.path));
                }
            }
        }
    };
    progress.finish_and_clear();
    print(global, &report, || {
        format!(
            "{}\n{} imported, {} already there, {} failed",
            output::import_table(&report.results),
            report.imported,
            report.existing,
            report.failed
        )
    });
    if report.failed > 0 {
        return Err(Failure::other(
            format!(
                "{} of {} files were not imported",
                report.failed,
                report.results.len()
            ),
            Some("each failed file says why above; nothing of them was copied"),
        ));
    }
    Ok(())
}

fn import_kind(kind: ImportKind) -> AssetKind {
    match kind {
        ImportKind::Input => AssetKind::Input,
        ImportKind::Reference => AssetKind::Reference,
        ImportKind::Mask => AssetKind::Mask,
        ImportKind::Other => AssetKind::Other,
    }
}

fn any_kind(kind: AnyKind) -> AssetKind {
    match kind {
        AnyKind::Input => AssetKind::Input,
        AnyKind::Reference => AssetKind::Reference,
        AnyKind::Mask => AssetKind::Mask,
        AnyKind::Generated => AssetKind::Generated,
        AnyKind::BgRemoved => AssetKind::BgRemoved,
        AnyKind::Upscaled => AssetKind::Upscaled,
        AnyKind::ColorCorrected => AssetKind::ColorCorrected,
        AnyKind::Other => AssetKind::Other,
    }
}

fn relation_of(relation: RelationArg) -> Relation {
    match relation {
        RelationArg::DerivedFrom => Relation::DerivedFrom,
        RelationArg::VariantOf => Relation::VariantOf,
        RelationArg::MaskFor => Relation::MaskFor,
        RelationArg::ReferenceOf => Relation::ReferenceOf,
    }
}
