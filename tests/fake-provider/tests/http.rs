//! The fake provider through a real HTTP client: image answers, request checks, keys, every fault
//! with its billing, idempotent replays and the `/_fake/*` control endpoints.

use std::time::{Duration, Instant};

use base64::Engine as _;
use kroma_fake_provider::{FakeConfig, FakeProvider, Fault, Stats};
use serde_json::{Value, json};

const KEY: &str = "sk-fake";

async fn start(render_size: Option<(u32, u32)>) -> FakeProvider {
    FakeProvider::start(FakeConfig {
        render_size,
        ..FakeConfig::default()
    })
    .await
    .unwrap()
}

fn generation(size: &str) -> Value {
    json!({"model": "gpt-image-2", "prompt": "a lighthouse at night", "size": size, "quality": "low"})
}

/// Posts a generation with the right key and an optional idempotency key; status and raw body.
async fn generate(
    provider: &FakeProvider,
    body: &Value,
    idempotency_key: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/images/generations", provider.base_url()))
        .bearer_auth(KEY)
        .json(body);
    if let Some(key) = idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn json_of(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|err| panic!("{:?} is not JSON: {err}", String::from_utf8_lossy(body)))
}

fn decode_png(b64: &Value) -> image::DynamicImage {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.as_str().unwrap())
        .unwrap();
    assert_eq!(
        image::guess_format(&bytes).unwrap(),
        image::ImageFormat::Png
    );
    image::load_from_memory(&bytes).unwrap()
}

fn png_bytes(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = Vec::new();
    image::RgbImage::from_pixel(width, height, image::Rgb([10, 200, 30]))
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .unwrap();
    bytes
}

async fn edit(provider: &FakeProvider, images: Vec<Vec<u8>>) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new()
        .text("model", "gpt-image-2")
        .text("prompt", "make it rain")
        .text("size", "1024x1536")
        .text("quality", "medium")
        .text("output_format", "png")
        .text("input_fidelity", "high");
    for (image_idx, bytes) in images.into_iter().enumerate() {
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(format!("ref{image_idx}.png"))
            .mime_str("image/png")
            .unwrap();
        form = form.part("image[]", part);
    }
    let response = reqwest::Client::new()
        .post(format!("{}/images/edits", provider.base_url()))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, json_of(&response.bytes().await.unwrap()))
}

#[tokio::test]
async fn generations_answer_a_png_of_the_requested_size_with_usage() {
    let provider = start(None).await;
    let (status, _, body) = generate(&provider, &generation("96x64"), None).await;
    assert_eq!(status, 200);
    let answer = json_of(&body);
    let picture = decode_png(&answer["data"][0]["b64_json"]);
    assert_eq!((picture.width(), picture.height()), (96, 64));
    assert_eq!(answer["size"], "96x64");
    assert_eq!(answer["quality"], "low");
    assert_eq!(answer["output_format"], "png");
    assert!(answer["created"].as_u64().unwrap() > 1_700_000_000);
    // 272 output tokens per 1024x1024 at low quality, scaled by 96*64 pixels and rounded up.
    assert_eq!(
        answer["usage"],
        json!({
            "input_tokens": 4,
            "input_tokens_details": {"text_tokens": 4, "image_tokens": 0},
            "output_tokens": 2,
            "total_tokens": 6,
        })
    );

    // The same request draws the same pixels; another prompt other ones.
    let (_, _, again) = generate(&provider, &generation("96x64"), None).await;
    assert_eq!(json_of(&again)["data"], answer["data"]);
    let mut other = generation("96x64");
    other["prompt"] = "a lighthouse at dawn".into();
    let (_, _, other) = generate(&provider, &other, None).await;
    assert_ne!(json_of(&other)["data"], answer["data"]);

    let stats = provider.stats();
    assert_eq!((stats.requests, stats.billed, stats.replays), (3, 3, 0));
    assert_eq!(stats.billed_by_key["-"], 3);
    let call = &stats.calls[0];
    assert_eq!(
        (
            call.endpoint.as_str(),
            call.model.as_str(),
            call.size.as_str()
        ),
        ("generations", "gpt-image-2", "96x64")
    );
    assert_eq!((call.images, call.billed, call.status), (0, true, 200));
}

