//! Provider accounts and `provider.check` against a local server that speaks the OpenAI API.

use kroma_client::{Client, ClientError};
use kroma_protocol as protocol;
use kroma_tests::Daemon;
use kroma_tests::fake_provider::{FakeConfig, FakeProvider};
use protocol::provider::{CheckStatus, CreateParams, ProviderKind, ProviderRef, UpdateParams};

const KEY: &str = "sk-stub-valid-key-0042";

/// The fake OpenAI provider accepting only `KEY`; it lists its two default models.
async fn start_fake() -> FakeProvider {
    FakeProvider::start(FakeConfig {
        key: KEY.into(),
        ..FakeConfig::default()
    })
    .await
    .expect("start the fake provider")
}

/// The action of a failed check that asks for a call: `method` with `params`, `needs` left.
fn call(method: &str, params: serde_json::Value, needs: &[&str]) -> Option<protocol::Action> {
    serde_json::from_value(serde_json::json!({
        "type": "call", "method": method, "params": params, "needs": needs,
    }))
    .ok()
}

async fn check(client: &Client, name: &str) -> protocol::provider::CheckResult {
    client
        .call::<protocol::provider::Check>(&ProviderRef { name: name.into() })
        .await
        .unwrap()
}

#[tokio::test]
async fn check_reports_ok_invalid_key_missing_key_wrong_url_and_no_network() {
    let fake = start_fake().await;
    let temp = tempfile::tempdir().unwrap();
    // Keys come from environment overrides here; the keyring paths are covered in secrets.rs.
    let daemon = Daemon::start_with_env(
        temp.path(),
        &[],
        &[
            ("KROMA_SECRET_LOCAL", KEY),
            ("KROMA_SECRET_WRONG", "sk-wrong"),
        ],
    );
    let client = daemon.client().await;
    let create = |name: &str, base_url: String, secret: &str| CreateParams {
        name: name.into(),
        kind: ProviderKind::OpenaiCompatible,
        base_url: Some(base_url),
        default_model: None,
        organization: Some("org-test".into()),
        secret: Some(secret.into()),
        honors_idempotency_key: false,
    };
    let local = client
        .call::<protocol::provider::Create>(&create("local", fake.base_url(), "local"))
        .await
        .unwrap();
    assert_eq!(local.default_model, "gpt-image-2");
    assert_eq!(local.base_url, fake.base_url());

    let ok = check(&client, "local").await;
    assert!(ok.ok, "{ok:?}");
    assert_eq!((ok.status, ok.models), (CheckStatus::Ok, Some(2)));

    client
        .call::<protocol::provider::Create>(&create("wrong", fake.base_url(), "wrong"))
        .await
        .unwrap();
    let refused = check(&client, "wrong").await;
    assert_eq!(refused.status, CheckStatus::InvalidKey);
    assert!(refused.hint.unwrap().contains("secret `wrong`"));
    let set_wrong = serde_json::json!({"name": "wrong"});
    assert_eq!(refused.action, call("secret.set", set_wrong, &["value"]));

    client
        .call::<protocol::provider::Create>(&create("keyless", fake.base_url(), "nothing-here"))
        .await
        .unwrap();
    let keyless = check(&client, "keyless").await;
    assert_eq!(keyless.status, CheckStatus::NoKey);
    assert!(keyless.hint.unwrap().contains("secret `nothing-here`"));
    let set_missing = serde_json::json!({"name": "nothing-here"});
    assert_eq!(keyless.action, call("secret.set", set_missing, &["value"]));
    // kromactl shows the action as the command that does it.
    let out = kroma_tests::kromactl(&daemon.socket, &["provider", "check", "keyless"]);
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("\n  try: kromactl secret set nothing-here"),
        "{said}"
    );

    let wrong_path = format!("http://{}/api", fake.addr());
    client
        .call::<protocol::provider::Create>(&create("typo", wrong_path, "local"))
        .await
        .unwrap();
    let typo = check(&client, "typo").await;
    assert_eq!(typo.status, CheckStatus::WrongBaseUrl);
    let update_typo = serde_json::json!({"name": "typo"});
    assert_eq!(
        typo.action,
        call("provider.update", update_typo, &["base_url"])
    );

    // A port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    client
        .call::<protocol::provider::Create>(&create(
            "offline",
            format!("http://{closed}/v1"),
            "local",
        ))
        .await
        .unwrap();
    let offline = check(&client, "offline").await;
    assert_eq!(offline.status, CheckStatus::NoNetwork, "{offline:?}");
    let update_offline = serde_json::json!({"name": "offline"});
    assert_eq!(
        offline.action,
        call("provider.update", update_offline, &["base_url"])
    );
    assert!(!offline.message.contains(KEY));
    assert_eq!(
        fake.stats().models_requests,
        2,
        "only the ok and invalid-key checks reached /v1/models; the keyless one sent nothing"
    );

    let fixed = client
        .call::<protocol::provider::Update>(&UpdateParams {
            name: "typo".into(),
            base_url: Some(fake.base_url()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(fixed.base_url, fake.base_url());
    assert!(check(&client, "typo").await.ok);
}

#[tokio::test]
async fn accounts_are_validated_listed_and_deleted() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let openai = client
        .call::<protocol::provider::Create>(&CreateParams {
            name: "openai".into(),
            kind: ProviderKind::Openai,
            base_url: None,
            default_model: None,
            organization: None,
            secret: None,
            honors_idempotency_key: false,
        })
        .await
        .unwrap();
    assert_eq!(openai.base_url, "https://api.openai.com/v1");
    assert_eq!(
        openai.secret, "openai",
        "the key's secret is named after the provider"
    );
    let code = |err: ClientError| match err {
        ClientError::Rpc {
            data: Some(data), ..
        } => data.code,
        other => panic!("{other:?}"),
    };
    let bad = |name: &str, kind, base_url: Option<&str>| CreateParams {
        name: name.into(),
        kind,
        base_url: base_url.map(Into::into),
        default_model: None,
        organization: None,
        secret: None,
        honors_idempotency_key: false,
    };
    let cases = [
        (bad("openai", ProviderKind::Openai, None), "name_taken"),
        (
            bad("Bad Name", ProviderKind::Openai, None),
            "invalid_provider_name",
        ),
        (
            bad("compat", ProviderKind::OpenaiCompatible, None),
            "invalid_base_url",
        ),
        (
            bad("ftp", ProviderKind::OpenaiCompatible, Some("ftp://host/v1")),
            "invalid_base_url",
        ),
        (
            bad(
                "creds",
                ProviderKind::OpenaiCompatible,
                Some("https://user:pw@host/v1"),
            ),
            "invalid_base_url",
        ),
    ];
    for (params, expected) in cases {
        let err = client
            .call::<protocol::provider::Create>(&params)
            .await
            .unwrap_err();
        assert_eq!(code(err), expected, "{}", params.name);
    }
    let list = client
        .call::<protocol::provider::List>(&protocol::NoParams {})
        .await
        .unwrap();
    assert_eq!(list.providers.len(), 1);
    client
        .call::<protocol::provider::Delete>(&protocol::provider::DeleteParams {
            name: "openai".into(),
            confirm: true,
        })
        .await
        .unwrap();
    let missing = client
        .call::<protocol::provider::Get>(&ProviderRef {
            name: "openai".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(missing), "not_found");
}

#[test]
fn provider_check_from_the_command_line_exits_1_when_not_usable() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let fake = runtime.block_on(start_fake());
    let temp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with_env(temp.path(), &[], &[("KROMA_SECRET_STUB", KEY)]);
    let socket = &daemon.socket;
    let added = kroma_tests::kromactl(
        socket,
        &[
            "provider",
            "add",
            "stub",
            "--kind",
            "openai-compatible",
            "--base-url",
            &fake.base_url(),
        ],
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let ok = kroma_tests::kromactl(socket, &["provider", "check", "stub"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("the key works: 2 models visible"));
    assert!(
        kroma_tests::kromactl(
            socket,
            &["provider", "update", "stub", "--secret", "missing"]
        )
        .status
        .success()
    );
    let failing = kroma_tests::kromactl(socket, &["provider", "check", "stub"]);
    assert_eq!(failing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failing.stdout).contains("kromactl secret set missing"));
    drop(fake);
}
