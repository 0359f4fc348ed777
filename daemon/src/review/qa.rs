//! The QA guard and candidate ranking of reference §4, exactly: the chroma delta, the verdict of
//! one file, a report's summary, a candidate's rank keys and the winner order. Pure: pixels and
//! numbers in, verdicts out.

use std::cmp::Ordering;

use kroma_protocol as protocol;
use protocol::qa::{FileVerdict, QaSettings, Rank, Reason, Summary};

/// Reference §3.2: `output_guard.max_chroma_delta`.
pub const DEFAULT_MAX_CHROMA_DELTA: f64 = 2.0;

/// The chroma delta of an image converted to 8-bit RGB, alpha discarded (reference §4.1):
/// `(mean|R−G| + mean|R−B| + mean|G−B|) / 3`, rounded to 4 decimals; 0 for an empty image.
pub fn chroma_delta(image: &image::RgbaImage) -> f64 {
    let pixels = u64::from(image.width()) * u64::from(image.height());
    if pixels == 0 {
        return 0.0;
    }
    // Exact integer sums: at most 255 × 3 per pixel, so u64 holds any image kromad decodes.
    let mut sum: u64 = 0;
    for pixel in image.pixels() {
        let [r, g, b, _] = pixel.0;
        sum += u64::from(r.abs_diff(g)) + u64::from(r.abs_diff(b)) + u64::from(g.abs_diff(b));
    }
    round4(sum as f64 / pixels as f64 / 3.0)
}

/// The threshold the guard uses: `max_chroma_delta`, at least 0 (reference §4.2).
pub fn threshold(settings: &QaSettings) -> f64 {
    if settings.max_chroma_delta.is_finite() {
        settings.max_chroma_delta.max(0.0)
    } else {
        DEFAULT_MAX_CHROMA_DELTA
    }
}

/// The verdict on a file whose chroma delta is `chroma` (reference §4.2).
pub fn verdict(file: String, chroma: f64, settings: &QaSettings) -> FileVerdict {
    let limit = threshold(settings);
    let grayscale_like = chroma <= limit;
    let mut hard = Vec::new();
    let mut soft = Vec::new();
    if settings.enforce_grayscale && !grayscale_like {
        hard.push(Reason::NotGrayscaleLike);
    }
    if chroma > limit {
        if settings.fail_on_chroma_exceed {
            hard.push(Reason::ChromaExceedsThreshold);
        } else {
            soft.push(Reason::ChromaExceedsThreshold);
        }
    }
    FileVerdict {
        file,
        chroma_delta: Some(chroma),
        grayscale_like: Some(grayscale_like),
        hard_fail_reasons: hard,
        soft_warnings: soft,
        error: None,
    }
}

/// A file that could not be judged: `image_read_failed`, `input_not_found` or
/// `no_images_found`, each a hard reason.
pub fn unjudged(file: String, reason: Reason, error: Option<protocol::ErrorData>) -> FileVerdict {
    FileVerdict {
        file,
        chroma_delta: None,
        grayscale_like: None,
        hard_fail_reasons: vec![reason],
        soft_warnings: Vec::new(),
        error,
    }
}

/// The report's summary: files, and files with at least one hard or soft reason.
pub fn summary(files: &[FileVerdict]) -> Summary {
    Summary {
        total_files: files.len() as u32,
        hard_failures: files
            .iter()
            .filter(|file| !file.hard_fail_reasons.is_empty())
            .count() as u32,
        soft_warnings: files
            .iter()
            .filter(|file| !file.soft_warnings.is_empty())
            .count() as u32,
    }
}

/// A candidate's rank keys from the verdicts on its files (reference §4.3).
pub fn rank(files: &[FileVerdict], settings: &QaSettings) -> Rank {
    let limit = threshold(settings);
    let summary = summary(files);
    let excesses: Vec<f64> = files
        .iter()
        .filter_map(|file| file.chroma_delta)
        .filter(|chroma| chroma.is_finite())
        .map(|chroma| (chroma - limit).max(0.0))
        .collect();
    let avg_chroma_exceed = if excesses.is_empty() {
        0.0
    } else {
        round4(excesses.iter().sum::<f64>() / excesses.len() as f64)
    };
    Rank {
        hard_failures: summary.hard_failures,
        soft_warnings: summary.soft_warnings,
        avg_chroma_exceed,
    }
}

