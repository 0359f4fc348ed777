//! The model registry: the image models Kroma knows, what they cost, and when they shut down.
//!
//! Built-in entries carry OpenAI's published prices; the settings' `[pricing."<model>"]` tables
//! price models the registry does not know (any OpenAI-compatible endpoint); a provider's
//! `GET /models` can report shutdown dates, which override the built-in ones. Pure functions only.

use std::collections::BTreeMap;

use kroma_protocol as protocol;
use protocol::image_model::{ImagePrices, Lifecycle, ModelInfo, TokenPrices};

use crate::runs::settings::Settings;

/// A model the registry knows without asking anyone.
struct Known {
    id: &'static str,
    /// USD per 1024×1024 output image: low, medium, high.
    image: [f64; 3],
    /// USD per million tokens: text input, image input, image output.
    tokens: [f64; 3],
    shutdown_date: Option<&'static str>,
    replacement: Option<&'static str>,
}

/// OpenAI's image models as of 2026-11. `gpt-image-1` shut down on 2026-10-23; `gpt-image-1.5`,
/// `gpt-image-1-mini` and `chatgpt-image-latest` shut down on 2026-12-01.
const BUILTIN: &[Known] = &[
    Known {
        id: "gpt-image-2",
        image: [0.006, 0.053, 0.211],
        tokens: [5.0, 8.0, 30.0],
        shutdown_date: None,
        replacement: None,
    },
    Known {
        id: "gpt-image-1.5",
        image: [0.009, 0.034, 0.133],
        tokens: [5.0, 8.0, 32.0],
        shutdown_date: Some("2026-12-01"),
        replacement: Some("gpt-image-2"),
    },
    Known {
        id: "chatgpt-image-latest",
        image: [0.009, 0.034, 0.133],
        tokens: [5.0, 8.0, 32.0],
        shutdown_date: Some("2026-12-01"),
        replacement: Some("gpt-image-2"),
    },
    Known {
        id: "gpt-image-1-mini",
        image: [0.005, 0.011, 0.036],
        tokens: [2.0, 2.5, 8.0],
        shutdown_date: Some("2026-12-01"),
        replacement: Some("gpt-image-2"),
    },
    Known {
        id: "gpt-image-1",
        image: [0.011, 0.042, 0.167],
        tokens: [5.0, 10.0, 40.0],
        shutdown_date: Some("2026-10-23"),
        replacement: Some("gpt-image-2"),
    },
];

/// The most image-input tokens one reference image is assumed to cost when estimating (high
/// input fidelity); the actual count comes back in the response's `usage`.
pub const INPUT_IMAGE_TOKENS_MAX: f64 = 6_500.0;

/// The most text tokens a prompt of `chars` characters is assumed to cost (one per 3 chars,
/// rounded up: English runs about one per 4).
fn prompt_tokens_max(chars: usize) -> f64 {
    chars.div_ceil(3) as f64
}

/// Shutdown dates reported by providers: model id → (provider name, date).
pub type Reported = BTreeMap<String, (String, Option<String>)>;

/// Every model known from the registry, the settings and the providers, judged against `today`.
pub fn list(settings: &Settings, reported: &Reported, today: &str) -> Vec<ModelInfo> {
    let mut models: BTreeMap<String, ModelInfo> = BTreeMap::new();
    for known in BUILTIN {
        models.insert(known.id.to_owned(), builtin_info(known));
    }
    for (id, prices) in &settings.pricing {
        let entry = models.entry(id.clone()).or_insert_with(|| ModelInfo {
            id: id.clone(),
            lifecycle: Lifecycle::Active,
            shutdown_date: None,
            replacement: None,
            image_prices: None,
            token_prices: None,
            source: "settings".to_owned(),
        });
        entry.image_prices = Some(ImagePrices {
            low: prices.low,
            medium: prices.medium,
            high: prices.high,
        });
        entry.token_prices = None;
        entry.source = "settings".to_owned();
    }
    for (id, (provider, date)) in reported {
        let entry = models.entry(id.clone()).or_insert_with(|| ModelInfo {
            id: id.clone(),
            lifecycle: Lifecycle::Active,
            shutdown_date: None,
            replacement: None,
            image_prices: None,
            token_prices: None,
            source: format!("provider:{provider}"),
        });
        if date.is_some() {
            entry.shutdown_date = date.clone();
            entry.source = format!("provider:{provider}");
        }
    }
    let mut models: Vec<ModelInfo> = models.into_values().collect();
    for model in &mut models {
        model.lifecycle = lifecycle(model.shutdown_date.as_deref(), today);
    }
    models
}

fn builtin_info(known: &Known) -> ModelInfo {
    ModelInfo {
        id: known.id.to_owned(),
        lifecycle: Lifecycle::Active,
        shutdown_date: known.shutdown_date.map(str::to_owned),
        replacement: known.replacement.map(str::to_owned),
        image_prices: Some(ImagePrices {
            low: known.image[0],
            medium: known.image[1],
            high: known.image[2],
        }),
        token_prices: Some(TokenPrices {
            text_input: known.tokens[0],
            image_input: known.tokens[1],
            image_output: known.tokens[2],
        }),
        source: "builtin".to_owned(),
    }
}

/// A model shut down on day D is gone on day D.
pub fn lifecycle(shutdown_date: Option<&str>, today: &str) -> Lifecycle {
    match shutdown_date {
        None => Lifecycle::Active,
        Some(date) if date <= today => Lifecycle::Retired,
        Some(_) => Lifecycle::Retiring,
    }
}

/// What planning needs to price one call.
#[derive(Debug, Clone, PartialEq)]
pub struct Pricing {
    pub image: ImagePrices,
    pub tokens: Option<TokenPrices>,
    /// `builtin:<model>` or `settings:pricing.<model>`.
    pub source: String,
}

