//! Image requests as the fake provider reads them: the JSON body of `/v1/images/generations`, the
//! multipart form of `/v1/images/edits`, and the checks the real API makes before it renders.
//! Every failure is an [`OpenAiError`], never a panic.

use axum::body::Bytes;
use axum::extract::Multipart;
use serde::Deserialize;

use crate::FakeConfig;

/// The most images `n` may ask for, and the most input images an edit may carry, as in the real API.
const MAX_N: u32 = 10;
const MAX_INPUT_IMAGES: usize = 16;
/// The smallest and largest side a `WIDTHxHEIGHT` size may name.
const MIN_SIDE: u32 = 16;
const MAX_SIDE: u32 = 4096;

/// Which of the two image endpoints a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Generations,
    Edits,
}

impl Endpoint {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Endpoint::Generations => "generations",
            Endpoint::Edits => "edits",
        }
    }
}

/// An error in the shape the OpenAI API answers with:
/// `{"error": {"message", "type", "param", "code"}}`.
#[derive(Clone, Debug)]
pub(crate) struct OpenAiError {
    pub status: u16,
    pub message: String,
    pub error_type: &'static str,
    pub param: Option<&'static str>,
    pub code: Option<&'static str>,
}

impl OpenAiError {
    /// A 400 `invalid_request_error`.
    pub(crate) fn invalid(
        message: String,
        param: Option<&'static str>,
        code: Option<&'static str>,
    ) -> OpenAiError {
        OpenAiError {
            status: 400,
            message,
            error_type: "invalid_request_error",
            param,
            code,
        }
    }

    /// The 401 the real API gives for a wrong or missing key.
    pub(crate) fn invalid_api_key() -> OpenAiError {
        OpenAiError {
            status: 401,
            message: "Incorrect API key provided.".to_owned(),
            error_type: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key"),
        }
    }

    pub(crate) fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        })
    }
}

/// An image request as it arrived, before any check; fields the client did not send are `None`.
#[derive(Clone, Debug, Default)]
pub(crate) struct RawImageRequest {
    pub model: Option<String>,
    pub prompt: Option<String>,
    pub size: Option<String>,
    pub quality: Option<String>,
    pub n: Option<u32>,
    pub output_format: Option<String>,
    pub input_fidelity: Option<String>,
    /// The bytes of every `image[]` (or `image`) part, in order.
    pub images: Vec<Bytes>,
}

/// A request that passed every check except the decoding of its input images.
#[derive(Clone, Debug)]
pub(crate) struct ImageJob {
    pub model: String,
    pub prompt: String,
    /// The size as asked for: `WIDTHxHEIGHT` or `auto`.
    pub size: String,
    pub quality: String,
    pub n: u32,
    /// The size billed and reported: the one asked for, `auto` being 1024x1024.
    pub billed_size: (u32, u32),
    /// The size of the PNG sent back: `render_size` when configured, else `billed_size`.
    pub render_size: (u32, u32),
    pub images: Vec<Bytes>,
}

/// The JSON body of `/v1/images/generations`. Unknown fields are refused, as the real API does.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GenerationBody {
    model: Option<String>,
    prompt: Option<String>,
    size: Option<String>,
    quality: Option<String>,
    n: Option<u32>,
    output_format: Option<String>,
    // Accepted and ignored, as the fake always renders an opaque PNG.
    #[serde(rename = "background")]
    _background: Option<serde_json::Value>,
    #[serde(rename = "moderation")]
    _moderation: Option<serde_json::Value>,
    #[serde(rename = "output_compression")]
    _output_compression: Option<serde_json::Value>,
    #[serde(rename = "user")]
    _user: Option<serde_json::Value>,
}

/// Reads the JSON body of a generation request.
pub(crate) fn parse_generation(body: &[u8]) -> Result<RawImageRequest, OpenAiError> {
    let body: GenerationBody = serde_json::from_slice(body).map_err(|err| {
        OpenAiError::invalid(
            format!("We could not parse the JSON body of your request: {err}"),
            None,
            None,
        )
    })?;
    Ok(RawImageRequest {
        model: body.model,
        prompt: body.prompt,
        size: body.size,
        quality: body.quality,
        n: body.n,
        output_format: body.output_format,
        input_fidelity: None,
        images: Vec::new(),
    })
}

/// Reads the multipart form of an edit request. Unknown parts are refused, as the real API does.
pub(crate) async fn parse_edit(mut form: Multipart) -> Result<RawImageRequest, OpenAiError> {
    let unreadable = |err: axum::extract::multipart::MultipartError| {
        OpenAiError::invalid(
            format!("We could not parse the multipart body of your request: {err}"),
            None,
            None,
        )
    };
    let mut raw = RawImageRequest::default();
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "image[]" | "image" => raw.images.push(field.bytes().await.map_err(unreadable)?),
            "model" => raw.model = Some(field.text().await.map_err(unreadable)?),
            "prompt" => raw.prompt = Some(field.text().await.map_err(unreadable)?),
            "size" => raw.size = Some(field.text().await.map_err(unreadable)?),
            "quality" => raw.quality = Some(field.text().await.map_err(unreadable)?),
            "output_format" => raw.output_format = Some(field.text().await.map_err(unreadable)?),
            "input_fidelity" => raw.input_fidelity = Some(field.text().await.map_err(unreadable)?),
            "n" => {
                let text = field.text().await.map_err(unreadable)?;
                let n = text.trim().parse::<u32>().map_err(|_| {
                    OpenAiError::invalid(
                        format!("Invalid 'n': expected an integer, got '{text}'."),
                        Some("n"),
                        Some("invalid_value"),
                    )
                })?;
                raw.n = Some(n);
            }
            "background" | "moderation" | "output_compression" | "user" => {
                field.text().await.map_err(unreadable)?;
            }
            other => {
                return Err(OpenAiError::invalid(
                    format!("Unknown parameter: '{other}'."),
                    None,
                    Some("unknown_parameter"),
                ));
            }
        }
    }
    Ok(raw)
}

