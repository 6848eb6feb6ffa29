//! Helpers for the tests under load (tests/reliability.rs, tests/child_faults.rs): counts
//! scaled to the build, figures printed for docs/RELIABILITY.md, `ls --json` reads, bounded
//! polls, and a sampler of a process's memory.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Env, Screen, Term, captured, rss_kib};

/// A count for this build: `debug` in debug builds, `release` otherwise or with
/// `LINGER_SOAK=1` (the full counts, which CI runs), or the value of `var`.
pub fn scaled(var: &str, debug: u64, release: u64) -> u64 {
    let soak = std::env::var_os("LINGER_SOAK").is_some_and(|v| v == "1");
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) && !soak {
            debug
        } else {
            release
        })
}

pub fn report(test: &str, figures: &str) {
    println!("RELIABILITY {test}: {figures}");
}

pub fn server_pid(env: &Env) -> i32 {
    env.server_pid().expect("server pid file")
}

/// How many files a process has open.
pub fn fd_count(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Samples a process's RSS every 20 ms on a thread; `stop` returns the largest sample.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(pid: i32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(rss_kib(pid)));
        let thread = {
            let (stop, max) = (stop.clone(), max.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    max.fetch_max(rss_kib(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        RssSampler {
            stop,
            max,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.max.load(Ordering::Relaxed)
    }
}

pub fn ls_json(env: &Env) -> Vec<serde_json::Value> {
    serde_json::from_str(&env.ok(&["ls", "--json"])).expect("ls --json")
}

pub fn session_json(env: &Env, name: &str) -> serde_json::Value {
    ls_json(env)
        .into_iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no session {name}"))
}

pub fn clients(env: &Env, name: &str) -> u64 {
    session_json(env, name)["clients"].as_u64().unwrap_or(0)
}

/// Polls `check` every 50 ms until it returns Some, failing after `limit`.
pub fn within<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn shown(screen: &Screen) -> (Vec<String>, (u16, u16)) {
    (screen.rows(), screen.cursor_position())
}

/// Waits until a client's terminal shows exactly what `capture` reports for its session.
pub fn wait_client_matches_capture(
    env: &Env,
    name: &str,
    term: &Term,
    limit: Duration,
) -> Duration {
    let start = Instant::now();
    loop {
        let want = captured(env, name);
        let got = shown(&term.screen());
        if want == got {
            return start.elapsed();
        }
        if start.elapsed() > limit {
            panic!(
                "client of {name} does not show the session's screen after {limit:?}\n\
                 capture (cursor {:?}):\n{}\nclient (cursor {:?}):\n{}",
                want.1,
                want.0.join("\n"),
                got.1,
                got.0.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn wait_screen_within(term: &Term, limit: Duration, what: &str, pred: impl Fn(&str) -> bool) {
    within(limit, what, || {
        pred(&term.screen().contents()).then_some(())
    });
}

/// The line the flooding tests print.
pub const FLOOD_LINE: &str = "linger reliability flood line 0123456789 abcdefghijklmnopqrstuvwxyz";
