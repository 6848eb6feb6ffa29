//! Screen-model throughput: `linger::model::Model::process` (linger's engine, 10,000 lines of
//! history) against two vt100 0.18 baselines on the same corpora in the same run: vt100 with
//! history capture (the model linger had before its own engine: `Callbacks::on_scroll`
//! serialising each row into the same history ring) and a bare `vt100::Parser` (no scrollback,
//! no callbacks). Plus the cost of `Model::replay(true)` with a full history, and the heap a
//! fresh 200x50 model takes.
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

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use criterion::{BenchmarkId, Criterion, Throughput};
use linger::history::History;
use linger::model::Model;

/// Counts live heap bytes, for the fresh-model figure.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Heap bytes held by what `make` returns, plus its inline size.
fn heap_of<T>(make: impl FnOnce() -> T) -> usize {
    let before = LIVE.load(Ordering::Relaxed);
    let value = make();
    let after = LIVE.load(Ordering::Relaxed);
    let bytes = (after - before).max(0) as usize + std::mem::size_of::<T>();
    drop(black_box(value));
    bytes
}

/// vt100 with history capture, as linger's model was before its own engine: each row leaving
/// the screen is formatted with SGR and pushed to (or joined onto the last line of) the ring.
struct Capture {
    history: History,
    scratch: String,
    line_open: bool,
    state: vt100::capture::BasicFormattedCaptureState,
}

impl vt100::Callbacks for Capture {
    fn on_scroll(&mut self, contents: vt100::capture::RowContents<'_>, alternate: bool) {
        if alternate {
            return;
        }
        let mut row = std::mem::take(&mut self.scratch);
        row.clear();
        let _ = contents.write_formatted_basic(&mut row, &mut self.state);
        match row.strip_prefix('\n') {
            Some(line) => self.history.push(line),
            None if !self.line_open => self.history.push(&row),
            None => {
                if !self.history.append_to_last(&row) {
                    self.history.push(&row);
                }
            }
        }
        self.scratch = row;
        self.line_open = true;
    }
}

fn vt100_with_capture() -> vt100::Parser<Capture> {
    let capture = Capture {
        history: History::new(SCROLLBACK),
        scratch: String::new(),
        line_open: false,
        state: Default::default(),
    };
    vt100::Parser::new_with_callbacks(nz(ROWS), nz(COLS), 0, capture)
}

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

/// linger's speed as a multiple of each vt100 baseline's (with capture, bare), from
/// alternating one pass of each over `data` (median of the per-round ratios). All sides of a
/// round see the same machine, so the ratio holds up when other load or CPU throttling shifts
/// the absolute numbers between samples.
fn paired_ratio(data: &[u8]) -> (f64, f64) {
    let mut model = Model::new(ROWS, COLS, SCROLLBACK);
    let mut captured = vt100_with_capture();
    let mut bare = vt100::Parser::new(nz(ROWS), nz(COLS), 0);
    let time = |pass: &mut dyn FnMut(&[u8])| {
        let start = Instant::now();
        for chunk in data.chunks(CHUNK) {
            pass(black_box(chunk));
        }
        start.elapsed().as_secs_f64()
    };
    let mut linger_pass = |c: &[u8]| model.process(c).expect("model panicked");
    let mut captured_pass = |c: &[u8]| captured.process(c);
    let mut bare_pass = |c: &[u8]| bare.process(c);
    // Warm-up: fills the history rings, as in the criterion runs.
    time(&mut linger_pass);
    time(&mut captured_pass);
    time(&mut bare_pass);
    let mut with_capture = Vec::new();
    let mut without = Vec::new();
    for _ in 0..PAIRED_ROUNDS {
        let l = time(&mut linger_pass);
        with_capture.push(time(&mut captured_pass) / l);
        without.push(time(&mut bare_pass) / l);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(with_capture), median(without))
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).expect("non-zero size")
}

