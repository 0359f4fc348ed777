//! The one post-process step type, used by one-off calls (`postprocess.*`), a run's chain and
//! (next) drop folders: what a step is, what it costs, how it is described in an output's
//! provenance, and [`Step::render`], which turns one decoded image into one PNG.
//!
//! A run's chain is the steps its settings turn on, in the fixed order background removal →
//! upscale → colour ([`Step::chain`]).

use std::sync::Arc;

use image::RgbaImage;
use kroma_protocol::{ErrorCode, ErrorKind};
use tokio_util::sync::CancellationToken;

use super::budget::{self, StepCost};
use super::color::{self, ColorProfile};
use super::local_models::{Installed, ModelKind};
use super::onnx::{Engine, Model};
use super::{bg_remove, upscale};
use crate::error::Problem;
use crate::files::png::{self, Provenance};
use crate::runs::settings::Settings;

/// One local step and its settings.
#[derive(Debug, Clone)]
pub enum Step {
    BgRemove {
        /// The installed model to use; `None`: the default one.
        model: Option<String>,
        options: bg_remove::Options,
        /// The background colour as the caller wrote it, for the record.
        background: Option<String>,
    },
    Upscale {
        model: Option<String>,
        scale: u32,
        tile: usize,
    },
    Color {
        profile_name: String,
        profile: ColorProfile,
    },
}

impl Step {
    /// The steps `settings` turn on, in the fixed order of a run's chain.
    pub fn chain(settings: &Settings) -> Result<Vec<Step>, Problem> {
        let chain = &settings.postprocess;
        let named = |name: &str| (!name.is_empty()).then(|| name.to_owned());
        let mut steps = Vec::new();
        if chain.bg_remove {
            let background = named(&chain.background);
            steps.push(Step::BgRemove {
                model: named(&chain.bg_model),
                options: bg_remove::Options {
                    mask_only: false,
                    matting: chain.matting,
                    background: background
                        .as_deref()
                        .map(bg_remove::parse_colour)
                        .transpose()?,
                },
                background,
            });
        }
        if chain.upscale != 0 {
            steps.push(Step::Upscale {
                model: named(&chain.upscale_model),
                scale: chain.upscale,
                tile: upscale::DEFAULT_TILE,
            });
        }
        if !chain.color.is_empty() {
            steps.push(Step::Color {
                profile_name: chain.color.clone(),
                profile: find_profile(settings, &chain.color)?,
            });
        }
        Ok(steps)
    }

    /// Which step this is, as events name it.
    pub fn to_proto(&self) -> kroma_protocol::postprocess::Step {
        match self {
            Step::BgRemove { .. } => kroma_protocol::postprocess::Step::BgRemove,
            Step::Upscale { .. } => kroma_protocol::postprocess::Step::Upscale,
            Step::Color { .. } => kroma_protocol::postprocess::Step::Color,
        }
    }

    /// The step's name, as events and provenance record it.
    pub fn name(&self) -> &'static str {
        self.to_proto().as_str()
    }

    /// What the step costs in memory per image.
    pub fn cost(&self) -> StepCost {
        match self {
            Step::BgRemove { options, .. } => StepCost::BgRemove {
                matting: options.matting,
            },
            Step::Upscale { tile, .. } => StepCost::Upscale { tile: *tile as u32 },
            Step::Color { .. } => StepCost::Color,
        }
    }

    /// The installed model the step runs, loaded (or taken from the engine's cache); `None` for
    /// a step without a model. Blocking.
    pub fn load_model(&self, engine: &Engine) -> Result<Option<Arc<Model>>, Problem> {
        let model = match self {
            Step::BgRemove { model, .. } => engine.model(ModelKind::BgRemoval, model.as_deref())?,
            Step::Upscale { model, .. } => {
                let model = engine.model(ModelKind::Upscale, model.as_deref())?;
                if model.installed.scale != 4 {
                    return Err(Problem::validation(
                        ErrorCode::UnsupportedModel,
                        format!(
                            "{} upscales ×{}; kroma runs ×4 models",
                            model.installed.name, model.installed.scale
                        ),
                    ));
                }
                model
            }
            Step::Color { .. } => return Ok(None),
        };
        Ok(Some(model))
    }

    /// The step's settings as recorded in an output's `kroma:settings` chunk, with the model
    /// that actually ran by name and hash.
    pub fn describe(&self, model: Option<&Installed>) -> serde_json::Value {
        let mut settings = match self {
            Step::BgRemove {
                model,
                options,
                background,
            } => serde_json::json!({
                "model": model,
                "mask_only": options.mask_only,
                "matting": options.matting,
                "background": background,
            }),
            Step::Upscale { model, scale, tile } => serde_json::json!({
                "model": model,
                "scale": scale,
                "tile": tile,
            }),
            Step::Color {
                profile_name,
                profile,
            } => serde_json::json!({ "profile": profile_name, "values": profile }),
        };
        if let Some(model) = model {
            settings["model"] = model.name.clone().into();
            settings["model_sha256"] = model.sha256.clone().into();
            if let Step::Upscale { .. } = self {
                settings["overlap"] = upscale::overlap_for(&model.name).into();
            }
        }
        settings
    }

    /// Whether [`Step::render`] writes as it goes (an upscale) rather than all at the end.
    pub fn streams(&self) -> bool {
        matches!(self, Step::Upscale { .. })
    }

    /// The output's size for an input of `width` × `height`.
    pub fn output_size(&self, width: u32, height: u32) -> (u32, u32) {
        match self {
            Step::Upscale { scale, .. } => (width * scale, height * scale),
            Step::BgRemove { .. } | Step::Color { .. } => (width, height),
        }
    }

    /// Runs the step on `image` with `model` (from [`Step::load_model`]) and writes the PNG, with
    /// `provenance` as text chunks, to `out`. An upscale streams its rows (the upscaled pixels are
    /// never held whole) and reports its tiles to `progress`; every step stops at `stop`.
    /// Blocking.
    pub fn render(
        &self,
        model: Option<&Model>,
        image: &RgbaImage,
        provenance: &Provenance,
        progress: &mut dyn FnMut(usize, usize),
        stop: &CancellationToken,
        out: &mut dyn std::io::Write,
    ) -> Result<(), Problem> {
        let needs_model = || {
            Problem::new(
                ErrorKind::Internal,
                ErrorCode::Internal,
                format!("the {} step ran without its model", self.name()),
            )
        };
        let out_image: image::DynamicImage = match self {
            Step::Color { profile, .. } => color::apply(image, profile).into(),
            Step::BgRemove { options, .. } => {
                bg_remove::remove(model.ok_or_else(needs_model)?, image, *options)?
            }
            Step::Upscale { scale, tile, .. } => {
                let model = model.ok_or_else(needs_model)?;
                let tiling = upscale::Tiling {
                    tile: *tile,
                    overlap: upscale::overlap_for(&model.installed.name),
                };
                let mut out = out;
                return upscale::encode_png(
                    model, image, *scale, tiling, provenance, progress, stop, &mut out,
                );
            }
        };
        budget::check(stop)?;
        let internal = |err: String| Problem::new(ErrorKind::Internal, ErrorCode::Internal, err);
        let encoded = png::encode_png(&out_image).map_err(internal)?;
        let encoded = png::with_provenance(encoded, provenance).map_err(internal)?;
        out.write_all(&encoded).map_err(|err| {
            Problem::new(
                ErrorKind::Infra,
                ErrorCode::IoError,
                format!("writing the {} output: {err}", self.name()),
            )
            .with_hint("check that the folder is writable and the disk has room")
        })
    }
}

