//! Hostile input, one test per class of it: ids kept exactly, frames and batches that cannot
//! exhaust memory or hold connection slots, image files that declare more than they hold or are
//! damaged, folders that loop, a stop that stops long work, audit entries that are never lost,
//! keys a provider echoes back, and sockets in folders others can write to.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kroma_tests::Daemon;
use kroma_tests::fake_provider::{FakeConfig, FakeProvider, Fault};
use serde_json::{Value, json};

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// A daemon with `config` as its kromad.toml, in a folder of its own.
fn daemon_with(config: &str) -> (tempfile::TempDir, Daemon) {
    let temp = tempfile::tempdir().expect("temp");
    let file = temp.path().join("kromad.toml");
    std::fs::write(&file, config).expect("config");
    let daemon = Daemon::start_in(temp.path(), &["--config", &path_arg(&file)]);
    (temp, daemon)
}

/// The names of the files in `dir`, sorted.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("a folder")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn call(raw: &mut kroma_tests::RawConnection, method: &str, params: Value) -> Value {
    raw.call_json(
        &json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string(),
    )
}

#[test]
fn ids_come_back_exactly_as_sent() {
    let daemon = Daemon::start();
    let mut raw = daemon.raw();
    for id in [
        "123456789012345678901234567890",
        "1e2",
        "1e999",
        "-0.5",
        "18446744073709551615",
        "-9223372036854775809",
        "1.0",
    ] {
        let carries_id = |answer: &str| {
            answer.contains(&format!(r#""id":{id},"#))
                || answer.contains(&format!(r#""id":{id}}}"#))
        };
        let answer = raw.call(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"daemon.version"}}"#
        ));
        assert!(
            carries_id(&answer) && answer.contains("\"result\""),
            "id {id}: {answer}"
        );
        // Errors carry it too.
        let answer = raw.call(&format!(
            r#"{{"jsonrpc":"2.0","id":{id},"method":"project.get","params":{{}}}}"#
        ));
        assert!(
            carries_id(&answer) && answer.contains("\"error\""),
            "id {id}: {answer}"
        );
    }
}

#[test]
fn a_batch_cannot_open_unbounded_subscriptions_or_build_an_unbounded_reply() {
    let (_temp, daemon) =
        daemon_with("[limits]\nmax_subscriptions_per_connection = 4\nmax_reply_bytes = 262144\n");
    let mut raw = daemon.raw();
    let batch: Vec<Value> = (0..10)
        .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "events.subscribe", "params": {}}))
        .collect();
    let answers: Vec<Value> =
        serde_json::from_str(&raw.call(&Value::Array(batch).to_string())).expect("batch answer");
    let opened = answers.iter().filter(|a| a["result"].is_number()).count();
    let refused: Vec<&Value> = answers
        .iter()
        .filter(|a| a["error"]["data"]["code"] == "too_many_subscriptions")
        .collect();
    assert_eq!((opened, refused.len()), (4, 6), "{answers:?}");
    assert!(
        refused[0]["error"]["data"]["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("max_subscriptions_per_connection")
    );

    // Each rpc.discover answer is a few hundred KB: a batch of 1000 would build hundreds of MB.
    // The answers stop at the limit: the window of 8 running when it was passed finishes, and
    // the rest are not run and say so in a short refusal each.
    let mut raw = daemon.raw();
    let one = raw
        .call(r#"{"jsonrpc":"2.0","id":0,"method":"rpc.discover"}"#)
        .len();
    let batch: Vec<Value> = (0..1000)
        .map(|id| json!({"jsonrpc": "2.0", "id": id, "method": "rpc.discover"}))
        .collect();
    let line = raw.call(&Value::Array(batch).to_string());
    assert!(
        line.len() < 8 * one + 1000 * 1024,
        "{} bytes ({one} per document)",
        line.len()
    );
    let answers: Vec<Value> = serde_json::from_str(&line).expect("batch answer");
    assert_eq!(answers.len(), 1000, "one answer per request");
    let documents = answers.iter().filter(|a| a["result"].is_object()).count();
    assert!((1..1000).contains(&documents), "{documents}");
    let too_large = answers
        .iter()
        .filter(|a| a["error"]["data"]["code"] == "reply_too_large")
        .count();
    assert_eq!(documents + too_large, 1000);

    // An unsubscribe names only the caller's own subscriptions.
    let mut owner = daemon.raw();
    let subscribed = call(&mut owner, "events.subscribe", json!({}));
    let id = subscribed["result"].clone();
    let mut other = daemon.raw();
    let answer = other.call_json(
        &json!({"jsonrpc": "2.0", "id": 2, "method": "events.unsubscribe", "params": [id]})
            .to_string(),
    );
    assert_eq!(answer["result"], false, "{answer}");
    let answer = owner.call_json(
        &json!({"jsonrpc": "2.0", "id": 3, "method": "events.unsubscribe", "params": [id]})
            .to_string(),
    );
    assert_eq!(answer["result"], true, "{answer}");
}

#[test]
fn half_sent_frames_time_out_and_free_their_slots() {
    let (_temp, daemon) = daemon_with("[limits]\nframe_timeout_secs = 1\n");
    let mut stalled: Vec<kroma_tests::RawConnection> = (0..3)
        .map(|_| {
            let mut raw = daemon.raw();
            raw.send(br#"{"jsonrpc":"2.0","id":1,"met"#);
            raw
        })
        .collect();
    for raw in &mut stalled {
        let answer: Value = serde_json::from_str(&raw.read_line()).expect("an error line");
        assert_eq!(answer["error"]["data"]["code"], "invalid_request");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("not finished"),
            "{answer}"
        );
        assert_eq!(raw.read_line(), "", "the connection is closed");
    }
    // Their slots are free again: only the asking connection is open.
    let mut status = daemon.raw();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = call(&mut status, "daemon.status", json!({}));
        if answer["result"]["counts"]["connections"] == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slots stayed taken: {answer}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A PNG that is only a header declaring `width`×`height` RGBA and a token of data.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    for (kind, data) in [
        (&b"IHDR"[..], ihdr),
        (
            b"IDAT",
            vec![0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
        ),
        (b"IEND", Vec::new()),
    ] {
        bytes.extend_from_slice(&(data.len() as u32).to_be_bytes());
        bytes.extend_from_slice(kind);
        bytes.extend_from_slice(&data);
        let mut crc = kind.to_vec();
        crc.extend_from_slice(&data);
        bytes.extend_from_slice(&crc32fast::hash(&crc).to_be_bytes());
    }
    bytes
}

fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 3) as u8, ((x + y) * 5) as u8])
    });
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .expect("jpeg");
    bytes
}

