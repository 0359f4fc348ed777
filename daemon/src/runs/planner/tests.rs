//! Planner tests: prompt composition, stage rules, knowledge use, model lifecycle, caps, and
//! property tests that plans respect their caps and are deterministic.

use proptest::prelude::*;

use super::*;
use crate::providers::image_models::Reported;

fn image(name: &str) -> ImageRef {
    ImageRef {
        asset: Some(format!("asset-{name}")),
        path: format!("/p/inputs/{name}"),
        sha256: Some(hex_sha256(name.as_bytes())),
    }
}

fn scenes(names: &[&str]) -> Vec<Scene> {
    names
        .iter()
        .map(|name| Scene {
            name: (*name).to_owned(),
            image: image(name),
        })
        .collect()
}

fn inputs(stage: Stage, scene_names: &[&str]) -> Inputs {
    let settings = Settings::default();
    Inputs {
        baselines: BTreeMap::new(),
        project: "noir".to_owned(),
        stage,
        time: None,
        weather: None,
        settings_snapshot: serde_json::to_value(&settings).expect("serializes"),
        models: crate::providers::image_models::list(&settings, &Reported::new(), "2026-11-27"),
        settings,
        provider: Provider {
            name: "openai".to_owned(),
            base_url: "https://api.openai.com/v1".to_owned(),
            default_model: "gpt-image-2".to_owned(),
        },
        scenes: scenes(scene_names),
        style_guide: None,
        style_refs: Vec::new(),
        characters: Vec::new(),
        template: None,
    }
}

#[test]
fn style_stage_prompt_is_the_base_and_the_no_invention_rule() {
    let plan = plan(&inputs(Stage::Style, &["Alley Night.png"])).expect("plans");
    let job = &plan.jobs[0];
    assert_eq!(job.key, "style_1_alley_night");
    assert_eq!(
        job.prompt,
        format!("{} {NO_INVENTION}", settings::DEFAULT_PROMPTS[0].1)
    );
    assert_eq!(job.prompt_sha256, hex_sha256(job.prompt.as_bytes()));
    assert_eq!(job.endpoint, Endpoint::Edits);
    assert_eq!(job.input_images.len(), 1);
    assert_eq!(job.input_images[0].role, InputRole::Scene);
    assert_eq!(plan.model, "gpt-image-2");
    assert_eq!(plan.cost.calls, 1);
    assert!(plan.cost.max_usd > 0.0);
    assert_eq!(plan.cost.price_source, "builtin:gpt-image-2");
}

#[test]
fn weather_stage_adds_time_and_weather_chunks_in_order() {
    let mut weather = inputs(Stage::Weather, &["a.png"]);
    weather.time = Some("night".to_owned());
    weather.weather = Some("rain".to_owned());
    let plan = plan(&weather).expect("plans");
    let prompt = &plan.jobs[0].prompt;
    let base = prompt.find("Preserve geometry").expect("base");
    let night = prompt.find("Night scene").expect("time");
    let rain = prompt.find("Visible wet surfaces").expect("weather");
    let rule = prompt.find(NO_INVENTION).expect("rule");
    assert!(base < night && night < rain && rain < rule, "{prompt}");
    assert_eq!(plan.time.as_deref(), Some("night"));
    assert_eq!(plan.weather.as_deref(), Some("rain"));
}

#[test]
fn time_and_weather_only_where_their_stage_allows() {
    let mut style = inputs(Stage::Style, &["a.png"]);
    style.time = Some("night".to_owned());
    assert_eq!(
        plan(&style).err().map(|e| e.code),
        Some(ErrorCode::TimeNotAllowed)
    );
    let mut time = inputs(Stage::Time, &["a.png"]);
    time.weather = Some("rain".to_owned());
    assert_eq!(
        plan(&time).err().map(|e| e.code),
        Some(ErrorCode::WeatherNotAllowed)
    );
    let mut unknown = inputs(Stage::Time, &["a.png"]);
    unknown.time = Some("dusk".to_owned());
    let err = plan(&unknown).expect_err("no prompts.time_dusk");
    assert_eq!(err.message, "missing prompts.time_dusk");
}

#[test]
fn knowledge_is_used_style_guide_template_and_characters() {
    let mut run = inputs(Stage::Character, &["a.png", "b.png"]);
    run.style_guide = Some(StyleGuide {
        name: "noir".to_owned(),
        instructions: "Heavy ink, cross-hatching".to_owned(),
        palette: String::new(),
        line: "Thick brush".to_owned(),
        lighting: String::new(),
        references: vec![image("guide.png")],
    });
    run.style_refs = vec![image("guide.png"), image("extra.png")];
    run.characters = vec![Character {
        name: "Mara".to_owned(),
        prompt_text: "red coat, scar over left eye".to_owned(),
        references: vec![image("mara-front.png")],
    }];
    run.template = Some(Template {
        name: "panel".to_owned(),
        body: "Panel {{scene}} of {{issue}} with {{characters}}.".to_owned(),
        variables: vec![
            "scene".to_owned(),
            "issue".to_owned(),
            "characters".to_owned(),
        ],
        vars: BTreeMap::from([("issue".to_owned(), "issue 3".to_owned())]),
    });
    let plan = plan(&run).expect("plans");
    let job = &plan.jobs[1];
    assert!(
        job.prompt
            .contains("Style: Heavy ink, cross-hatching. Line: Thick brush.")
    );
    assert!(job.prompt.contains("Panel b of issue 3 with Mara."));
    assert!(
        job.prompt
            .contains("Character Mara: red coat, scar over left eye.")
    );
    let roles: Vec<(InputRole, &str)> = job
        .input_images
        .iter()
        .map(|i| (i.role, i.path.as_str()))
        .collect();
    assert_eq!(
        roles,
        vec![
            (InputRole::Scene, "/p/inputs/b.png"),
            (InputRole::Style, "/p/inputs/guide.png"),
            (InputRole::Style, "/p/inputs/extra.png"),
            (InputRole::Character, "/p/inputs/mara-front.png"),
        ],
        "scene first, style refs once each, then character refs"
    );
    assert_eq!(plan.characters, vec!["Mara".to_owned()]);
    assert_eq!(plan.style_guide.as_deref(), Some("noir"));
}