/// The colour profile `name`: the user's own (`[color_profiles.<name>]` in the settings) first,
/// then the built-in ones.
pub fn find_profile(settings: &Settings, name: &str) -> Result<ColorProfile, Problem> {
    if let Some(profile) = settings.color_profiles.get(name) {
        return Ok(profile.clone());
    }
    color::builtin().remove(name).ok_or_else(|| {
        let mut known: Vec<String> = color::builtin().into_keys().collect();
        known.extend(settings.color_profiles.keys().cloned());
        Problem::validation(
            ErrorCode::UnknownProfile,
            format!("there is no colour profile `{name}`"),
        )
        .with_hint(format!(
            "known: {}; add your own under [color_profiles.<name>] in the settings",
            known.join(", ")
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::runs::settings::Postprocess;

    fn settings(postprocess: Postprocess) -> Settings {
        Settings {
            postprocess,
            ..Settings::default()
        }
    }

    fn colour(name: &str) -> Postprocess {
        Postprocess {
            color: name.to_owned(),
            ..Postprocess::default()
        }
    }

    #[test]
    fn the_chain_keeps_its_fixed_order_whatever_the_settings_say_first() {
        let steps = Step::chain(&settings(Postprocess {
            color: "cinematic_warm".to_owned(),
            upscale: 4,
            bg_remove: true,
            ..Postprocess::default()
        }))
        .expect("chain");
        let names: Vec<&str> = steps.iter().map(Step::name).collect();
        assert_eq!(names, ["bg_remove", "upscale", "color"]);
        assert_eq!(steps[1].output_size(10, 20), (40, 80));
    }

    #[test]
    fn an_unknown_profile_names_the_known_ones() {
        let err = Step::chain(&settings(colour("nope"))).expect_err("unknown");
        assert_eq!(err.code, ErrorCode::UnknownProfile);
        assert!(err.hint.as_deref().unwrap_or("").contains("cinematic_warm"));
    }

    #[test]
    fn colour_renders_a_png_that_carries_its_provenance() {
        let step = Step::chain(&settings(colour("cinematic_warm")))
            .expect("chain")
            .remove(0);
        let image = RgbaImage::from_pixel(4, 3, image::Rgba([100, 120, 140, 255]));
        let provenance = Provenance::from([("step", step.name().to_owned())]);
        let mut out = Vec::new();
        step.render(
            None,
            &image,
            &provenance,
            &mut |_, _| {},
            &CancellationToken::new(),
            &mut out,
        )
        .expect("render");
        assert_eq!(png::read_provenance(&out)["step"], "color");
        let decoded = image::load_from_memory(&out).expect("a PNG");
        assert_eq!((decoded.width(), decoded.height()), (4, 3));
    }

    #[test]
    fn a_model_step_without_its_model_is_an_error_not_a_panic() {
        let step = Step::Upscale {
            model: None,
            scale: 4,
            tile: upscale::DEFAULT_TILE,
        };
        let image = RgbaImage::new(2, 2);
        let err = step
            .render(
                None,
                &image,
                &Provenance::new(),
                &mut |_, _| {},
                &CancellationToken::new(),
                &mut Vec::new(),
            )
            .expect_err("no model");
        assert_eq!(err.code, ErrorCode::Internal);
    }
}