/// One candidate as the winner order sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    pub index: u32,
    pub rank: Rank,
    /// Drifted from the baseline: ranked below every candidate that did not.
    pub drifted: bool,
}

/// The candidates that may win, best first (reference §4.4, with drift added): a candidate with
/// a hard failure never wins; then a drifted one ranks below the others; then fewer soft
/// warnings, lower chroma excess, lower index. The result does not depend on the input's order.
pub fn ranking(candidates: &[Ranked]) -> Vec<u32> {
    let mut eligible: Vec<&Ranked> = candidates
        .iter()
        .filter(|candidate| candidate.rank.hard_failures == 0)
        .collect();
    eligible.sort_by(|a, b| compare(a, b));
    eligible.iter().map(|candidate| candidate.index).collect()
}

fn compare(a: &Ranked, b: &Ranked) -> Ordering {
    a.rank
        .hard_failures
        .cmp(&b.rank.hard_failures)
        .then(a.drifted.cmp(&b.drifted))
        .then(a.rank.soft_warnings.cmp(&b.rank.soft_warnings))
        .then(
            a.rank
                .avg_chroma_exceed
                .total_cmp(&b.rank.avg_chroma_exceed),
        )
        .then(a.index.cmp(&b.index))
}

/// Why the first of `ranking` won, in words, or `None` when nothing may win.
pub fn why(candidates: &[Ranked], ranking: &[u32]) -> Option<String> {
    let find = |index: u32| candidates.iter().find(|c| c.index == index);
    let winner = find(*ranking.first()?)?;
    let others: Vec<&Ranked> = ranking[1..].iter().filter_map(|i| find(*i)).collect();
    let failed = candidates.len() - ranking.len();
    let mut reasons = Vec::new();
    if failed > 0 {
        reasons.push(format!("{failed} failed the QA guard"));
    }
    let Some(next) = others.first() else {
        reasons.insert(0, "the only candidate that passed".to_owned());
        return Some(reasons.join("; "));
    };
    let decided_by = if winner.drifted != next.drifted {
        "it kept closest to the baseline (the others drifted)".to_owned()
    } else if winner.rank.soft_warnings != next.rank.soft_warnings {
        format!(
            "fewest warnings ({} against {})",
            winner.rank.soft_warnings, next.rank.soft_warnings
        )
    } else if winner.rank.avg_chroma_exceed != next.rank.avg_chroma_exceed {
        format!(
            "least chroma above the threshold ({:.4} against {:.4})",
            winner.rank.avg_chroma_exceed, next.rank.avg_chroma_exceed
        )
    } else {
        "tied on every QA key; the lowest index wins".to_owned()
    };
    reasons.insert(0, decided_by);
    Some(reasons.join("; "))
}