#[tokio::test]
async fn render_size_shrinks_the_png_but_not_the_bill() {
    let provider = start(Some((32, 16))).await;
    let mut body = generation("auto");
    body["n"] = 2.into();
    body["quality"] = "auto".into();
    let (status, _, body) = generate(&provider, &body, None).await;
    assert_eq!(status, 200);
    let answer = json_of(&body);
    let data = answer["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for output in data {
        let picture = decode_png(&output["b64_json"]);
        assert_eq!((picture.width(), picture.height()), (32, 16));
    }
    assert_ne!(data[0], data[1], "two outputs of one request differ");
    assert_eq!(
        (answer["size"].as_str(), answer["quality"].as_str()),
        (Some("1024x1024"), Some("high"))
    );
    assert_eq!(answer["usage"]["output_tokens"], 2 * 4160);
}

#[tokio::test]
async fn edits_take_image_parts_and_refuse_parts_that_are_no_image() {
    let provider = start(Some((24, 24))).await;
    let (status, answer) = edit(&provider, vec![png_bytes(8, 8), png_bytes(4, 4)]).await;
    assert_eq!(status, 200, "{answer}");
    let picture = decode_png(&answer["data"][0]["b64_json"]);
    assert_eq!((picture.width(), picture.height()), (24, 24));
    assert_eq!(
        answer["usage"]["input_tokens_details"]["image_tokens"],
        2000
    );
    assert_eq!(answer["usage"]["input_tokens_details"]["text_tokens"], 3);
    assert_eq!(answer["usage"]["output_tokens"], 1584, "medium, 1024x1536");

    let (status, refused) = edit(&provider, vec![b"GIF89a but not really".to_vec()]).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["type"], "invalid_request_error");
    assert_eq!(refused["error"]["param"], "image");

    let (status, refused) = edit(&provider, Vec::new()).await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], "missing_required_parameter");

    let stats = provider.stats();
    assert_eq!((stats.requests, stats.billed), (3, 1));
    let outcomes: Vec<(usize, bool, u16)> = stats
        .calls
        .iter()
        .map(|call| (call.images, call.billed, call.status))
        .collect();
    assert_eq!(outcomes, [(2, true, 200), (1, false, 400), (0, false, 400)]);
    assert!(stats.calls.iter().all(|call| call.endpoint == "edits"));
}

#[tokio::test]
async fn requests_are_checked_like_the_real_api() {
    let provider = start(Some((16, 16))).await;
    let with = |field: &str, value: Value| {
        let mut body = generation("1024x1024");
        body[field] = value;
        body
    };
    let mut without_prompt = generation("1024x1024");
    without_prompt.as_object_mut().unwrap().remove("prompt");
    let cases = [
        (with("model", "dall-e-2".into()), 404, "model_not_found"),
        (with("prompt", "  ".into()), 400, "empty_string"),
        (without_prompt, 400, "missing_required_parameter"),
        (with("size", "15x1024".into()), 400, "invalid_value"),
        (with("size", "1024x4097".into()), 400, "invalid_value"),
        (with("size", "big".into()), 400, "invalid_value"),
        (with("quality", "ultra".into()), 400, "invalid_value"),
        (with("n", 11.into()), 400, "invalid_value"),
        (with("output_format", "webp".into()), 400, "invalid_value"),
    ];
    for (body, status, code) in cases {
        let (got, _, answer) = generate(&provider, &body, None).await;
        let answer = json_of(&answer);
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}"
        );
    }
    let (status, _, answer) =
        generate(&provider, &with("response_format", "b64_json".into()), None).await;
    assert_eq!(status, 400);
    assert!(
        json_of(&answer)["error"]["message"]
            .as_str()
            .unwrap()
            .contains("response_format")
    );
    let (status, _, answer) = generate(&provider, &with("size", "auto".into()), None).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let stats = provider.stats();
    assert_eq!(
        (stats.requests, stats.billed, stats.calls.len()),
        (11, 1, 11)
    );

    let broken = reqwest::Client::new()
        .post(format!("{}/images/generations", provider.base_url()))
        .bearer_auth(KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status().as_u16(), 400);
    let not_multipart = reqwest::Client::new()
        .post(format!("{}/images/edits", provider.base_url()))
        .bearer_auth(KEY)
        .json(&generation("auto"))
        .send()
        .await
        .unwrap();
    assert_eq!(not_multipart.status().as_u16(), 400);
    let unknown = reqwest::get(format!("{}/nothing", provider.base_url()))
        .await
        .unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["message"], "Invalid URL (GET /v1/nothing)");
}

