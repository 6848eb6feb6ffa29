//! Scripts that read output and type input: key names, send from stdin, capture --from-line,
//! wait --new / --from-line, soft-wrapped matches.

use std::io::Write;
use std::process::Stdio;

use crate::common::{Env, eventually};
use crate::{stderr, wait_text};

const LOGGER: &str = r#"
import os, sys
os.system("stty raw -echo")
print("READY", end="\r\n", flush=True)
while True:
    data = os.read(0, 4096)
    if not data:
        break
    print("READ " + data.hex(), end="\r\n", flush=True)
"#;

fn reads(env: &Env, name: &str) -> String {
    env.ok(&["capture", name, "--from-line", "0"])
        .lines()
        .filter_map(|l| l.strip_prefix("READ "))
        .collect()
}

#[test]
fn send_keys_knows_tmux_names_in_any_case() {
    let env = Env::new();
    env.ok(&["new", "-d", "k", "--", "python3", "-c", LOGGER]);
    wait_text(&env, "k", "READY");
    let keys = "NPage PPage BSpace DC IC C-Space C-Up S-Up M-Up enter c-c";
    env.ok(&["send", "k", "--keys", keys]);
    let want = "1b5b367e1b5b357e7f1b5b337e1b5b327e001b5b313b35411b5b313b32411b5b313b33410d03";
    eventually("all keys read", || (reads(&env, "k") == want).then_some(()));
}

#[test]
fn send_from_stdin_drops_one_trailing_newline() {
    let env = Env::new();
    env.ok(&["new", "-d", "p", "--", "python3", "-c", LOGGER]);
    wait_text(&env, "p", "READY");
    let mut child = env
        .cmd()
        .args(["send", "p", "-", "--enter"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("send");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"abc\n")
        .expect("write");
    assert!(child.wait().expect("wait").success());
    eventually("abc then Enter", || {
        (reads(&env, "p") == "6162630d").then_some(())
    });
}

#[test]
fn capture_from_line_prints_only_what_is_new() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "c",
        "--",
        "sh",
        "-c",
        "echo one; echo two; while read x; do echo out-$x; done",
    ]);
    wait_text(&env, "c", "^two$");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["capture", "c", "--json"])).expect("json");
    let next = json["next_line"].as_u64().expect("next_line");
    assert_eq!(next, 2, "one past the last non-blank line");
    assert_eq!(
        env.ok(&["capture", "c", "--from-line", &next.to_string()]),
        ""
    );
    env.ok(&["send", "c", "--enter", "three"]);
    wait_text(&env, "c", "^out-three$");
    let new = env.ok(&["capture", "c", "--from-line", &next.to_string()]);
    assert_eq!(new, "three\nout-three\n");
    let old = env.ok(&["capture", "c", "--from-line", "0"]);
    assert_eq!(old, "one\ntwo\nthree\nout-three\n");
}

#[test]
fn wait_new_and_from_line_ignore_stale_output() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "w",
        "--",
        "sh",
        "-c",
        "echo Done; while read x; do echo Done; done",
    ]);
    wait_text(&env, "w", "^Done$");
    let stale = env.run(&[
        "wait",
        "w",
        "--text",
        "^Done$",
        "--new",
        "--timeout",
        "300ms",
    ]);
    assert_eq!(stale.status.code(), Some(124), "{}", stderr(&stale));
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["capture", "w", "--json"])).expect("json");
    let next = json["next_line"].to_string();
    let stale = env.run(&[
        "wait",
        "w",
        "--text",
        "^Done$",
        "--from-line",
        &next,
        "--timeout",
        "300ms",
    ]);
    assert_eq!(stale.status.code(), Some(124));
    // A wait that began before new output sees it; send until it has (it may start late).
    let mut waiting = env
        .cmd()
        .args(["wait", "w", "--text", "^Done$", "--new", "--timeout", "20s"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("wait");
    let status = eventually("wait --new to see new output", || {
        env.ok(&["send", "w", "--enter", "x"]);
        waiting.try_wait().expect("try_wait")
    });
    assert!(status.success());
    env.ok(&[
        "wait",
        "w",
        "--text",
        "^Done$",
        "--from-line",
        &next,
        "--timeout",
        "5s",
    ]);
}

#[test]
fn wait_matches_text_split_at_a_soft_wrap() {
    let env = Env::new();
    let prog = "import os,time; c=os.get_terminal_size().columns; print('x'*(c-1)+'0 MARKER', flush=True); time.sleep(300)";
    env.ok(&["new", "-d", "wr", "--", "python3", "-c", prog]);
    let line = env.ok(&["wait", "wr", "--text", "0 MARKER", "--timeout", "10s"]);
    assert!(line.trim_end().ends_with("x0 MARKER"), "{line}");
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["capture", "wr", "--json"])).expect("json");
    assert_eq!(
        json["lines"][0]["text"]
            .as_str()
            .map(|t| t.ends_with("0 MARKER")),
        Some(true)
    );
}