/// One pass of `data` through linger's model, in the chunks a pty read gives.
fn feed(model: &mut Model, data: &[u8]) {
    for chunk in data.chunks(CHUNK) {
        model.process(black_box(chunk)).expect("model panicked");
    }
}

fn corpora() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("plain", corpus::plain(CORPUS_BYTES, 1)),
        ("sgr", corpus::sgr(CORPUS_BYTES, 2)),
        ("tui", corpus::tui(CORPUS_BYTES, ROWS, COLS, 3)),
        ("unicode", corpus::unicode(CORPUS_BYTES, 4)),
        ("mixed", corpus::mixed(CORPUS_BYTES, ROWS, COLS, 5)),
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
                    feed(&mut model, data);
                }
                let elapsed = start.elapsed();
                record(&id, iters, elapsed);
                elapsed
            });
            black_box(model.history().len());
        });
        group.bench_with_input(BenchmarkId::new("vt100", name), data, |b, data| {
            let mut parser = vt100_with_capture();
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
            black_box(parser.callbacks().history.len());
        });
        group.bench_with_input(BenchmarkId::new("vt100_bare", name), data, |b, data| {
            let mut parser = vt100::Parser::new(nz(ROWS), nz(COLS), 0);
            let id = format!("process/vt100_bare/{name}");
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
    feed(&mut model, &data);
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
        "model summary ({COLS}x{ROWS}, linger history {SCROLLBACK} lines, vt100 with capture into the same ring, vt100 bare with scrollback 0, {CHUNK}-byte chunks)"
    );
    println!(
        "MB/s = 10^6 bytes/s from the median criterion sample; ratios are paired ({PAIRED_ROUNDS} alternating passes)"
    );
    println!(
        "| corpus | bytes | linger MB/s | vt100+capture MB/s | vt100 bare MB/s | linger / vt100+capture | linger / vt100 bare |\n|---|---:|---:|---:|---:|---:|---:|"
    );
    for (name, data) in corpora {
        let (Some(l), Some(v), Some(b)) = (
            median(&format!("process/linger/{name}")),
            median(&format!("process/vt100/{name}")),
            median(&format!("process/vt100_bare/{name}")),
        ) else {
            continue;
        };
        let mb = data.len() as f64 / 1e6;
        let (with_capture, bare) = paired_ratio(data);
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} | {with_capture:.2} | {bare:.2} |",
            data.len(),
            mb / l,
            mb / v,
            mb / b,
        );
    }
    println!(
        "fresh {COLS}x{ROWS} model: linger {} bytes, vt100 {} bytes (heap + inline)",
        heap_of(|| Model::new(ROWS, COLS, SCROLLBACK)),
        heap_of(|| vt100::Parser::new(nz(ROWS), nz(COLS), 0)),
    );
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

/// `LINGER_MODEL_ONCE=<corpus>`: one model takes that corpus twice (the second pass with a full
/// history ring, as in the bench), the server's query filter takes it once in 4 KiB reads, and
/// the process exits. For instruction counts, which this VM's timings are too noisy to compare
/// builds by: `valgrind --tool=callgrind --toggle-collect='*Model::process*' <bench binary>`
/// (or `'*QueryFilter::filter*'`).
fn process_once(name: &str) {
    let corpora = corpora();
    let Some((_, data)) = corpora.iter().find(|(n, _)| *n == name) else {
        eprintln!("no corpus {name}; one of: plain, sgr, tui, unicode, mixed");
        std::process::exit(2);
    };
    let mut model = Model::new(ROWS, COLS, SCROLLBACK);
    for _ in 0..2 {
        feed(&mut model, data);
    }
    let mut filter = linger::query_filter::QueryFilter::default();
    for read in data.chunks(CHUNK) {
        std::hint::black_box(filter.filter(bytes::Bytes::copy_from_slice(read)));
    }
}

fn main() {
    if let Ok(name) = std::env::var("LINGER_MODEL_ONCE") {
        process_once(&name);
        return;
    }
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
