//! The confirmation page's HTML: `confirm.html` filled by minijinja with HTML auto-escaping, so
//! whatever an agent wrote (objective, transcript, prompts, file names) is shown as text and can
//! never become markup. Input images become small PNG thumbnails inlined as `data:` URLs,
//! decoded within the daemon's pixel limit.

use std::io::Read;
use std::path::Path;

use base64::Engine;
use kroma_protocol as protocol;
use protocol::instruction::InstructionState;
use protocol::{ErrorCode, ErrorKind};
use serde::Serialize;

use crate::Daemon;
use crate::error::Problem;
use crate::store::instructions::InstructionRow;

/// Jobs shown in full; the rest are counted.
const MAX_JOBS: usize = 24;
/// Thumbnails per job.
const MAX_THUMBS: usize = 4;
/// Longest side of a thumbnail, in pixels.
const THUMB_SIDE: u32 = 160;
/// Largest input file read for a thumbnail.
const MAX_THUMB_SOURCE_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Serialize)]
struct PageView {
    title: String,
    message: Option<String>,
    project: String,
    requester: String,
    objective: String,
    source_text: Option<String>,
    state: &'static str,
    waiting_for: Option<String>,
    max_cost: String,
    plan: Option<PlanView>,
    token: Option<String>,
    action: String,
}

#[derive(Serialize)]
struct PlanView {
    model: String,
    provider: String,
    size: String,
    quality: String,
    candidates: u32,
    calls: u32,
    postprocess: String,
    jobs: Vec<JobView>,
    more_jobs: usize,
}

#[derive(Serialize)]
struct JobView {
    key: String,
    scene: String,
    prompt: String,
    candidates: u32,
    max_cost: String,
    thumbs: Vec<String>,
}

/// The page of `row`, with `message` on top (after a decision).
pub async fn page(
    daemon: &Daemon,
    row: &InstructionRow,
    message: Option<&str>,
) -> Result<String, Problem> {
    let instruction = crate::instructions::to_proto(row, None)?;
    let waiting = instruction.state == InstructionState::AwaitingConfirmation;
    let max_pixels = daemon.max_image_pixels;
    let plan = match instruction.plan.clone() {
        Some(plan) => Some(
            tokio::task::spawn_blocking(move || plan_view(&plan, max_pixels))
                .await
                .map_err(|err| {
                    Problem::new(ErrorKind::Internal, ErrorCode::Internal, err.to_string())
                })?,
        ),
        None => None,
    };
    let requester = match &instruction.requested_by.client_name {
        Some(name) => format!(
            "the agent “{name}” through {}",
            instruction.requested_by.program
        ),
        None => instruction.requested_by.program.clone(),
    };
    let view = PageView {
        title: if waiting {
            "An agent asks you to approve this work".to_owned()
        } else {
            format!(
                "This instruction is {}",
                instruction.state.as_str().replace('_', " ")
            )
        },
        message: message.map(str::to_owned),
        project: instruction.project.clone(),
        requester,
        objective: instruction.objective.clone(),
        source_text: instruction.source_text.clone(),
        state: instruction.state.as_str(),
        waiting_for: instruction.waiting_for.clone(),
        max_cost: format!("${:.4}", instruction.max_cost_usd),
        plan,
        token: row.page_token.clone().filter(|_| waiting),
        action: format!("/confirm/{}", row.page_id.as_deref().unwrap_or_default()),
    };
    render(&view).map_err(|err| {
        Problem::new(
            ErrorKind::Internal,
            ErrorCode::Internal,
            format!("rendering the confirmation page: {err}"),
        )
    })
}

fn render(view: &PageView) -> Result<String, minijinja::Error> {
    let mut environment = minijinja::Environment::new();
    environment.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    environment.render_str(include_str!("confirm.html"), minijinja::value::Serde(view))
}

fn plan_view(plan: &protocol::run::Plan, max_pixels: u64) -> PlanView {
    let jobs = plan
        .jobs
        .iter()
        .take(MAX_JOBS)
        .map(|job| JobView {
            key: job.key.clone(),
            scene: job.scene.clone(),
            prompt: job.prompt.clone(),
            candidates: job.candidates,
            max_cost: format!("${:.4}", job.max_cost_usd),
            thumbs: job
                .input_images
                .iter()
                .take(MAX_THUMBS)
                .filter_map(|image| thumbnail(Path::new(&image.path), max_pixels))
                .collect(),
        })
        .collect();
    PlanView {
        model: plan.model.clone(),
        provider: plan.provider.clone(),
        size: plan.size.clone(),
        quality: plan.quality.clone(),
        candidates: plan.candidates,
        calls: plan.cost.calls,
        postprocess: plan.postprocess.join(" → "),
        jobs,
        more_jobs: plan.jobs.len().saturating_sub(MAX_JOBS),
    }
}

/// A small PNG of the image at `path` as a `data:` URL; none when it cannot be read safely (the
/// page then shows the job without it).
fn thumbnail(path: &Path, max_pixels: u64) -> Option<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_THUMB_SOURCE_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    if bytes.len() as u64 > MAX_THUMB_SOURCE_BYTES {
        return None;
    }
    let image = crate::files::images::decode_for_processing(&bytes, max_pixels).ok()?;
    let small = image.thumbnail(THUMB_SIDE, THUMB_SIDE);
    let png = crate::files::png::encode_png(&small).ok()?;
    Some(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_escapes_what_an_agent_wrote() {
        let view = PageView {
            title: "t".into(),
            message: None,
            project: "noir".into(),
            requester: "agent".into(),
            objective: "<script>alert(1)</script><form action=//evil>".into(),
            source_text: Some("\"><img src=x onerror=alert(1)>".into()),
            state: "awaiting_confirmation",
            waiting_for: None,
            max_cost: "$1.0000".into(),
            plan: None,
            token: Some("abc".into()),
            action: "/confirm/p".into(),
        };
        let html = render(&view).unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("name=\"token\" value=\"abc\""));
    }
}
