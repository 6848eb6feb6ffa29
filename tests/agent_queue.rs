//! The task queue (`linger queue`) through the real binary: prompts wait while the agent
//! works, arrive one per idle period as a bracketed paste and a separate Enter, survive a
//! server restart, and the queue is bounded.

mod common;

use common::{Env, eventually, path_str};

/// An agent in raw mode with bracketed paste on: each Enter starts a task, shown by a title
/// spinner, that lasts until the file `release-N` appears; then `✳`. Every read is logged
/// (one repr per line) to `reads.log`.
const FAKE_AGENT: &str = r#"
import os, sys, time, tty
d = sys.argv[1]
tty.setraw(0)
def out(s):
    sys.stdout.write(s); sys.stdout.flush()
out("\x1b[?2004h\x1b]0;\u2733 Fake\x07ready\r\n")
log = open(os.path.join(d, "reads.log"), "a")
buf, n = b"", 0
while True:
    chunk = os.read(0, 65536)
    if not chunk:
        break
    log.write(repr(chunk) + "\n"); log.flush()
    buf += chunk
    while b"\r" in buf:
        line, buf = buf.split(b"\r", 1)
        text = line.replace(b"\x1b[200~", b"").replace(b"\x1b[201~", b"").decode()
        n += 1
        out("\x1b]0;\u280b Fake\x07got %s\r\n" % text)
        while not os.path.exists(os.path.join(d, "release-%d" % n)):
            time.sleep(0.02)
        out("\x1b]0;\u2733 Fake\x07finished %s\r\n" % text)
"#;

fn start_agent(env: &Env, name: &str) {
    env.ok(&[
        "new",
        "-d",
        name,
        "--",
        "python3",
        "-c",
        FAKE_AGENT,
        path_str(&env.home),
    ]);
    env.ok(&["wait", name, "--text", "ready", "--timeout", "20s"]);
    env.wait_state(name, "idle");
}

fn release(env: &Env, n: u32) {
    std::fs::write(env.home.join(format!("release-{n}")), "").expect("release");
}

fn queued(env: &Env, name: &str) -> Vec<String> {
    let out = env.ok(&["queue", name, "--list", "--json"]);
    serde_json::from_str(&out).expect("queue --list --json prints an array")
}