/// The error codes of a step's per-file results, by file name.
fn codes(report: &Value) -> Vec<(String, String)> {
    let mut codes: Vec<(String, String)> = report["result"]["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{report}"))
        .iter()
        .map(|result| {
            let name = Path::new(result["input"].as_str().unwrap_or_default())
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_default();
            let code = result["error"]["code"].as_str().unwrap_or("ok").to_owned();
            (name, code)
        })
        .collect();
    codes.sort();
    codes
}

#[test]
fn files_that_declare_more_than_they_hold_are_refused_before_decoding() {
    let (temp, daemon) = daemon_with("[limits]\nstep_memory_mb = 64\n");
    let folder = temp.path().join("in");
    std::fs::create_dir(&folder).expect("folder");
    // Header bombs: a few hundred bytes that declare 16000×16000 pixels.
    std::fs::write(folder.join("bomb.png"), png_claiming(16_000, 16_000)).expect("bomb");
    // A real image within the pixel budget, but too large for a 64 MiB step budget.
    image::RgbImage::from_pixel(3000, 3000, image::Rgb([10, 20, 30]))
        .save(folder.join("big.png"))
        .expect("big");
    // A 3 GiB sparse file: never read.
    let sparse = std::fs::File::create(folder.join("sparse.png")).expect("sparse");
    sparse.set_len(3 << 30).expect("sparse size");
    // Damaged JPEGs: the first 600 bytes, and half of one.
    let whole = jpeg(400, 300);
    std::fs::write(folder.join("cut600.jpg"), &whole[..600]).expect("cut");
    std::fs::write(folder.join("half.jpg"), &whole[..whole.len() / 2]).expect("half");
    std::fs::write(folder.join("whole.jpg"), &whole).expect("whole");

    let mut raw = daemon.raw();
    let out = temp.path().join("out");
    let report = call(
        &mut raw,
        "postprocess.color",
        json!({"paths": [path_arg(&folder)], "profile": "neutral", "output_dir": path_arg(&out)}),
    );
    assert_eq!(
        codes(&report),
        [
            ("big.png".to_owned(), "image_too_large".to_owned()),
            ("bomb.png".to_owned(), "image_too_large".to_owned()),
            ("cut600.jpg".to_owned(), "image_damaged".to_owned()),
            ("half.jpg".to_owned(), "image_damaged".to_owned()),
            ("sparse.png".to_owned(), "file_too_large".to_owned()),
            ("whole.jpg".to_owned(), "ok".to_owned()),
        ]
    );
    let results = report["result"]["results"].as_array().expect("results");
    let error_of = |name: &str| {
        results
            .iter()
            .find(|r| r["input"].as_str().unwrap_or_default().ends_with(name))
            .map(|r| r["error"].clone())
            .expect("listed")
    };
    let bomb = error_of("bomb.png");
    assert!(
        bomb["message"]
            .as_str()
            .unwrap_or_default()
            .contains("bomb.png")
    );
    assert!(
        bomb["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("limits.max_image_pixels"),
        "{bomb}"
    );
    let big = error_of("big.png");
    assert!(
        big["hint"]
            .as_str()
            .unwrap_or_default()
            .contains("limits.step_memory_mb"),
        "{big}"
    );
    // Nothing half-written.
    assert_eq!(names_in(&out), ["whole.png"]);

    // Import refuses the damaged JPEGs and the bomb too.
    let mut raw = daemon.raw();
    call(&mut raw, "project.create", json!({"name": "Hostile"}));
    let imported = call(
        &mut raw,
        "asset.import",
        json!({"project": "hostile", "kind": "input", "paths": [
            path_arg(&folder.join("cut600.jpg")),
            path_arg(&folder.join("half.jpg")),
            path_arg(&folder.join("bomb.png")),
            path_arg(&folder.join("whole.jpg")),
        ]}),
    );
    let outcomes: Vec<String> = imported["result"]["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{imported}"))
        .iter()
        .map(|r| r["error"]["code"].as_str().unwrap_or("ok").to_owned())
        .collect();
    assert_eq!(
        outcomes,
        ["image_damaged", "image_damaged", "image_too_large", "ok"]
    );
}