#[test]
fn characters_belong_to_the_character_stage() {
    let mut style = inputs(Stage::Style, &["a.png"]);
    style.characters = vec![Character {
        name: "Mara".to_owned(),
        prompt_text: String::new(),
        references: Vec::new(),
    }];
    assert_eq!(
        plan(&style).err().map(|e| e.code),
        Some(ErrorCode::CharactersNotAllowed)
    );
    let empty = inputs(Stage::Character, &["a.png"]);
    assert_eq!(
        plan(&empty).err().map(|e| e.code),
        Some(ErrorCode::NoCharacters)
    );
}

#[test]
fn retired_models_fail_with_the_replacement_and_retiring_ones_warn() {
    let mut retired = inputs(Stage::Style, &["a.png"]);
    retired.settings.generation.model = "gpt-image-1".to_owned();
    let err = plan(&retired).expect_err("retired");
    assert_eq!(err.code, ErrorCode::ModelRetired);
    assert!(err.message.contains("2026-10-23"), "{}", err.message);
    assert!(err.message.contains("gpt-image-2"), "{}", err.message);
    let mut retiring = inputs(Stage::Style, &["a.png"]);
    retiring.settings.generation.model = "gpt-image-1-mini".to_owned();
    let plan = plan(&retiring).expect("still plannable");
    assert!(plan.warnings[0].contains("2026-12-01"));
}

#[test]
fn unpriced_models_cannot_be_planned() {
    let mut run = inputs(Stage::Style, &["a.png"]);
    run.settings.generation.model = "my-local-model".to_owned();
    let err = plan(&run).expect_err("no price");
    assert_eq!(err.code, ErrorCode::UnpricedModel);
    assert!(
        err.hint
            .unwrap_or_default()
            .contains("[pricing.\"my-local-model\"]")
    );
}

#[test]
fn the_batch_limit_is_a_policy_error() {
    let names: Vec<String> = (0..21).map(|n| format!("s{n}.png")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let err = plan(&inputs(Stage::Style, &names)).expect_err("21 > 20");
    assert_eq!(err.kind, ErrorKind::Policy);
    assert_eq!(err.code, ErrorCode::BatchLimit);
}

#[test]
fn job_keys_follow_the_reference_rule() {
    assert_eq!(
        job_key(Stage::Style, 1, "Alley Night.png"),
        "style_1_alley_night"
    );
    assert_eq!(job_key(Stage::Time, 12, "été!!.jpg"), "time_12_t");
    assert_eq!(job_key(Stage::Weather, 3, "***.png"), "weather_3");
    assert_eq!(job_key(Stage::Style, 2, "a--b__c.png"), "style_2_a--b__c");
}

fn scene_names() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec("[A-Za-z0-9 _.-]{1,12}\\.png", 1..30)
}

proptest! {
    #[test]
    fn plans_never_exceed_their_caps(
        names in scene_names(),
        candidates in 1u32..=6,
        max_candidates in 1u32..=6,
        limit in 1u32..=25,
        quality in prop::sample::select(vec!["low", "medium", "high"]),
    ) {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let mut run = inputs(Stage::Style, &names);
        run.settings.generation.candidates = candidates;
        run.settings.generation.max_candidates = max_candidates;
        run.settings.generation.safe_batch_limit = limit;
        run.settings.generation.quality = quality.to_owned();
        // Settings are range-checked when resolved; planning sees only resolved settings.
        prop_assume!(candidates <= max_candidates);
        match plan(&run) {
            Ok(plan) => {
                prop_assert!(plan.jobs.len() <= limit as usize);
                prop_assert!(plan.jobs.iter().all(|job| job.candidates <= max_candidates));
                prop_assert!(plan.jobs.iter().all(|job| job.candidates <= settings::CANDIDATES_CEILING));
                let calls: u32 = plan.jobs.iter().map(|job| job.candidates).sum();
                prop_assert_eq!(calls, plan.cost.calls);
                let sum: f64 = plan.jobs.iter().map(|job| job.max_cost_usd).sum();
                prop_assert!((sum - plan.cost.max_usd).abs() < 1e-6);
                prop_assert!(plan.cost.per_call_max_usd * f64::from(calls) + 1e-6 >= plan.cost.max_usd);
            }
            Err(err) => {
                prop_assert_eq!(err.code, ErrorCode::BatchLimit);
                prop_assert!(names.len() > limit as usize);
            }
        }
    }

    #[test]
    fn planning_is_deterministic(names in scene_names()) {
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let first = plan(&inputs(Stage::Style, &names));
        let second = plan(&inputs(Stage::Style, &names));
        match (first, second) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(
                    serde_json::to_string(&a).expect("json"),
                    serde_json::to_string(&b).expect("json")
                );
                let keys: std::collections::BTreeSet<&String> = a.jobs.iter().map(|j| &j.key).collect();
                prop_assert_eq!(keys.len(), a.jobs.len(), "job keys are unique");
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.message, b.message),
            _ => prop_assert!(false, "same inputs, different outcomes"),
        }
    }
}
