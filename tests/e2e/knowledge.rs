//! Style guides, characters, reference sets and prompt templates through the real daemon.

use std::io::Cursor;

use kroma_client::{Client, ClientError};
use kroma_protocol as protocol;
use kroma_tests::Daemon;
use protocol::knowledge::{self as wire, character, prompt_template, reference_set, style_guide};

fn code(err: ClientError) -> String {
    match err {
        ClientError::Rpc {
            data: Some(data), ..
        } => data.code,
        other => panic!("expected a Kroma error, got {other:?}"),
    }
}

async fn setup(daemon: &Daemon) -> (Client, Vec<String>) {
    let client = daemon.client().await;
    client
        .call::<protocol::project::Create>(&protocol::project::CreateParams {
            name: "Lore".into(),
            slug: None,
            description: None,
            root: None,
            s3: None,
        })
        .await
        .unwrap();
    let folder = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for seed in 0..3u8 {
        let path = folder.path().join(format!("ref-{seed}.png"));
        let image = image::RgbImage::from_fn(12, 12, |x, y| image::Rgb([x as u8, y as u8, seed]));
        let mut bytes = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        std::fs::write(&path, bytes).unwrap();
        paths.push(path.display().to_string());
    }
    let report = client
        .call::<protocol::asset::Import>(&protocol::asset::ImportParams {
            project: "lore".into(),
            paths,
            kind: protocol::asset::AssetKind::Reference,
        })
        .await
        .unwrap();
    let ids = report
        .results
        .iter()
        .map(|r| r.asset.clone().unwrap().id)
        .collect();
    (client, ids)
}

fn entity(id: &str) -> wire::EntityRef {
    wire::EntityRef {
        project: "lore".into(),
        id: id.into(),
    }
}