#[test]
fn link_loops_are_walked_once_and_outputs_stay_apart() {
    let daemon = Daemon::start();
    let temp = tempfile::tempdir().expect("temp");
    let folder = temp.path().join("art");
    std::fs::create_dir(&folder).expect("folder");
    image::RgbImage::from_pixel(8, 8, image::Rgb([1, 2, 3]))
        .save(folder.join("a.png"))
        .expect("png");
    std::fs::write(folder.join("a.jpg"), jpeg(8, 8)).expect("jpg");
    // Each link leads back to the folder: without tracking, the walk grows as 6^16.
    for name in ["l1", "l2", "l3", "l4", "l5", "l6"] {
        std::os::unix::fs::symlink(".", folder.join(name)).expect("link");
    }
    let mut raw = daemon.raw();
    let out = temp.path().join("out");
    let report = call(
        &mut raw,
        "postprocess.color",
        json!({"paths": [path_arg(&folder)], "profile": "neutral", "output_dir": path_arg(&out)}),
    );
    assert_eq!(report["result"]["done"], 2, "{report}");
    assert_eq!(
        names_in(&out),
        ["a_jpg.png", "a_png.png"],
        "a.png and a.jpg keep apart"
    );

    // Imports walk the same way.
    call(&mut raw, "project.create", json!({"name": "Loops"}));
    let imported = call(
        &mut raw,
        "asset.import",
        json!({"project": "loops", "kind": "input", "paths": [path_arg(&folder)]}),
    );
    assert_eq!(imported["result"]["imported"], 2, "{imported}");

    // Outputs never go into kromad's data dir.
    let report = call(
        &mut raw,
        "postprocess.color",
        json!({"paths": [path_arg(&folder.join("a.png"))], "profile": "neutral",
               "output_dir": path_arg(&daemon.data_dir.join("logs"))}),
    );
    assert_eq!(
        report["error"]["data"]["code"], "output_in_data_dir",
        "{report}"
    );
}

