//! Child processes that misbehave: one that stops itself, ones that ignore SIGHUP and SIGTERM,
//! a background job that keeps the terminal after its leader exits, a flooding child, and one
//! that prints binary garbage. Figures are printed as `RELIABILITY ...` lines (run with
//! `--nocapture`) and recorded in docs/RELIABILITY.md.

mod common;

use std::time::{Duration, Instant};

use common::load::*;
use common::{Env, alive, rss_kib};

/// A child that stops itself is still ended by `kill` (SIGTERM stays pending on a stopped
/// process; the SIGKILL escalation does not).
#[test]
fn stopped_child_is_still_killed() {
    const T: &str = "faults";
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "stopped",
        "--",
        "sh",
        "-c",
        "echo UP; kill -STOP $$; echo NEVER; exec sleep 1000",
    ]);
    env.ok(&["wait", "stopped", "--text", "UP", "--timeout", "20s"]);
    let child = session_json(&env, "stopped")["pid"].as_i64().unwrap() as i32;
    within(Duration::from_secs(20), "child stopped", || {
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).ok()?;
        stat.contains(") T ").then_some(())
    });
    assert_eq!(session_json(&env, "stopped")["state"], "running");
    let t = Instant::now();
    env.ok(&["kill", "stopped"]);
    let took = t.elapsed();
    assert!(!env.ok(&["ls"]).contains("stopped"));
    within(Duration::from_secs(20), "stopped child gone", || {
        (!alive(child)).then_some(())
    });
    report(T, &format!("kill of a SIGSTOPped child took {took:.2?}"));
    assert!(took < Duration::from_secs(10));
}

/// `kill-server` ends children that ignore SIGHUP and SIGTERM and children that are stopped,
/// and records how each ended.
#[test]
fn kill_server_ends_stubborn_and_stopped_children() {
    const T: &str = "faults";
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "deaf",
        "--",
        "sh",
        "-c",
        "trap '' HUP TERM; echo UP; while :; do sleep 1; done",
    ]);
    env.ok(&[
        "new",
        "-d",
        "frozen",
        "--",
        "sh",
        "-c",
        "echo UP; kill -STOP $$; exec sleep 1000",
    ]);
    env.ok(&["wait", "deaf", "--text", "UP", "--timeout", "20s"]);
    env.ok(&["wait", "frozen", "--text", "UP", "--timeout", "20s"]);
    let deaf = session_json(&env, "deaf")["pid"].as_i64().unwrap() as i32;
    let frozen = session_json(&env, "frozen")["pid"].as_i64().unwrap() as i32;
    let pid = server_pid(&env);
    let t = Instant::now();
    env.ok(&["kill-server"]);
    within(Duration::from_secs(20), "server exit", || {
        (!alive(pid)).then_some(())
    });
    let server_gone = t.elapsed();
    within(Duration::from_secs(20), "children gone", || {
        (!alive(deaf) && !alive(frozen)).then_some(())
    });
    let states = ls_json(&env)
        .iter()
        .map(|s| format!("{}={}", s["name"], s["state"]))
        .collect::<Vec<_>>()
        .join(" ");
    report(
        T,
        &format!(
            "kill-server with a HUP/TERM-ignoring and a stopped child: exited in {server_gone:.2?}; states after: {states}"
        ),
    );
    let list = ls_json(&env);
    for s in &list {
        assert_ne!(s["state"], "lost", "{s}");
    }
    assert!(server_gone < Duration::from_secs(10));
}

/// The program exits while a background job that ignores SIGHUP keeps the terminal open: the
/// exit is still reported promptly, with its code.
#[test]
fn exit_is_reported_while_a_background_job_holds_the_tty() {
    const T: &str = "faults";
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "leader",
        "--",
        "sh",
        "-c",
        "read x; trap '' HUP; sleep 1000 & echo BG=$!; echo BYE; exit 3",
    ]);
    let t = Instant::now();
    env.ok(&["send", "leader", "--enter", ""]);
    let out = env.run(&["wait", "leader", "--exit", "--timeout", "20s"]);
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(3));
    assert!(env.ok(&["ls"]).contains("exited(3)"));
    let screen = env.ok(&["capture", "leader"]);
    let bg: i32 = screen
        .lines()
        .find_map(|l| l.strip_prefix("BG="))
        .expect("background pid")
        .trim()
        .parse()
        .unwrap();
    assert!(screen.contains("BYE"));
    env.ok(&["kill", "leader"]);
    // `kill` of an exited session only forgets it (README); the job that ignores SIGHUP
    // outlives it. Record that, then clean up.
    let survives = alive(bg);
    // SAFETY: kill(2) on the background job this test started.
    unsafe {
        libc::kill(bg, libc::SIGKILL);
    }
    report(
        T,
        &format!(
            "exit reported {took:.2?} after Enter while a HUP-ignoring job held the tty; job survived `kill`: {survives}"
        ),
    );
}

/// A flooding child is killed promptly.
#[test]
fn flooding_child_is_killed_promptly() {
    const T: &str = "faults";
    let env = Env::new();
    env.ok(&["new", "-d", "yes", "--", "yes", FLOOD_LINE]);
    env.ok(&["wait", "yes", "--text", "flood", "--timeout", "20s"]);
    let t = Instant::now();
    env.ok(&["kill", "yes"]);
    let took = t.elapsed();
    assert!(!env.ok(&["ls"]).contains("yes"));
    report(
        T,
        &format!("kill of a child flooding output took {took:.2?}"),
    );
    assert!(took < Duration::from_secs(10));
}

/// A megabyte of binary garbage from the child (terminal queries, broken UTF-8, C1 controls,
/// unterminated sequences): the server survives, and after a reset the session is modelled
/// exactly again, for capture and for a client attaching afterwards.
#[test]
fn binary_garbage_from_the_child() {
    const T: &str = "faults";
    let env = Env::new();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let garbage: Vec<u8> = (0..1 << 20)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect();
    let file = env.home.join("garbage.bin");
    std::fs::write(&file, &garbage).unwrap();
    let script = format!(
        "stty -echo; read x; cat '{}'; printf '\\033c'; echo AFTER-GARBAGE; exec sleep 1000",
        file.display()
    );
    env.ok(&["new", "-d", "junk", "--", "sh", "-c", &script]);
    let pid = server_pid(&env);
    let t = Instant::now();
    env.ok(&["send", "junk", "--enter", ""]);
    env.ok(&[
        "wait",
        "junk",
        "--text",
        "AFTER-GARBAGE",
        "--timeout",
        "120s",
    ]);
    let took = t.elapsed();
    assert!(alive(pid));
    assert_eq!(session_json(&env, "junk")["state"], "running");
    let term = env.term(&["attach", "junk"], 24, 80);
    wait_screen_within(&term, Duration::from_secs(20), "replay", |s| {
        s.contains("AFTER-GARBAGE")
    });
    wait_client_matches_capture(&env, "junk", &term, Duration::from_secs(20));
    let panics = env.log().matches("screen model panicked").count();
    report(
        T,
        &format!(
            "1 MiB of binary garbage modelled in {took:.2?}; model panics: {panics}; server RSS {} KiB",
            rss_kib(pid)
        ),
    );
}