#[tokio::test]
async fn style_guides_keep_exactly_one_default() {
    let daemon = Daemon::start();
    let (client, assets) = setup(&daemon).await;
    let ink = client
        .call::<style_guide::Create>(&wire::StyleGuideCreate {
            project: "lore".into(),
            name: "Ink Wash".into(),
            instructions: "Brush ink, teal washes, no gradients".into(),
            palette: "teal, bone, black".into(),
            reference_assets: vec![assets[1].clone(), assets[0].clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(ink.is_default, "the first guide is the default");
    assert_eq!(
        ink.reference_assets,
        [assets[1].clone(), assets[0].clone()],
        "order is kept"
    );
    let noir = client
        .call::<style_guide::Create>(&wire::StyleGuideCreate {
            project: "lore".into(),
            name: "Noir".into(),
            instructions: "Hard shadows".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!noir.is_default);

    // Names are unique ignoring case; ids and names both find a guide.
    let clash = client
        .call::<style_guide::Create>(&wire::StyleGuideCreate {
            project: "lore".into(),
            name: "ink wash".into(),
            instructions: "x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(clash), "name_taken");
    assert_eq!(
        client
            .call::<style_guide::Get>(&entity("INK WASH"))
            .await
            .unwrap()
            .id,
        ink.id
    );
    assert_eq!(
        client
            .call::<style_guide::Get>(&entity(&noir.id))
            .await
            .unwrap()
            .name,
        "Noir"
    );

    let promoted = client
        .call::<style_guide::Update>(&wire::StyleGuideUpdate {
            project: "lore".into(),
            id: "noir".into(),
            is_default: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(promoted.is_default);
    assert!(
        !client
            .call::<style_guide::Get>(&entity("Ink Wash"))
            .await
            .unwrap()
            .is_default
    );
    let unset = client
        .call::<style_guide::Update>(&wire::StyleGuideUpdate {
            project: "lore".into(),
            id: "noir".into(),
            is_default: Some(false),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(unset), "default_required");

    // Deleting the default promotes the remaining guide.
    client
        .call::<style_guide::Delete>(&wire::DeleteParams {
            project: "lore".into(),
            id: "noir".into(),
            confirm: true,
        })
        .await
        .unwrap();
    let list = client
        .call::<style_guide::List>(&wire::ProjectParams {
            project: "lore".into(),
        })
        .await
        .unwrap();
    assert_eq!(list.style_guides.len(), 1);
    assert!(list.style_guides[0].is_default);

    let bad = client
        .call::<style_guide::Create>(&wire::StyleGuideCreate {
            project: "lore".into(),
            name: "Empty".into(),
            instructions: "   ".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(bad), "missing_text");
    let foreign = client
        .call::<style_guide::Create>(&wire::StyleGuideCreate {
            project: "lore".into(),
            name: "Foreign".into(),
            instructions: "x".into(),
            reference_assets: vec!["no-such-asset".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(foreign), "asset_not_found");
}

#[tokio::test]
async fn characters_keep_their_reference_images_until_the_asset_goes() {
    let daemon = Daemon::start();
    let (client, assets) = setup(&daemon).await;
    let mara = client
        .call::<character::Create>(&wire::CharacterCreate {
            project: "lore".into(),
            name: "Mara".into(),
            description: "Harbor pilot".into(),
            prompt_text: "a wiry woman in her forties, grey braid, oilskin coat".into(),
            identity_notes: "scar over the left eyebrow".into(),
            reference_assets: assets[..2].to_vec(),
        })
        .await
        .unwrap();
    assert_eq!(mara.reference_assets.len(), 2);
    let renamed = client
        .call::<character::Update>(&wire::CharacterUpdate {
            project: "lore".into(),
            id: "mara".into(),
            name: Some("Mara Quell".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        renamed.prompt_text, mara.prompt_text,
        "fields not given are kept"
    );
    assert_eq!(renamed.reference_assets, mara.reference_assets);
    client
        .call::<protocol::asset::Delete>(&protocol::asset::DeleteParams {
            project: "lore".into(),
            id: assets[0].clone(),
            confirm: true,
        })
        .await
        .unwrap();
    let after = client
        .call::<character::Get>(&entity("mara quell"))
        .await
        .unwrap();
    assert_eq!(after.reference_assets, [assets[1].clone()]);
    let gone = client
        .call::<character::Delete>(&wire::DeleteParams {
            project: "lore".into(),
            id: "Mara Quell".into(),
            confirm: false,
        })
        .await
        .unwrap_err();
    assert_eq!(code(gone), "confirmation_required");
}

#[tokio::test]
async fn reference_sets_hold_weighted_items() {
    let daemon = Daemon::start();
    let (client, assets) = setup(&daemon).await;
    let set = client
        .call::<reference_set::Create>(&wire::ReferenceSetCreate {
            project: "lore".into(),
            name: "Mara face".into(),
            kind: wire::ReferenceSetKind::Character,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(set.items.is_empty());
    let add = |asset: &str, role: &str, weight: f64| wire::ReferenceItemAdd {
        project: "lore".into(),
        set: "mara face".into(),
        asset: asset.into(),
        role: role.into(),
        weight,
        notes: String::new(),
    };
    client
        .call::<reference_set::AddItem>(&add(&assets[0], "face-front", 2.0))
        .await
        .unwrap();
    client
        .call::<reference_set::AddItem>(&add(&assets[1], "profile", 1.0))
        .await
        .unwrap();
    let set = client
        .call::<reference_set::AddItem>(&add(&assets[0], "face-front", 3.5))
        .await
        .unwrap();
    let items: Vec<(&str, f64)> = set
        .items
        .iter()
        .map(|i| (i.role.as_str(), i.weight))
        .collect();
    assert_eq!(
        items,
        [("face-front", 3.5), ("profile", 1.0)],
        "adding again updates in place"
    );
    assert_eq!(
        code(
            client
                .call::<reference_set::AddItem>(&add(&assets[2], "x", 0.0))
                .await
                .unwrap_err()
        ),
        "invalid_weight"
    );
    assert_eq!(
        code(
            client
                .call::<reference_set::AddItem>(&add("nope", "x", 1.0))
                .await
                .unwrap_err()
        ),
        "asset_not_found"
    );
    let set = client
        .call::<reference_set::RemoveItem>(&wire::ReferenceItemRemove {
            project: "lore".into(),
            set: "Mara face".into(),
            asset: assets[0].clone(),
        })
        .await
        .unwrap();
    assert_eq!(set.items.len(), 1);
    let again = client
        .call::<reference_set::RemoveItem>(&wire::ReferenceItemRemove {
            project: "lore".into(),
            set: "Mara face".into(),
            asset: assets[0].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(again), "item_not_found");
    let replaced = client
        .call::<reference_set::Update>(&wire::ReferenceSetUpdate {
            project: "lore".into(),
            id: set.id.clone(),
            items: Some(vec![wire::ReferenceItem {
                asset: assets[2].clone(),
                role: "hands".into(),
                weight: 1.0,
                notes: "left hand ring".into(),
            }]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(replaced.items.len(), 1);
    assert_eq!(replaced.items[0].notes, "left hand ring");
    assert_eq!(replaced.kind, wire::ReferenceSetKind::Character);
}

#[tokio::test]
async fn prompt_templates_declare_and_render_their_variables() {
    let daemon = Daemon::start();
    let (client, _) = setup(&daemon).await;
    let create = |body: &str, variables: &[&str]| wire::PromptTemplateCreate {
        project: "lore".into(),
        name: "Scene".into(),
        body: body.into(),
        variables: variables.iter().map(|v| v.to_string()).collect(),
    };
    let undeclared = client
        .call::<prompt_template::Create>(&create("{{who}} at {{place}}", &["who"]))
        .await
        .unwrap_err();
    assert_eq!(code(undeclared), "undeclared_variable");
    let unused = client
        .call::<prompt_template::Create>(&create("{{who}}", &["who", "mood"]))
        .await
        .unwrap_err();
    assert_eq!(code(unused), "unused_variable");
    let template = client
        .call::<prompt_template::Create>(&create(
            "{{who}} waits at {{place}}, {{ time_of_day }} light",
            &["who", "place", "time_of_day"],
        ))
        .await
        .unwrap();
    assert_eq!(template.variables, ["who", "place", "time_of_day"]);

    let render = |vars: &[(&str, &str)]| wire::RenderParams {
        project: "lore".into(),
        id: "scene".into(),
        vars: vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let text = client
        .call::<prompt_template::Render>(&render(&[
            ("who", "Mara"),
            ("place", "the pier"),
            ("time_of_day", "dawn"),
        ]))
        .await
        .unwrap();
    assert_eq!(text.text, "Mara waits at the pier, dawn light");
    let err = client
        .call::<prompt_template::Render>(&render(&[("who", "Mara"), ("weather", "rain")]))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert_eq!(code(err), "template_variables");
    assert!(
        message.contains("`place`")
            && message.contains("`time_of_day`")
            && message.contains("`weather`"),
        "{message}"
    );

    let updated = client
        .call::<prompt_template::Update>(&wire::PromptTemplateUpdate {
            project: "lore".into(),
            id: template.id.clone(),
            body: Some("{{who}} alone".into()),
            variables: Some(vec!["who".into()]),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(updated.variables, ["who"]);
    let broken = client
        .call::<prompt_template::Update>(&wire::PromptTemplateUpdate {
            project: "lore".into(),
            id: template.id.clone(),
            body: Some("{{who}} and {{other}}".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(code(broken), "undeclared_variable");
    assert_eq!(
        client
            .call::<prompt_template::Get>(&entity("Scene"))
            .await
            .unwrap()
            .body,
        "{{who}} alone"
    );
}

#[test]
fn knowledge_from_the_command_line() {
    let daemon = Daemon::start();
    let socket = &daemon.socket;
    let run = |args: &[&str]| {
        let output = kroma_tests::kromactl(socket, args);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    run(&["project", "create", "Cli Lore"]);
    run(&[
        "style",
        "create",
        "cli-lore",
        "Ink",
        "--instructions",
        "brush ink",
        "--palette",
        "teal",
    ]);
    assert!(run(&["style", "list", "cli-lore"]).contains("yes"));
    assert!(run(&["style", "show", "cli-lore", "ink"]).contains("brush ink"));
    run(&[
        "character",
        "create",
        "cli-lore",
        "Mara",
        "--prompt",
        "grey braid",
    ]);
    assert!(run(&["character", "show", "cli-lore", "mara"]).contains("grey braid"));
    run(&[
        "refset",
        "create",
        "cli-lore",
        "Faces",
        "--kind",
        "character",
    ]);
    assert!(run(&["refset", "show", "cli-lore", "faces"]).contains("no items"));
    run(&[
        "template",
        "create",
        "cli-lore",
        "Shot",
        "--body",
        "{{who}} at dusk",
        "--var",
        "who",
    ]);
    assert_eq!(
        run(&[
            "template", "render", "cli-lore", "shot", "--var", "who=Mara"
        ])
        .trim(),
        "Mara at dusk"
    );
    let missing = kroma_tests::kromactl(socket, &["template", "render", "cli-lore", "shot"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("missing `who`"));
    run(&["--quiet", "template", "rm", "cli-lore", "shot", "--yes"]);
    assert!(!run(&["template", "list", "cli-lore"]).contains("Shot"));
}
