//! What one request may make kromad hold in memory: image files are read with a size cap, every
//! image's pixels are checked against `limits.max_image_pixels` from its header before it is
//! decoded, and the local steps running at once share `limits.step_memory_mb`, reserved per image
//! from its header before it is decoded.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use kroma_protocol as protocol;
use protocol::{ErrorCode, ErrorKind};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::Problem;

/// Largest image file any step reads: the same cap as import.
pub const MAX_IMAGE_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Reads a whole image file of at most [`MAX_IMAGE_FILE_BYTES`], refusing anything larger, or
/// anything that is not a regular file, before reading it. Blocking.
pub fn read_image_file(path: &Path) -> Result<Vec<u8>, Problem> {
    let io_error = |err: std::io::Error| {
        Problem::new(
            ErrorKind::Infra,
            ErrorCode::IoError,
            format!("reading {}: {err}", path.display()),
        )
        .with_hint("check that the file exists and is readable")
    };
    // A FIFO or device named like an image would block or never end: checked before opening,
    // and opened without blocking in case it is swapped in between.
    let not_a_file = || {
        Problem::validation(
            ErrorCode::NotAFile,
            format!("{} is not a regular file", path.display()),
        )
    };
    if !std::fs::metadata(path).map_err(io_error)?.is_file() {
        return Err(not_a_file());
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits());
    }
    let file = options.open(path).map_err(io_error)?;
    let meta = file.metadata().map_err(io_error)?;
    if !meta.is_file() {
        return Err(not_a_file());
    }
    let too_large = || {
        Problem::validation(
            ErrorCode::FileTooLarge,
            format!(
                "{} is larger than {} MiB",
                path.display(),
                MAX_IMAGE_FILE_BYTES / 1024 / 1024
            ),
        )
        .with_hint("kroma reads image files up to 256 MiB")
    };
    if meta.len() > MAX_IMAGE_FILE_BYTES {
        return Err(too_large());
    }
    // The file may grow after the check: the read itself is capped too.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_IMAGE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > MAX_IMAGE_FILE_BYTES {
        return Err(too_large());
    }
    Ok(bytes)
}

/// An image decoded for a local step, with the memory reserved for the step.
pub struct Loaded {
    pub image: image::RgbaImage,
    /// The sha256 of the file's bytes, as hex.
    pub sha256: String,
    /// Held until the step's output is written.
    pub _reservation: Reservation,
}

/// Reads the image at `path` for a step costing `cost`: the file within its size cap, its
/// declared size within `max_pixels`, then the step's memory reserved from `memory` (waiting
/// while other steps hold it, or until `stop`), and only then decoded. Blocking: call it on a
/// blocking thread of the runtime.
pub fn load_image(
    path: &Path,
    max_pixels: u64,
    memory: &MemoryBudget,
    cost: StepCost,
    stop: &CancellationToken,
) -> Result<Loaded, Problem> {
    check(stop)?;
    let bytes = read_image_file(path)?;
    let problem = |problem: crate::files::images::ImageProblem| {
        let err = Problem::validation(problem.code(), format!("{}: {problem}", path.display()));
        match problem {
            crate::files::images::ImageProblem::TooManyPixels { .. } => err.with_hint(
                "raise limits.max_image_pixels in kromad.toml if the machine has the memory",
            ),
            _ => err,
        }
    };
    let size = crate::files::images::size_for_processing(&bytes, max_pixels).map_err(problem)?;
    let reservation = tokio::runtime::Handle::current().block_on(async {
        tokio::select! {
            reserved = memory.reserve(path, cost, size) => reserved,
            _ = stop.cancelled() => Err(stopped()),
        }
    })?;
    let sha256 = crate::runs::planner::hex_sha256(&bytes);
    let image = crate::files::images::decode_for_processing(&bytes, max_pixels)
        .map_err(problem)?
        .to_rgba8();
    Ok(Loaded {
        image,
        sha256,
        _reservation: reservation,
    })
}

/// How much memory a local step needs per source pixel, at most, measured on real images
/// (`README`, Limits). Decoding, the RGBA copy, the step's own planes and the encoded output are
/// all counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepCost {
    Color,
    /// The QA guard and drift: the decoded image (up to 8 bytes a pixel at 16 bits with alpha)
    /// and its RGBA copy.
    Qa,
    BgRemove {
        matting: bool,
    },
    /// Upscaling streams its output; the source and one band of `tile`-pixel tiles stay in
    /// memory.
    Upscale {
        tile: u32,
    },
}

impl StepCost {
    fn bytes_per_pixel(self) -> u64 {
        match self {
            StepCost::Color => 16,
            StepCost::Qa => 12,
            StepCost::BgRemove { matting: false } => 16,
            StepCost::BgRemove { matting: true } => 40,
            StepCost::Upscale { .. } => 12,
        }
    }