#[tokio::test]
async fn a_wrong_or_missing_key_gets_the_openai_401_and_models_are_listed() {
    let provider = start(None).await;
    let http = reqwest::Client::new();
    let expected = json!({"error": {
        "message": "Incorrect API key provided.",
        "type": "invalid_request_error",
        "param": null,
        "code": "invalid_api_key"
    }});
    for key in [Some("sk-wrong"), None] {
        for request in [
            http.get(format!("{}/models", provider.base_url())),
            http.post(format!("{}/images/generations", provider.base_url()))
                .json(&generation("auto")),
        ] {
            let request = match key {
                Some(key) => request.bearer_auth(key),
                None => request,
            };
            let response = request.send().await.unwrap();
            assert_eq!(response.status().as_u16(), 401);
            assert_eq!(response.json::<Value>().await.unwrap(), expected);
        }
    }
    let models: Value = http
        .get(format!("{}/models", provider.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    let data = models["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[0]["id"], "gpt-image-2");
    assert_eq!(data[0]["object"], "model");
    assert_eq!(data[0]["owned_by"], "system");
    assert!(data[0]["created"].is_u64());
    assert!(data[0].get("shutdown_date").is_none());
    assert_eq!(data[1]["id"], "gpt-image-1-mini");
    assert_eq!(data[1]["shutdown_date"], "2026-12-01");

    let stats = provider.stats();
    assert_eq!(
        (stats.requests, stats.models_requests, stats.billed),
        (2, 3, 0)
    );
    assert!(stats.calls.is_empty(), "refused keys leave no call record");
}

/// Sends one generation under `fault` and checks its status, its body and whether it was billed.
async fn check_fault(fault: Fault, status: u16, billed: bool, body_check: fn(&[u8])) {
    let provider = start(Some((16, 16))).await;
    provider.push_fault(fault.clone());
    let (got, headers, body) = generate(&provider, &generation("1024x1024"), None).await;
    assert_eq!(got, status, "{fault:?}: {}", String::from_utf8_lossy(&body));
    if let Fault::RateLimit { retry_after_secs } = fault {
        assert_eq!(
            headers["retry-after"],
            retry_after_secs.to_string().as_str()
        );
    }
    body_check(&body);
    let stats = provider.stats();
    assert_eq!(stats.billed, u64::from(billed), "{fault:?}");
    assert_eq!(stats.requests, 1);
    assert_eq!(
        (stats.calls[0].billed, stats.calls[0].status),
        (billed, status)
    );
    // The fault was used up: the next request is answered normally.
    let (got, _, _) = generate(&provider, &generation("1024x1024"), None).await;
    assert_eq!(got, 200, "{fault:?} applies to one request only");
}

#[tokio::test]
async fn every_fault_answers_its_status_and_body_and_bills_as_documented() {
    check_fault(Fault::Status { status: 401 }, 401, false, |body| {
        assert_eq!(json_of(body)["error"]["code"], "invalid_api_key");
    })
    .await;
    check_fault(Fault::Status { status: 400 }, 400, false, |body| {
        assert_eq!(json_of(body)["error"]["type"], "invalid_request_error");
    })
    .await;
    check_fault(Fault::Status { status: 503 }, 503, false, |body| {
        assert_eq!(json_of(body)["error"]["type"], "server_error");
    })
    .await;
    check_fault(
        Fault::RateLimit {
            retry_after_secs: 7,
        },
        429,
        false,
        |body| {
            let error = &json_of(body)["error"];
            assert_eq!(error["code"], "rate_limit_exceeded");
            assert!(error["message"].as_str().unwrap().contains("7s"));
        },
    )
    .await;
    check_fault(Fault::MalformedJson, 200, true, |body| {
        assert!(serde_json::from_slice::<Value>(body).is_err());
    })
    .await;
    check_fault(Fault::NotAnImage, 200, true, |body| {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(json_of(body)["data"][0]["b64_json"].as_str().unwrap())
            .unwrap();
        assert!(image::load_from_memory(&bytes).is_err());
    })
    .await;
    check_fault(Fault::Empty, 200, true, |body| {
        assert_eq!(json_of(body)["data"], json!([]));
    })
    .await;
    let started = Instant::now();
    check_fault(Fault::Stall { secs: 1 }, 200, true, |body| {
        decode_png(&json_of(body)["data"][0]["b64_json"]);
    })
    .await;
    assert!(started.elapsed() >= Duration::from_secs(1));
}

#[tokio::test]
async fn an_idempotency_key_is_billed_once_and_replays_the_same_bytes() {
    let provider = start(Some((16, 16))).await;
    let body = generation("1024x1024");
    let (status, _, first) = generate(&provider, &body, Some("job-1")).await;
    assert_eq!(status, 200);
    let (status, _, again) = generate(&provider, &body, Some("job-1")).await;
    assert_eq!(status, 200);
    assert_eq!(
        first, again,
        "a replay sends the same bytes, `created` included"
    );
    let stats = provider.stats();
    assert_eq!((stats.requests, stats.billed, stats.replays), (2, 1, 1));
    assert_eq!(stats.billed_by_key["job-1"], 1);
    assert_eq!((stats.calls[1].billed, stats.calls[1].status), (false, 200));

    // Errors that are not billed do not store the key: the retry is answered and billed.
    provider.push_fault(Fault::RateLimit {
        retry_after_secs: 1,
    });
    provider.push_fault(Fault::Status { status: 500 });
    assert_eq!(generate(&provider, &body, Some("job-2")).await.0, 429);
    assert_eq!(generate(&provider, &body, Some("job-2")).await.0, 500);
    assert_eq!(generate(&provider, &body, Some("job-2")).await.0, 200);
    assert_eq!(provider.stats().billed_by_key["job-2"], 1);
}

#[tokio::test]
async fn a_stalled_request_is_billed_and_its_retry_gets_the_stored_answer() {
    let provider = start(Some((16, 16))).await;
    provider.push_fault(Fault::Stall { secs: 30 });
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let timed_out = impatient
        .post(format!("{}/images/generations", provider.base_url()))
        .bearer_auth(KEY)
        .header("Idempotency-Key", "job-3")
        .json(&generation("1024x1024"))
        .send()
        .await
        .unwrap_err();
    assert!(timed_out.is_timeout(), "{timed_out}");
    assert_eq!(provider.stats().billed, 1, "the provider did the work");

    let (status, _, body) = generate(&provider, &generation("1024x1024"), Some("job-3")).await;
    assert_eq!(status, 200);
    decode_png(&json_of(&body)["data"][0]["b64_json"]);
    let stats = provider.stats();
    assert_eq!((stats.billed, stats.replays), (1, 1));
    assert_eq!(stats.billed_by_key["job-3"], 1);
}

#[tokio::test]
async fn faults_and_stats_are_driven_over_http() {
    let provider = start(Some((16, 16))).await;
    let http = reqwest::Client::new();
    let control = |path: &str| format!("http://{}/_fake/{path}", provider.addr());
    let queued: Value = http
        .post(control("faults"))
        .json(&json!([{"kind": "status", "status": 502}, {"kind": "empty"}]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(queued, json!({"queued": 2}));
    for refused in [
        json!([{"kind": "status", "status": 200}]),
        json!({"kind": "empty"}),
    ] {
        let response = http
            .post(control("faults"))
            .json(&refused)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{refused}");
    }

    assert_eq!(generate(&provider, &generation("auto"), None).await.0, 502);
    let (status, _, body) = generate(&provider, &generation("auto"), Some("k")).await;
    assert_eq!((status, json_of(&body)["data"].clone()), (200, json!([])));

    let stats: Stats = http
        .get(control("stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats, provider.stats());
    assert_eq!((stats.requests, stats.billed), (2, 1));
    assert_eq!(stats.billed_by_key["k"], 1);
    assert_eq!(stats.calls[0].status, 502);
}
