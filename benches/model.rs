//! Screen-model throughput: `linger::model::Model::process` (vt100 with linger's callbacks,
//! 10,000 lines of history) against a bare `vt100::Parser` (no scrollback, no callbacks) on the
//! same corpora in the same run, plus the cost of `Model::replay(true)` with a full history.
//!
//! Run: `cargo bench --bench model`. Criterion prints its own report; a summary table with the
//! ratios follows at the end.

#[path = "common/corpus.rs"]
mod corpus;

use std::collections::BTreeMap;
use std::hint::black_box;
use std::num::NonZeroU16;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use linger::model::Model;

const ROWS: u16 = 50;
const COLS: u16 = 200;
const SCROLLBACK: usize = 10_000;
/// Bytes per corpus: large enough that one pass scrolls thousands of lines.
const CORPUS_BYTES: usize = 2 << 20;
/// Bytes handed to the model per call, like one pty read.
const CHUNK: usize = 4096;
/// Criterion keeps the last `SAMPLES` timings; see `record`.
const SAMPLES: usize = 10;

/// Per-iteration times of every criterion sample, by benchmark id, for the ratio table.
static TIMES: Mutex<BTreeMap<String, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn record(id: &str, iters: u64, elapsed: Duration) {
    let mut times = TIMES.lock().unwrap_or_else(|p| p.into_inner());
    times
        .entry(id.to_string())
        .or_default()
        .push(elapsed.as_secs_f64() / iters.max(1) as f64);
}

/// Median seconds per iteration over the measured samples (warm-up calls come first and are
/// dropped by keeping only the last `SAMPLES`).
fn median(id: &str) -> Option<f64> {
    let times = TIMES.lock().unwrap_or_else(|p| p.into_inner());
    let all = times.get(id)?;
    let mut last: Vec<f64> = all[all.len().saturating_sub(SAMPLES)..].to_vec();
    last.sort_by(f64::total_cmp);
    last.get(last.len() / 2).copied()
}

/// Rounds of the paired comparison; see `paired_ratio`.
const PAIRED_ROUNDS: usize = 7;

/// linger's speed as a fraction of vt100's, from alternating one pass of each over `data`
/// (median of the per-round ratios). Both sides of a round see the same machine, so the ratio
/// holds up when other load or CPU throttling shifts the absolute numbers between samples.
fn paired_ratio(data: &[u8]) -> f64 {
    let mut model = Model::new(ROWS, COLS, SCROLLBACK);
    let mut parser = vt100::Parser::new(nz(ROWS), nz(COLS), 0);
    let mut linger_pass = || {
        let start = Instant::now();
        for chunk in data.chunks(CHUNK) {
            model.process(black_box(chunk)).expect("model panicked");
        }
        start.elapsed().as_secs_f64()
    };
    let mut vt100_pass = || {
        let start = Instant::now();
        for chunk in data.chunks(CHUNK) {
            parser.process(black_box(chunk));
        }
        start.elapsed().as_secs_f64()
    };
    // Warm-up: fills the history ring, as in the criterion runs.
    linger_pass();
    vt100_pass();
    let mut ratios: Vec<f64> = (0..PAIRED_ROUNDS)
        .map(|_| {
            let l = linger_pass();
            let v = vt100_pass();
            v / l
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).expect("non-zero size")
}

fn corpora() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("plain", corpus::plain(CORPUS_BYTES, 1)),
        ("sgr", corpus::sgr(CORPUS_BYTES, 2)),
        ("tui", corpus::tui(CORPUS_BYTES, ROWS, COLS, 3)),
        ("unicode", corpus::unicode(CORPUS_BYTES, 4)),
    ]
}

fn throughput(c: &mut Criterion, corpora: &[(&'static str, Vec<u8>)]) {
    let mut group = c.benchmark_group("process");
    for (name, data) in corpora {
        group.throughput(Throughput::Bytes(data.len() as u64));
        group.bench_with_input(BenchmarkId::new("linger", name), data, |b, data| {
            // One model for all iterations: after the first pass the history ring is full and
            // every further line evicts one, as in a long-running session.
            let mut model = Model::new(ROWS, COLS, SCROLLBACK);
            let id = format!("process/linger/{name}");
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    for chunk in data.chunks(CHUNK) {
                        model.process(black_box(chunk)).expect("model panicked");
                    }
                }
                let elapsed = start.elapsed();
                record(&id, iters, elapsed);
                elapsed
            });
            black_box(model.history().len());
        });
        group.bench_with_input(BenchmarkId::new("vt100", name), data, |b, data| {
            let mut parser = vt100::Parser::new(nz(ROWS), nz(COLS), 0);
            let id = format!("process/vt100/{name}");
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    for chunk in data.chunks(CHUNK) {
                        parser.process(black_box(chunk));
                    }
                }
                let elapsed = start.elapsed();
                record(&id, iters, elapsed);
                elapsed
            });
            black_box(parser.screen().cursor_position());
        });
    }
    group.finish();
}

/// A model at 200x50 whose history ring holds 10,000 lines, with a full screen drawn.
fn full_model() -> Model {
    let data = corpus::history_then_screen(SCROLLBACK + ROWS as usize, ROWS, COLS, "END");
    let mut model = Model::new(ROWS, COLS, SCROLLBACK);
    for chunk in data.chunks(CHUNK) {
        model.process(chunk).expect("model panicked");
    }
    assert_eq!(
        model.history().len(),
        SCROLLBACK,
        "the replay bench needs a full history ring"
    );
    model
}

fn replay(c: &mut Criterion, model: &Model) {
    let mut group = c.benchmark_group("replay");
    for (label, history) in [("with_history", true), ("screen_only", false)] {
        let id = format!("replay/{label}");
        group.bench_function(label, |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(model.replay(black_box(history)));
                }
                let elapsed = start.elapsed();
                record(&id, iters, elapsed);
                elapsed
            });
        });
    }
    group.finish();
}

fn summary(corpora: &[(&'static str, Vec<u8>)], model: &Model) {
    println!();
    println!(
        "model summary ({COLS}x{ROWS}, linger history {SCROLLBACK} lines, vt100 baseline scrollback 0, {CHUNK}-byte chunks)"
    );
    println!(
        "MB/s = 10^6 bytes/s from the median criterion sample; the ratio is paired ({PAIRED_ROUNDS} alternating passes)"
    );
    println!(
        "| corpus | bytes | linger MB/s | vt100 MB/s | linger / vt100 (paired) |\n|---|---:|---:|---:|---:|"
    );
    for (name, data) in corpora {
        let (Some(l), Some(v)) = (
            median(&format!("process/linger/{name}")),
            median(&format!("process/vt100/{name}")),
        ) else {
            continue;
        };
        let mb = data.len() as f64 / 1e6;
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.2} |",
            data.len(),
            mb / l,
            mb / v,
            paired_ratio(data)
        );
    }
    for (label, history) in [("with_history", true), ("screen_only", false)] {
        if let Some(t) = median(&format!("replay/{label}")) {
            println!(
                "replay({history}) [{label}]: {:.3} ms (median sample), {} bytes",
                t * 1e3,
                model.replay(history).len()
            );
        }
    }
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(SAMPLES)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let corpora = corpora();
    throughput(&mut c, &corpora);
    let model = full_model();
    replay(&mut c, &model);
    c.final_summary();
    // Under `cargo test --benches` (no `--bench`) each bench ran once, in a debug build.
    if std::env::args().any(|a| a == "--bench") {
        summary(&corpora, &model);
    }
}