/// `wait --text` that must time out: the text has not come within a second.
fn not_yet(env: &Env, name: &str, text: &str) {
    let out = env.run(&["wait", name, "--text", text, "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(124), "{text} arrived");
}

#[test]
fn queued_prompts_wait_while_the_agent_works_and_arrive_one_per_idle_period() {
    let env = Env::new();
    start_agent(&env, "q");
    env.ok(&["send", "q", "--enter", "first"]);
    env.wait_state("q", "working");
    env.ok(&["queue", "q", "task", "one"]);
    let mut stdin = env
        .cmd()
        .args(["queue", "q", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("queue -");
    use std::io::Write;
    stdin
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"task two\n")
        .expect("write");
    assert!(stdin.wait().expect("queue -").success());
    assert_eq!(queued(&env, "q"), ["task one", "task two"]);
    let listed = common::listed(&env, "q").expect("q");
    assert_eq!(listed["queue"], 2);
    assert!(env.ok(&["ls"]).contains("QUEUE"));
    assert_eq!(
        env.ok(&["queue", "q", "--list"]),
        "1. task one\n2. task two\n"
    );
    not_yet(&env, "q", "got task");

    release(&env, 1);
    env.ok(&["wait", "q", "--text", "got task one", "--timeout", "20s"]);
    assert_eq!(queued(&env, "q"), ["task two"]);
    not_yet(&env, "q", "got task two");
    release(&env, 2);
    env.ok(&["wait", "q", "--text", "got task two", "--timeout", "20s"]);
    assert!(queued(&env, "q").is_empty());

    // Each arrived as a paste (in one read or more), then an Enter read on its own.
    let log = std::fs::read_to_string(env.home.join("reads.log")).expect("reads");
    let reads: Vec<&str> = log.lines().collect();
    let joined: String = reads
        .iter()
        .map(|r| r.trim_start_matches("b'").trim_end_matches('\''))
        .collect();
    for task in ["task one", "task two"] {
        let paste = format!(r"\x1b[200~{task}\x1b[201~\r");
        assert!(joined.contains(&paste), "no paste of {task} in {reads:?}");
        let end = reads
            .iter()
            .position(|r| r.ends_with(&format!(r"{task}\x1b[201~'")))
            .unwrap_or_else(|| panic!("no paste end of {task} in {reads:?}"));
        assert_eq!(reads.get(end + 1), Some(&r"b'\r'"), "{reads:?}");
    }
}

#[test]
fn the_queue_survives_a_killed_server_and_goes_out_after_revive() {
    let env = Env::new();
    start_agent(&env, "p");
    env.ok(&["send", "p", "--enter", "first"]);
    env.wait_state("p", "working");
    env.ok(&["queue", "p", "after", "restart"]);
    // The keeper goes too, so that the program dies with the server and the session is lost;
    // the queue was saved before `queue` answered.
    env.kill9_server_and_keeper();
    assert_eq!(queued(&env, "p"), ["after restart"]);
    let listed = common::listed(&env, "p").expect("p");
    assert_eq!(
        (listed["state"].clone(), listed["queue"].clone()),
        ("lost".into(), 1.into())
    );
    // Queued to a session that does not run: kept for its revival.
    env.ok(&["queue", "p", "second"]);
    env.ok(&["revive", "p"]);
    env.ok(&[
        "wait",
        "p",
        "--text",
        "got after restart",
        "--timeout",
        "20s",
    ]);
    assert_eq!(queued(&env, "p"), ["second"]);
    release(&env, 1);
    // Released at once: a task shorter than the settling time still ends an idle period.
    env.ok(&["wait", "p", "--text", "got second", "--timeout", "20s"]);
}

#[test]
fn the_queue_is_bounded_and_bad_input_is_refused() {
    let env = Env::new();
    env.ok(&["new", "-d", "b", "--", "sleep", "1000"]);
    // An agent that says it works keeps everything queued.
    env.ok(&["status", "b", "working"]);
    for i in 0..100 {
        env.ok(&["queue", "b", &format!("task {i}")]);
    }
    let out = env.run(&["queue", "b", "one", "too", "many"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("full (100 prompts)"),
        "{err}"
    );
    assert_eq!(queued(&env, "b").len(), 100);
    assert_eq!(env.ok(&["queue", "b", "--clear"]), "cleared 100 prompts\n");
    assert!(queued(&env, "b").is_empty());

    let big = "x".repeat(64 * 1024 + 1);
    let out = env.run(&["queue", "b", &big]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("at most 64 KiB"),
        "{err}"
    );
    env.ok(&["queue", "b", &"y".repeat(64 * 1024 - 10)]);
    let out = env.run(&["queue", "b", "0123456789", "x"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("KiB"), "{err}");

    let out = env.run(&["queue", "b", " "]);
    assert!(!out.status.success());
    let out = env.run(&["queue", "nosuch", "hello"]);
    assert_eq!(out.status.code(), Some(1));
    let out = env.run(&["queue", "b"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&["queue", "b", "--json"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_prompt_waits_while_a_person_attached_is_typing() {
    let env = Env::new();
    start_agent(&env, "t");
    let term = env.term(&["attach", "t"], 24, 80);
    term.wait_text("ready");
    term.write(b"x");
    eventually("the key read", || {
        std::fs::read_to_string(env.home.join("reads.log"))
            .ok()
            .filter(|r| r.contains("b'x'"))
    });
    // Idle all along, but someone just typed: the prompt holds back for a few seconds.
    env.ok(&["queue", "t", "typed", "task"]);
    not_yet(&env, "t", "typed task");
    assert_eq!(queued(&env, "t"), ["typed task"]);
    env.ok(&["wait", "t", "--text", "got xtyped task", "--timeout", "20s"]);
}
