//! `cargo bench -p kroma-daemon --bench color`: the colour step (`color::apply`, lookup tables and
//! three passes) against the straightforward one-pass-per-step version (`color::apply_stepwise`)
//! it must equal, on the same 1024×1024 RGBA image in the same run. Prints times and the ratio;
//! absolute times vary with the machine's load, the ratio is what to compare.

use std::time::{Duration, Instant};

use image::RgbaImage;
use kroma_daemon::postprocess::color;

fn time(runs: usize, mut work: impl FnMut()) -> Duration {
    work();
    let mut best = Duration::MAX;
    for _ in 0..runs {
        let started = Instant::now();
        work();
        best = best.min(started.elapsed());
    }
    best
}

fn main() {
    let image = RgbaImage::from_fn(1024, 1024, |x, y| {
        image::Rgba([
            (x * 7 + y * 3) as u8,
            (x ^ y) as u8,
            (x * y / 97) as u8,
            (x + y) as u8,
        ])
    });
    println!(
        "{:<16} {:>14} {:>14} {:>8}",
        "profile", "stepwise", "kroma", "speed-up"
    );
    for (name, profile) in color::builtin() {
        let mut check = None;
        let stepwise = time(5, || {
            check = Some(color::apply_stepwise(&image, &profile));
        });
        let mut fused_out = None;
        let fused = time(5, || {
            fused_out = Some(color::apply(&image, &profile));
        });
        assert_eq!(check, fused_out, "{name}: both versions must agree");
        println!(
            "{:<16} {:>11.2} ms {:>11.2} ms {:>7.2}x",
            name,
            stepwise.as_secs_f64() * 1000.0,
            fused.as_secs_f64() * 1000.0,
            stepwise.as_secs_f64() / fused.as_secs_f64()
        );
    }
}