/// The prices of `model`: the settings' table wins over the built-in one.
pub fn pricing(settings: &Settings, model: &str) -> Option<Pricing> {
    if let Some(prices) = settings.pricing.get(model) {
        return Some(Pricing {
            image: ImagePrices {
                low: prices.low,
                medium: prices.medium,
                high: prices.high,
            },
            tokens: None,
            source: format!("settings:pricing.{model}"),
        });
    }
    BUILTIN.iter().find(|known| known.id == model).map(|known| {
        let info = builtin_info(known);
        Pricing {
            image: info.image_prices.unwrap_or(ImagePrices {
                low: 0.0,
                medium: 0.0,
                high: 0.0,
            }),
            tokens: info.token_prices,
            source: format!("builtin:{model}"),
        }
    })
}

/// The pixel count a size stands for; `auto` counts as the largest standard size.
fn pixels(size: Option<(u32, u32)>) -> f64 {
    let (width, height) = size.unwrap_or((1024, 1536));
    f64::from(width) * f64::from(height)
}

/// The most one call can cost: its output at `size` and `quality`, plus the prompt and
/// `input_images` at the token prices (when the model has them).
pub fn call_max_usd(
    pricing: &Pricing,
    size: Option<(u32, u32)>,
    quality: &str,
    prompt_chars: usize,
    input_images: usize,
) -> f64 {
    let per_image = match quality {
        "low" => pricing.image.low,
        "medium" => pricing.image.medium,
        _ => pricing.image.high,
    };
    let output = per_image * pixels(size) / (1024.0 * 1024.0);
    let inputs = pricing.tokens.as_ref().map_or(0.0, |tokens| {
        (prompt_tokens_max(prompt_chars) * tokens.text_input
            + input_images as f64 * INPUT_IMAGE_TOKENS_MAX * tokens.image_input)
            / 1_000_000.0
    });
    round_usd(output + inputs)
}

/// Token counts from a response's `usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Usage {
    pub text_input: u64,
    pub image_input: u64,
    pub output: u64,
}

/// The actual cost of a call from its usage, when the model has token prices.
pub fn usage_usd(pricing: &Pricing, usage: &Usage) -> Option<f64> {
    let tokens = pricing.tokens.as_ref()?;
    Some(round_usd(
        (usage.text_input as f64 * tokens.text_input
            + usage.image_input as f64 * tokens.image_input
            + usage.output as f64 * tokens.image_output)
            / 1_000_000.0,
    ))
}

/// Money is kept to a millionth of a dollar, so sums do not drift.
pub fn round_usd(usd: f64) -> f64 {
    (usd * 1_000_000.0).round() / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_follows_the_shutdown_date() {
        assert_eq!(lifecycle(None, "2026-11-27"), Lifecycle::Active);
        assert_eq!(
            lifecycle(Some("2026-12-01"), "2026-11-27"),
            Lifecycle::Retiring
        );
        assert_eq!(
            lifecycle(Some("2026-12-01"), "2026-12-01"),
            Lifecycle::Retired
        );
        let models = list(&Settings::default(), &Reported::new(), "2026-11-27");
        let gpt1 = models
            .iter()
            .find(|m| m.id == "gpt-image-1")
            .expect("listed");
        assert_eq!(gpt1.lifecycle, Lifecycle::Retired);
        assert_eq!(gpt1.replacement.as_deref(), Some("gpt-image-2"));
    }

    #[test]
    fn provider_dates_override_and_settings_prices_add_models() {
        let mut settings = Settings::default();
        settings.pricing.insert(
            "flux-local".to_owned(),
            crate::runs::settings::Pricing {
                low: 0.001,
                medium: 0.002,
                high: 0.003,
            },
        );
        let mut reported = Reported::new();
        reported.insert(
            "gpt-image-2".to_owned(),
            ("openai".to_owned(), Some("2027-06-01".to_owned())),
        );
        let models = list(&settings, &reported, "2026-11-27");
        let two = models
            .iter()
            .find(|m| m.id == "gpt-image-2")
            .expect("listed");
        assert_eq!(two.lifecycle, Lifecycle::Retiring);
        assert_eq!(two.source, "provider:openai");
        let flux = models
            .iter()
            .find(|m| m.id == "flux-local")
            .expect("listed");
        assert_eq!(flux.source, "settings");
        assert_eq!(
            pricing(&settings, "flux-local").map(|p| p.source),
            Some("settings:pricing.flux-local".to_owned())
        );
        assert_eq!(pricing(&settings, "nobody-knows"), None);
    }

    #[test]
    fn call_cost_scales_with_size_and_counts_inputs() {
        let pricing = pricing(&Settings::default(), "gpt-image-2").expect("known");
        let square = call_max_usd(&pricing, Some((1024, 1024)), "high", 0, 0);
        assert!((square - 0.211).abs() < 1e-9, "{square}");
        let tall = call_max_usd(&pricing, Some((1024, 1536)), "high", 0, 0);
        assert!((tall - 0.3165).abs() < 1e-9, "{tall}");
        let with_inputs = call_max_usd(&pricing, Some((1024, 1024)), "high", 300, 2);
        // 100 text tokens at $5/M + 13000 image tokens at $8/M.
        assert!((with_inputs - (0.211 + 0.0005 + 0.104)).abs() < 1e-9);
        let usage = Usage {
            text_input: 100,
            image_input: 2000,
            output: 4160,
        };
        let actual = usage_usd(&pricing, &usage).expect("token prices");
        assert!(
            (actual - (0.0005 + 0.016 + 0.1248)).abs() < 1e-9,
            "{actual}"
        );
    }
}
