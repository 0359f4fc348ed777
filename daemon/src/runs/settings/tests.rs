//! Settings tests: parsing one layer, merging layers with their sources, and the range checks.

use super::*;

fn user(text: &str) -> Layer {
    parse(text, Source::User(PathBuf::from("/u/config.toml"))).expect("valid layer")
}

#[test]
fn defaults_are_valid_and_complete() {
    let resolved = resolve(Vec::new()).expect("defaults resolve");
    assert_eq!(resolved.settings, Settings::default());
    let keys: Vec<String> = resolved.entries().into_iter().map(|s| s.key).collect();
    assert!(keys.contains(&"generation.safe_batch_limit".to_owned()));
    assert!(keys.contains(&"prompts.style_base".to_owned()));
    assert!(resolved.entries().iter().all(|s| s.source == "default"));
}

#[test]
fn higher_layers_win_per_leaf_and_keep_their_source() {
    let project = parse(
        "[generation]\nquality = \"low\"\n[prompts]\ntime_dusk = \"Dusk light.\"\n",
        Source::Project(PathBuf::from("/p/.kroma/settings.toml")),
    )
    .expect("valid");
    let request = request_layer(&[(
        "generation",
        "quality",
        toml::Value::String("medium".into()),
    )]);
    let resolved = resolve(vec![
        user("[generation]\nquality = \"high\"\ncandidates = 2\n"),
        project,
        request,
    ])
    .expect("resolves");
    assert_eq!(resolved.settings.generation.quality, "medium");
    assert_eq!(resolved.settings.generation.candidates, 2);
    assert_eq!(resolved.settings.prompts["time_dusk"], "Dusk light.");
    assert_eq!(
        resolved.settings.prompts["time_day"], DEFAULT_PROMPTS[1].1,
        "maps merge per key"
    );
    let source = |key: &str| {
        resolved
            .entries()
            .into_iter()
            .find(|s| s.key == key)
            .map(|s| s.source)
            .expect("key listed")
    };
    assert_eq!(source("generation.quality"), "request");
    assert_eq!(source("generation.candidates"), "user:/u/config.toml");
    assert_eq!(
        source("prompts.time_dusk"),
        "project:/p/.kroma/settings.toml"
    );
    assert_eq!(source("generation.size"), "default");
}

#[test]
fn unknown_keys_and_wrong_types_name_the_key_and_the_file() {
    let err = parse(
        "[generation]\nqualty = \"low\"\n",
        Source::User("/u/c.toml".into()),
    )
    .err()
    .expect("unknown key refused");
    assert!(err.message.contains("qualty"), "{}", err.message);
    assert!(err.message.contains("/u/c.toml"), "{}", err.message);
    let err = parse("[budget]\ndaily_usd = \"ten\"\n", Source::Request)
        .err()
        .expect("wrong type refused");
    assert!(err.message.contains("daily_usd") || err.message.contains("invalid type"));
    let err = parse("colour = 1\n", Source::Request)
        .err()
        .expect("unknown top-level key refused");
    assert!(err.message.contains("colour"), "{}", err.message);
}

#[test]
fn ranges_are_checked_after_the_merge_and_name_the_source() {
    let err = resolve(vec![user("[generation]\ncandidates = 7\n")])
        .err()
        .expect("over the cap");
    assert!(
        err.message.contains("generation.candidates"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("user:/u/config.toml"),
        "{}",
        err.message
    );
    let err = resolve(vec![user("[generation]\nmax_candidates = 9\n")])
        .err()
        .expect("over the ceiling");
    assert!(err.message.contains("max_candidates"));
    let err = resolve(vec![user("[generation]\nsize = \"big\"\n")])
        .err()
        .expect("bad size");
    assert!(err.message.contains("generation.size"));
    let err = resolve(vec![user("[budget]\ndaily_usd = -1.0\n")])
        .err()
        .expect("negative budget");
    assert!(err.message.contains("budget.daily_usd"));
}

#[test]
fn keys_with_dots_are_quoted() {
    let layer = user("[pricing.\"gpt-image-1.5\"]\nlow = 0.01\nmedium = 0.04\nhigh = 0.2\n");
    let resolved = resolve(vec![layer]).expect("resolves");
    assert!(
        resolved
            .entries()
            .iter()
            .any(|s| s.key == "pricing.\"gpt-image-1.5\".high")
    );
    assert_eq!(resolved.settings.pricing["gpt-image-1.5"].high, 0.2);
}

#[test]
fn sizes_parse_within_bounds() {
    assert_eq!(parse_size("1024x1536"), Some((1024, 1536)));
    assert_eq!(parse_size("8x8"), None);
    assert_eq!(parse_size("1024x"), None);
    assert_eq!(parse_size("5000x1024"), None);
}