/// Checks a request the way the real API does, except for decoding the input images (see
/// [`crate::render::render`]).
pub(crate) fn check(
    raw: &RawImageRequest,
    endpoint: Endpoint,
    config: &FakeConfig,
) -> Result<ImageJob, OpenAiError> {
    let model = required(&raw.model, "model")?;
    let prompt = required(&raw.prompt, "prompt")?;
    if prompt.trim().is_empty() {
        return Err(OpenAiError::invalid(
            "Invalid 'prompt': empty string. Expected a string with minimum length 1.".to_owned(),
            Some("prompt"),
            Some("empty_string"),
        ));
    }
    let size = raw.size.clone().unwrap_or_else(|| "auto".to_owned());
    let billed_size = parse_size(&size).ok_or_else(|| {
        OpenAiError::invalid(
            format!(
                "Invalid value: '{size}'. Supported values are 'auto' and 'WIDTHxHEIGHT' with both sides from {MIN_SIDE} to {MAX_SIDE}."
            ),
            Some("size"),
            Some("invalid_value"),
        )
    })?;
    let quality = raw.quality.clone().unwrap_or_else(|| "auto".to_owned());
    if !["low", "medium", "high", "auto"].contains(&quality.as_str()) {
        return Err(OpenAiError::invalid(
            format!(
                "Invalid value: '{quality}'. Supported values are: 'low', 'medium', 'high', and 'auto'."
            ),
            Some("quality"),
            Some("invalid_value"),
        ));
    }
    let n = raw.n.unwrap_or(1);
    if !(1..=MAX_N).contains(&n) {
        return Err(OpenAiError::invalid(
            format!("Invalid 'n': {n}. Expected a value from 1 to {MAX_N}."),
            Some("n"),
            Some("invalid_value"),
        ));
    }
    match raw.output_format.as_deref() {
        None | Some("png") => {}
        Some("jpeg" | "webp") => {
            return Err(OpenAiError::invalid(
                "The fake provider renders only png; send output_format 'png' or leave it out"
                    .to_owned(),
                Some("output_format"),
                Some("invalid_value"),
            ));
        }
        Some(other) => {
            return Err(OpenAiError::invalid(
                format!(
                    "Invalid value: '{other}'. Supported values are: 'png', 'jpeg', and 'webp'."
                ),
                Some("output_format"),
                Some("invalid_value"),
            ));
        }
    }
    if let Some(fidelity) = raw.input_fidelity.as_deref()
        && !["high", "low"].contains(&fidelity)
    {
        return Err(OpenAiError::invalid(
            format!("Invalid value: '{fidelity}'. Supported values are: 'high' and 'low'."),
            Some("input_fidelity"),
            Some("invalid_value"),
        ));
    }
    if endpoint == Endpoint::Edits && raw.images.is_empty() {
        return Err(OpenAiError::invalid(
            "Missing required parameter: 'image'.".to_owned(),
            Some("image"),
            Some("missing_required_parameter"),
        ));
    }
    if raw.images.len() > MAX_INPUT_IMAGES {
        return Err(OpenAiError::invalid(
            format!(
                "Too many images: {}. At most {MAX_INPUT_IMAGES} are allowed.",
                raw.images.len()
            ),
            Some("image"),
            Some("invalid_value"),
        ));
    }
    // The model is checked last among the parameters: a bad request is a 400 whatever the model.
    if !config.models.iter().any(|known| known.id == model) {
        return Err(OpenAiError {
            status: 404,
            message: format!("The model `{model}` does not exist or you do not have access to it."),
            error_type: "invalid_request_error",
            param: None,
            code: Some("model_not_found"),
        });
    }
    Ok(ImageJob {
        model: model.to_owned(),
        prompt: prompt.to_owned(),
        size,
        quality,
        n,
        billed_size,
        render_size: config.render_size.unwrap_or(billed_size),
        images: raw.images.clone(),
    })
}

fn required<'a>(value: &'a Option<String>, name: &'static str) -> Result<&'a str, OpenAiError> {
    value.as_deref().ok_or_else(|| {
        OpenAiError::invalid(
            format!("Missing required parameter: '{name}'."),
            Some(name),
            Some("missing_required_parameter"),
        )
    })
}

/// `auto` is 1024x1024; `WIDTHxHEIGHT` needs both sides in 16..=4096.
fn parse_size(size: &str) -> Option<(u32, u32)> {
    if size == "auto" {
        return Some((1024, 1024));
    }
    let (width, height) = size.split_once('x')?;
    let side = |text: &str| {
        let digits_only = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
        let value = text.parse::<u32>().ok().filter(|_| digits_only)?;
        (MIN_SIDE..=MAX_SIDE).contains(&value).then_some(value)
    };
    Some((side(width)?, side(height)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_real_api() {
        let cases = [
            ("auto", Some((1024, 1024))),
            ("1024x1536", Some((1024, 1536))),
            ("16x4096", Some((16, 4096))),
            ("15x100", None),
            ("100x4097", None),
            ("+100x100", None),
            ("100X100", None),
            ("100x", None),
            ("", None),
            ("99999999999x1", None),
        ];
        for (size, expected) in cases {
            assert_eq!(parse_size(size), expected, "{size:?}");
        }
    }
}