#[test]
fn stopping_the_daemon_stops_a_long_upscale_and_leaves_nothing_half_written() {
    let (temp, daemon) = daemon_with("[runs]\nlocal_jobs = 1\n");
    let source = temp.path().join("large.png");
    image::RgbImage::from_fn(1024, 1024, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x ^ y) % 256) as u8])
    })
    .save(&source)
    .expect("source");
    let out = temp.path().join("out");
    let request = |id: u32| {
        json!({"jsonrpc": "2.0", "id": id, "method": "postprocess.upscale",
               "params": {"paths": [path_arg(&source)], "output_dir": path_arg(&out), "tile": 32}})
        .to_string()
    };
    let parts = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| entries.map(|e| e.expect("entry").path()).collect())
            .unwrap_or_default()
    };

    // A caller that leaves stops its upscale between tiles: its temporary file goes away and
    // no output appears.
    let mut leaving = daemon.raw();
    leaving.send(format!("{}\n", request(1)).as_bytes());
    let deadline = Instant::now() + Duration::from_secs(60);
    while parts(&out).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the upscale never started writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(leaving);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !parts(&out).is_empty() {
        assert!(
            Instant::now() < deadline,
            "work went on after the caller left: {:?}",
            parts(&out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // `daemon.shutdown` stops one in progress: the caller hears `stopped`, nothing is left
    // behind, and kromad exits (releasing its data dir for the next one).
    let mut staying = daemon.raw();
    staying.send(format!("{}\n", request(2)).as_bytes());
    let deadline = Instant::now() + Duration::from_secs(60);
    while parts(&out).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the upscale never started writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut control = daemon.raw();
    let ack = control.call_json(r#"{"jsonrpc":"2.0","id":3,"method":"daemon.shutdown"}"#);
    assert!(ack["result"].is_object(), "{ack}");
    let answer: Value = serde_json::from_str(&staying.read_line()).expect("an answer");
    let results = answer["result"]["results"]
        .as_array()
        .unwrap_or_else(|| panic!("{answer}"));
    assert_eq!(results[0]["error"]["code"], "stopped", "{answer}");
    let mut daemon = daemon;
    let status = kroma_tests::wait_with_timeout(&mut daemon.child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert!(parts(&out).is_empty(), "{:?}", parts(&out));
    let again = Daemon::start_in(temp.path(), &[]);
    drop(again);
}

#[test]
fn changes_are_audited_in_their_own_transaction() {
    let temp = tempfile::tempdir().expect("temp");
    let config = temp.path().join("kromad.toml");
    let start = |limits: &str| {
        std::fs::write(&config, limits).expect("config");
        Daemon::start_in(temp.path(), &["--config", &path_arg(&config)])
    };
    let folder = temp.path().join("many");
    std::fs::create_dir(&folder).expect("folder");
    let mut seed = 1u32;
    for index in 0..60u32 {
        let page = image::RgbImage::from_fn(600, 600, |_, _| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let [r, g, b, _] = seed.to_le_bytes();
            image::Rgb([r, g, b])
        });
        page.save(folder.join(format!("{index:03}.png")))
            .expect("png");
    }
    let daemon = start("");
    let created = call(
        &mut daemon.raw(),
        "project.create",
        json!({"name": "Audited"}),
    );
    assert!(created["result"].is_object(), "{created}");
    assert!(daemon.terminate().success());

    // 60 pages take far longer than a 100 ms request timeout: the import is cut off after some
    // files were committed.
    let daemon = start("[limits]\nrequest_timeout_secs = 0.1\n");
    let cut = call(
        &mut daemon.raw(),
        "asset.import",
        json!({"project": "audited", "kind": "input", "paths": [path_arg(&folder)]}),
    );
    assert_eq!(cut["error"]["data"]["code"], "request_timeout", "{cut}");
    assert!(daemon.terminate().success());

    let daemon = start("");
    let mut raw = daemon.raw();
    let listed = call(&mut raw, "asset.list", json!({"project": "audited"}));
    let imported = listed["result"]["assets"].as_array().map_or(0, Vec::len);
    assert!(imported > 0, "{listed}");
    let audit = call(&mut raw, "audit.list", json!({}));
    let methods: Vec<&str> = audit["result"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|entry| entry["method"].as_str())
        .collect();
    assert_eq!(methods, ["project.create", "asset.import"], "{audit}");
}

#[tokio::test]
async fn a_provider_that_echoes_the_key_never_gets_it_stored_logged_or_shown() {
    // Not shaped like an API key: only knowing the value can scrub it.
    const ECHOED: &str = "tok-echo-7f3a9c1e5b";
    let fake = FakeProvider::start(FakeConfig {
        key: ECHOED.into(),
        render_size: Some((32, 48)),
        ..FakeConfig::default()
    })
    .await
    .expect("fake provider");
    let temp = tempfile::tempdir().expect("temp");
    let settings = temp.path().join("settings.toml");
    std::fs::write(
        &settings,
        "[generation]\nretry_base_ms = 10\ntimeout_secs = 5\nmax_attempts = 2\n",
    )
    .expect("settings");
    let daemon = Daemon::start_with_env(
        temp.path(),
        &[],
        &[
            ("KROMA_SECRET_FAKE", ECHOED),
            ("KROMA_SETTINGS", &path_arg(&settings)),
            ("RUST_LOG", "debug"),
        ],
    );
    let client = daemon.client().await;
    let scene = crate::runs::setup(&client, &fake, false).await;
    for status in [400, 500] {
        fake.push_fault(Fault::EchoAuthorization { status });
        fake.push_fault(Fault::EchoAuthorization { status });
        let detail =
            crate::runs::create(&client, crate::runs::params(vec![scene.clone()], 1)).await;
        crate::runs::start(&client, &detail).await.expect("start");
        let done = crate::runs::finished(&client, &detail.run.id).await;
        let error = done.jobs[0].candidates[0].error.clone().expect("a reason");
        assert!(error.message.contains("[redacted]"), "{}", error.message);
        assert!(!error.message.contains(ECHOED), "{}", error.message);
        let shown = kroma_tests::kromactl(&daemon.socket, &["run", "show", &detail.run.id]);
        let shown_json =
            kroma_tests::kromactl(&daemon.socket, &["--json", "run", "show", &detail.run.id]);
        for out in [&shown, &shown_json] {
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!text.contains(ECHOED), "{text}");
        }
    }
    let events = client
        .call::<kroma_protocol::events::List>(&kroma_protocol::events::ListParams {
            limit: Some(1000),
            ..Default::default()
        })
        .await
        .expect("events");
    assert!(
        !serde_json::to_string(&events)
            .expect("json")
            .contains(ECHOED)
    );
    drop(client);
    let daemon_dir = daemon.data_dir.clone();
    let _ = daemon.terminate();
    // The database (and its WAL), the logs, the run records, the project folders.
    let hits = crate::secrets::files_containing(&daemon_dir, ECHOED);
    assert!(hits.is_empty(), "{hits:?}");
}

#[test]
fn a_socket_folder_others_can_write_to_is_refused() {
    let temp = tempfile::tempdir().expect("temp");
    let shared = temp.path().join("shared");
    std::fs::create_dir(&shared).expect("folder");
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");
    let mut command =
        kroma_tests::kromad_command(&shared.join("kromad.sock"), &temp.path().join("data"));
    let out = command
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("kromad");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("others may write to it"), "{stderr}");
    assert!(!shared.join("kromad.sock").exists());
    // The sticky bit makes the same folder safe, as /tmp is.
    std::fs::set_permissions(
        &shared,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .expect("chmod");
    let socket = shared.join("kromad.sock");
    let mut child = kroma_tests::kromad_command(&socket, &temp.path().join("data"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kromad");
    let deadline = Instant::now() + Duration::from_secs(20);
    let answer = loop {
        if let Ok(mut raw) = kroma_tests::RawConnection::connect(&socket) {
            break raw.call(r#"{"jsonrpc":"2.0","id":1,"method":"daemon.version"}"#);
        }
        assert!(
            Instant::now() < deadline,
            "kromad did not serve in the sticky folder"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(answer.contains("\"result\""), "{answer}");
}
