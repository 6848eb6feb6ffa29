//! End-to-end benchmarks on real processes and real ptys: the release `linger` binary against
//! the same program read straight from a pty ("raw pty"), dtach (no screen model) and tmux, each
//! when installed.
//!
//! Run: `cargo build --release && cargo bench --bench e2e`. Every scenario uses its own
//! `LINGER_DIR` (and tmux socket) and kills its server at the end. Waits are for a marker in
//! the output, with deadlines; the only deliberate sleep is the 10 s idle window.

#[path = "../common/corpus.rs"]
mod corpus;
mod dtach;
mod footprint;
mod procfs;
mod results;
mod scenarios;
mod systems;
mod term;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const ROWS: u16 = 50;
const COLS: u16 = 200;
const DEADLINE: Duration = Duration::from_secs(60);
const FLOOD_BYTES: usize = 50_000_000;
const FLOOD_RUNS: usize = 3;
const ECHO_WARMUP: usize = 20;
const ECHO_KEYS: usize = 500;
/// Rounds the echo keys are split into, each tool taking its share of every round.
const ECHO_ROUNDS: usize = 10;
const ATTACH_RUNS: usize = 15;
const IDLE_WINDOW: Duration = Duration::from_secs(10);

// Markers avoid doubled letters so a terminal's repeat-character optimisation (tmux may use
// REP) cannot split them.
const READY: &str = "RDY-7Q2";
const FLOOD_END: &str = "FLD-END-9K4";
const ATTACH_MARK: &str = "ATC-MRK-5W8";
const LINES_DONE: &str = "LNS-DNE-3P6";

// ---------------------------------------------------------------------------------------------
// Binaries

/// The release `linger`: cargo names it for benches; otherwise it sits next to `deps/`, where
/// this bench executable lives.
fn linger_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("LINGER_BIN") {
        return PathBuf::from(path);
    }
    let path = match option_env!("CARGO_BIN_EXE_linger") {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().expect("cannot find the bench executable's path");
            exe.parent()
                .and_then(Path::parent)
                .expect("bench executable is not under target/<profile>/deps")
                .join("linger")
        }
    };
    if !path.is_file() {
        eprintln!(
            "e2e bench: {} not found; build it first with `cargo build --release`",
            path.display()
        );
        std::process::exit(1);
    }
    path
}

fn tmux_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("tmux"))
        .find(|p| p.is_file())
}

/// Environment shared by every process the bench starts.
fn clean_env(cmd: &mut Command) -> &mut Command {
    cmd.env("TERM", "xterm-256color")
        .env("SHELL", "/bin/sh")
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env_remove("LINGER_SESSION")
        .env_remove("LINGER_DETACH_KEY")
}

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and a minute of real
    // processes has no place in a test run.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("e2e: skipped outside `cargo bench` (run `cargo bench --bench e2e`)");
        return;
    }
    // A name filter picks scenarios (e.g. `cargo bench --bench e2e -- echo idle`).
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let peers = systems::Peers {
        linger: linger_bin(),
        dtach: dtach::dtach_bin(),
        tmux: tmux_bin(),
    };
    let show = |p: &Option<PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "not on PATH (its columns stay empty)".into())
    };
    println!(
        "linger: {}\ndtach: {}\ntmux: {}",
        peers.linger.display(),
        show(&peers.dtach),
        show(&peers.tmux)
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average: {}", load.trim());
    if load
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .is_some_and(|l| l > 0.5)
    {
        println!("warning: the machine is busy; timings will be noisy");
    }
    let work = tempfile::Builder::new()
        .prefix("linger-bench-data")
        .tempdir_in("/tmp")
        .expect("cannot create a temporary directory");
    let total = Instant::now();
    let mut rows = Vec::new();
    if wanted("flood") {
        scenarios::flood(&peers, work.path(), &mut rows);
    }
    if wanted("echo") {
        scenarios::echo(&peers, &mut rows);
    }
    if wanted("attach") {
        scenarios::attach(&peers, work.path(), &mut rows);
    }
    if wanted("memory") {
        footprint::memory(&peers, work.path(), &mut rows);
    }
    if wanted("idle") {
        footprint::idle(&peers, &mut rows);
    }
    if wanted("scale") {
        footprint::scale(&peers, &mut rows);
    }
    results::print_table(&rows);
    println!("\ntotal {:.0} s", total.elapsed().as_secs_f64());
}