/// Rounds to 4 decimals, as the old system reported chroma.
pub fn round4(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn settings(max: f64, enforce: bool, fail: bool) -> QaSettings {
        QaSettings {
            max_chroma_delta: max,
            enforce_grayscale: enforce,
            fail_on_chroma_exceed: fail,
        }
    }

    #[test]
    fn chroma_is_the_mean_of_the_three_channel_differences() {
        // One pixel (10, 20, 40): |10−20| + |10−40| + |20−40| = 60, / 3 = 20; one gray pixel.
        let mut image = image::RgbaImage::new(2, 1);
        image.put_pixel(0, 0, image::Rgba([10, 20, 40, 0]));
        image.put_pixel(1, 0, image::Rgba([7, 7, 7, 255]));
        assert_eq!(chroma_delta(&image), 10.0);
        assert_eq!(chroma_delta(&image::RgbaImage::new(0, 0)), 0.0);
        let mut thirds = image::RgbaImage::new(3, 1);
        thirds.put_pixel(0, 0, image::Rgba([1, 0, 0, 255]));
        // (1 + 1 + 0) / 3 / 3 = 0.2222…
        assert_eq!(chroma_delta(&thirds), 0.2222);
    }

    #[test]
    fn verdicts_follow_the_reference_rules() {
        let check = |chroma: f64, s: QaSettings| {
            let v = verdict("f.png".into(), chroma, &s);
            (
                v.grayscale_like,
                v.hard_fail_reasons
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>(),
                v.soft_warnings
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            check(2.0, settings(2.0, true, true)),
            (Some(true), vec![], vec![])
        );
        assert_eq!(
            check(2.0001, settings(2.0, false, false)),
            (Some(false), vec![], vec!["chroma_exceeds_threshold"])
        );
        assert_eq!(
            check(5.0, settings(2.0, true, false)),
            (
                Some(false),
                vec!["not_grayscale_like"],
                vec!["chroma_exceeds_threshold"]
            )
        );
        assert_eq!(
            check(5.0, settings(2.0, true, true)),
            (
                Some(false),
                vec!["not_grayscale_like", "chroma_exceeds_threshold"],
                vec![]
            )
        );
        // A negative threshold is clamped to 0: only perfect gray passes.
        assert_eq!(
            check(0.0, settings(-1.0, false, true)),
            (Some(true), vec![], vec![])
        );
        assert_eq!(
            check(0.0001, settings(-1.0, false, true)),
            (Some(false), vec!["chroma_exceeds_threshold"], vec![])
        );
    }

    #[test]
    fn rank_averages_the_excess_over_files_with_a_chroma() {
        let s = settings(2.0, false, false);
        let files = vec![
            verdict("a".into(), 3.5, &s),
            verdict("b".into(), 1.0, &s),
            unjudged("c".into(), Reason::ImageReadFailed, None),
        ];
        assert_eq!(
            rank(&files, &s),
            Rank {
                hard_failures: 1,
                soft_warnings: 1,
                avg_chroma_exceed: 0.75
            }
        );
        assert_eq!(rank(&[], &s), Rank::default());
    }

    fn ranked(index: u32, hard: u32, soft: u32, excess: f64, drifted: bool) -> Ranked {
        Ranked {
            index,
            rank: Rank {
                hard_failures: hard,
                soft_warnings: soft,
                avg_chroma_exceed: excess,
            },
            drifted,
        }
    }

    #[test]
    fn the_winner_order_is_hard_drift_soft_excess_index() {
        let candidates = vec![
            ranked(1, 1, 0, 0.0, false),
            ranked(2, 0, 1, 0.0, false),
            ranked(3, 0, 1, 0.5, false),
            ranked(4, 0, 0, 0.0, true),
            ranked(5, 0, 1, 0.0, false),
        ];
        let order = ranking(&candidates);
        assert_eq!(order, vec![2, 5, 3, 4]);
        assert_eq!(
            why(&candidates, &order).as_deref(),
            Some("tied on every QA key; the lowest index wins; 1 failed the QA guard")
        );
        let two = vec![ranked(1, 0, 2, 0.0, false), ranked(2, 0, 0, 0.0, false)];
        assert_eq!(
            why(&two, &ranking(&two)).as_deref(),
            Some("fewest warnings (0 against 2)")
        );
        assert_eq!(ranking(&[ranked(1, 2, 0, 0.0, false)]), Vec::<u32>::new());
        assert_eq!(why(&[ranked(1, 2, 0, 0.0, false)], &[]), None);
    }

    proptest! {
        /// The winner does not depend on the order candidates finished in.
        #[test]
        fn the_ranking_does_not_depend_on_finishing_order(
            keys in proptest::collection::vec((0u32..2, 0u32..3, 0u32..4, any::<bool>()), 1..7),
            seed in any::<u64>(),
        ) {
            let candidates: Vec<Ranked> = keys
                .iter()
                .enumerate()
                .map(|(i, (hard, soft, excess, drifted))| {
                    ranked(i as u32 + 1, *hard, *soft, f64::from(*excess) / 4.0, *drifted)
                })
                .collect();
            let mut shuffled = candidates.clone();
            // A deterministic shuffle from the seed.
            let mut state = seed;
            for i in (1..shuffled.len()).rev() {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let j = (state >> 33) as usize % (i + 1);
                shuffled.swap(i, j);
            }
            prop_assert_eq!(ranking(&candidates), ranking(&shuffled));
            prop_assert_eq!(why(&candidates, &ranking(&candidates)), why(&shuffled, &ranking(&shuffled)));
        }
    }
}