    /// The estimate for a `width`×`height` source, in MiB (at least 1).
    pub fn megabytes(self, width: u32, height: u32) -> u64 {
        let bytes = u64::from(width) * u64::from(height) * self.bytes_per_pixel();
        // Upscaling holds one band of RGBA output rows: at ×4, 4 × width pixels wide and
        // 4 × tile rows high.
        let band = match self {
            StepCost::Upscale { tile } => u64::from(width) * 4 * u64::from(tile) * 4 * 4,
            _ => 0,
        };
        (bytes + band).div_ceil(1024 * 1024).max(1)
    }
}

/// The memory the local steps running at once may use, in MiB.
#[derive(Debug, Clone)]
pub struct MemoryBudget {
    permits: Arc<Semaphore>,
    total_mb: u32,
}

/// Memory reserved for one image's step; returned when dropped.
#[derive(Debug)]
pub struct Reservation {
    _permit: OwnedSemaphorePermit,
}

impl MemoryBudget {
    pub fn new(total_mb: u32) -> MemoryBudget {
        MemoryBudget {
            permits: Arc::new(Semaphore::new(total_mb as usize)),
            total_mb,
        }
    }

    /// Waits until `cost` of a `width`×`height` image fits beside the steps already running;
    /// refuses at once an image that would not fit even alone.
    pub async fn reserve(
        &self,
        path: &Path,
        cost: StepCost,
        (width, height): (u32, u32),
    ) -> Result<Reservation, Problem> {
        let needed = cost.megabytes(width, height);
        if needed > u64::from(self.total_mb) {
            return Err(Problem::validation(
                ErrorCode::ImageTooLarge,
                format!(
                    "{}: this step on a {width}×{height} image needs about {needed} MiB, more than the {} MiB local steps may use",
                    path.display(),
                    self.total_mb
                ),
            )
            .with_hint("raise limits.step_memory_mb in kromad.toml if the machine has the memory"));
        }
        let permit = self
            .permits
            .clone()
            .acquire_many_owned(needed as u32)
            .await
            .map_err(|_| stopped())?;
        Ok(Reservation { _permit: permit })
    }
}

/// The error of work stopped because kromad is stopping or its caller left.
pub fn stopped() -> Problem {
    Problem::new(
        ErrorKind::Infra,
        ErrorCode::Stopped,
        "stopped before it finished: kromad is stopping or the caller left",
    )
    .with_hint("run it again; nothing half-written was left behind")
}

/// Fails with [`stopped`] once `stop` is cancelled; long local work calls it between tiles and
/// files.
pub fn check(stop: &CancellationToken) -> Result<(), Problem> {
    if stop.is_cancelled() {
        Err(stopped())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_grow_with_the_image() {
        assert_eq!(StepCost::Color.megabytes(1024, 1024), 16);
        assert_eq!(StepCost::Color.megabytes(1, 1), 1);
        assert!(
            StepCost::BgRemove { matting: true }.megabytes(2048, 2048)
                > StepCost::BgRemove { matting: false }.megabytes(2048, 2048)
        );
        // A 16384-px-wide source holds a 256-MiB band at ×4 in 256-px tiles.
        let band = StepCost::Upscale { tile: 256 }.megabytes(16_384, 1);
        assert!((256..=257).contains(&band), "{band}");
    }

    #[tokio::test]
    async fn an_image_larger_than_the_budget_is_refused_at_once() {
        let budget = MemoryBudget::new(64);
        let err = budget
            .reserve(Path::new("/in/big.png"), StepCost::Color, (4096, 4096))
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::ImageTooLarge);
        assert!(err.message.contains("/in/big.png"), "{}", err.message);
        assert!(
            err.hint
                .as_deref()
                .unwrap_or_default()
                .contains("limits.step_memory_mb"),
            "{:?}",
            err.hint
        );
    }

    #[tokio::test]
    async fn reservations_wait_for_each_other() {
        // 32 MiB each: two do not fit in 48.
        let budget = MemoryBudget::new(48);
        let first = budget
            .reserve(Path::new("/a.png"), StepCost::Color, (1024, 2048))
            .await
            .unwrap();
        let second = budget.reserve(Path::new("/b.png"), StepCost::Color, (1024, 2048));
        tokio::pin!(second);
        assert!(
            futures::poll!(second.as_mut()).is_pending(),
            "the second must wait for the first"
        );
        drop(first);
        let _second = second.await.unwrap();
    }

    #[test]
    fn reads_are_capped_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let sparse = dir.path().join("huge.png");
        let file = std::fs::File::create(&sparse).unwrap();
        file.set_len(MAX_IMAGE_FILE_BYTES + 1).unwrap();
        let err = read_image_file(&sparse).unwrap_err();
        assert_eq!(err.code, ErrorCode::FileTooLarge);
        let err = read_image_file(dir.path()).unwrap_err();
        assert!(
            [ErrorCode::NotAFile, ErrorCode::IoError].contains(&err.code),
            "{}",
            err.code
        );
        std::fs::write(dir.path().join("small.png"), b"abc").unwrap();
        assert_eq!(
            read_image_file(&dir.path().join("small.png")).unwrap(),
            b"abc"
        );
    }
}
