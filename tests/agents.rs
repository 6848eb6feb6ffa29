//! Agent state through the real binary, with a fake agent that behaves like the real ones on
//! the terminal: a braille spinner in its title while working, `✳` when idle, OSC 9 when it
//! needs its user, BEL; and the agents' own reports through `linger status`.

mod common;

use common::Env;

/// A program that says what it does with progress reports (OSC 9;4) and shell prompt marks
/// (OSC 133), and no title.
const SIGNALS_ONLY: &str = r#"
import sys
def out(s):
    sys.stdout.write(s); sys.stdout.flush()
out("\x1b]133;A\x07$ ")
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "run":
        out("\x1b]133;C\x07running\r\n")
    elif cmd == "done":
        out("\x1b]133;D;0\x07\x1b]133;A\x07$ ")
    elif cmd == "progress":
        out("\x1b]9;4;1;40\x07")
    elif cmd == "failed":
        out("\x1b]9;4;2;40\x07")
    elif cmd == "cleared":
        out("\x1b]9;4;0\x07")
"#;

fn agent(env: &Env, name: &str) -> serde_json::Value {
    common::listed(env, name).expect("the session")["agent"].clone()
}

#[test]
fn each_source_moves_the_agent_state() {
    let env = Env::new();
    env.ok(&["new", "-d", "ag", "--", "python3", "-c", common::FAKE_AGENT]);
    env.ok(&["wait", "ag", "--text", "ready", "--timeout", "20s"]);
    env.wait_state("ag", "idle");

    env.ok(&["send", "ag", "--enter", "work"]);
    env.wait_state("ag", "working");
    assert_eq!(agent(&env, "ag")["state"], "working");

    env.ok(&["send", "ag", "--enter", "ask"]);
    env.wait_state("ag", "waiting");
    let a = agent(&env, "ag");
    assert_eq!(a["state"], "waiting");
    assert_eq!(a["reason"], "Fake Agent needs your permission");
    let table = env.ok(&["ls"]);
    assert!(
        table.contains("waiting: Fake Agent needs your permission"),
        "{table}"
    );
    // A redraw of the title does not end the question; a new signal does.
    env.ok(&["send", "ag", "--enter", "idle"]);
    env.ok(&["wait", "ag", "--text", "done", "--timeout", "20s"]);
    assert_eq!(agent(&env, "ag")["state"], "waiting");

    // The agent's own report wins over what its output says.
    env.ok(&["status", "ag", "working", "--reason", "hook says so"]);
    let a = agent(&env, "ag");
    assert_eq!(
        (a["state"].clone(), a["reason"].clone()),
        ("working".into(), "hook says so".into())
    );
    env.ok(&["send", "ag", "--enter", "bell"]);
    env.ok(&["status", "ag", "idle"]);
    assert_eq!(agent(&env, "ag")["state"], "idle");

    // Bad input is refused in one line.
    let out = env.run(&["status", "ag", "sleeping"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&["status", "nosuch", "idle"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_program_without_signals_is_working_while_it_prints_and_idle_after() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "quiet",
        "--",
        "sh",
        "-c",
        "echo hi; exec sleep 1000",
    ]);
    env.wait_state("quiet", "idle");
    let a = agent(&env, "quiet");
    assert_eq!(
        (a["state"].clone(), a["kind"].clone()),
        ("idle".into(), serde_json::Value::Null)
    );
}

#[test]
fn progress_reports_and_prompt_marks_move_the_state() {
    let env = Env::new();
    env.ok(&["new", "-d", "sig", "--", "python3", "-c", SIGNALS_ONLY]);
    let expect = |state: &str, reason: serde_json::Value| {
        env.wait_state("sig", state);
        let a = agent(&env, "sig");
        assert_eq!(
            (a["state"].as_str(), a["reason"].clone()),
            (Some(state), reason)
        );
    };
    expect("idle", "prompt".into());
    env.ok(&["send", "sig", "--enter", "run"]);
    expect("working", serde_json::Value::Null);
    env.ok(&["send", "sig", "--enter", "done"]);
    expect("idle", "prompt".into());
    env.ok(&["send", "sig", "--enter", "progress"]);
    expect("working", serde_json::Value::Null);
    env.ok(&["send", "sig", "--enter", "failed"]);
    expect("waiting", "error".into());
    env.ok(&["send", "sig", "--enter", "cleared"]);
    expect("idle", serde_json::Value::Null);
}

/// A program that asks whether the terminal reads OSC 7501 program status (the query, then
/// DA1, as detectors do), prints which answer came first, then reports its state itself.
const STATUS_REPORTER: &str = r#"
import os, sys, termios, tty
def out(s):
    sys.stdout.write(s); sys.stdout.flush()
old = termios.tcgetattr(0)
tty.setraw(0)
out("\x1b]7501;?\x1b\\\x1b[c")
got = b""
while not got.endswith(b"c"):
    got += os.read(0, 64)
termios.tcsetattr(0, termios.TCSANOW, old)
first = "7501" if got.startswith(b"\x1b]7501;?") else repr(got)
out("first answer: " + first + "\r\n")
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "blocked":
        out("\x1b]7501;state=blocked:kind=permission:app=deploy:msg=RGVwbG95Pw==\x1b\\")
    elif cmd == "working":
        out("\x1b]7501;state=working:progress=40\x07")
    elif cmd == "done":
        out("\x1b]7501;state=done\x1b\\")
    elif cmd == "clear":
        out("\x1b]7501;state=clear\x1b\\")
"#;

#[test]
fn a_programs_own_status_reports_move_the_state() {
    let env = Env::new();
    env.ok(&["new", "-d", "st", "--", "python3", "-c", STATUS_REPORTER]);
    let line = env.ok(&["wait", "st", "--text", "first answer: ", "--timeout", "20s"]);
    assert!(line.contains("first answer: 7501"), "{line}");
    let expect = |state: &str, reason: serde_json::Value| {
        env.wait_state("st", state);
        let a = agent(&env, "st");
        assert_eq!(
            (a["state"].as_str(), a["reason"].clone()),
            (Some(state), reason)
        );
    };
    env.ok(&["send", "st", "--enter", "blocked"]);
    expect("waiting", "permission: Deploy?".into());
    env.ok(&["send", "st", "--enter", "working"]);
    expect("working", serde_json::Value::Null);
    env.ok(&["send", "st", "--enter", "done"]);
    expect("idle", "done".into());
    // Withdrawn, the state falls back to what the output says: here, quiet output is idle.
    env.ok(&["send", "st", "--enter", "clear"]);
    common::eventually("the withdrawn report to stop counting", || {
        (agent(&env, "st")["reason"] != "done").then_some(())
    });
}
