//! Issue 13 through the real binary: sessions start where and how the user is, the tmux verbs
//! people reach for, scripts that read output, and a first run that just works.

mod common;

use std::io::{BufRead, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Env, eventually};

fn sessions(env: &Env) -> Vec<serde_json::Value> {
    let out = env.ok(&["ls", "--json"]);
    serde_json::from_str::<serde_json::Value>(&out)
        .expect("ls --json is JSON")
        .as_array()
        .expect("an array")
        .clone()
}

fn session(env: &Env, name: &str) -> Option<serde_json::Value> {
    sessions(env).into_iter().find(|s| s["name"] == name)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn wait_text(env: &Env, name: &str, regex: &str) -> String {
    env.ok(&["wait", name, "--text", regex, "--timeout", "20s"])
}

/// An executable shell script in `dir`.
fn script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn sessions_start_with_the_callers_environment_and_directory() {
    let env = Env::new();
    // The server is started by a caller without any of what follows.
    env.ok(&["new", "-d", "first", "--", "sleep", "300"]);
    let fakebin = env.home.join("fakebin");
    script(
        &fakebin,
        "mytool",
        "echo \"tool foo=$FOO term=$TERM tmux=${TMUX-unset} in=$(pwd)\"; exec sleep 300",
    );
    let project = env.home.join("project");
    std::fs::create_dir(&project).expect("mkdir");
    let path = format!(
        "{}:{}",
        fakebin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| {
        let out = env
            .cmd()
            .args(args)
            .env("PATH", &path)
            .env("FOO", "secret-from-caller")
            .env("TMUX", "/tmp/tmux-1/default,1,0")
            .env("TERM", "xterm-kitty")
            .current_dir(&project)
            .output()
            .expect("run");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    run(&["new", "-d", "cl", "--", "mytool"]);
    let line = wait_text(&env, "cl", "^tool ");
    let want = format!(
        "tool foo=secret-from-caller term=xterm-256color tmux=unset in={}",
        project.display()
    );
    assert_eq!(line.trim(), want);
    run(&["new", "-d", "over", "-e", "FOO=given", "--", "mytool"]);
    assert!(wait_text(&env, "over", "^tool ").contains("foo=given"));

    // revive reuses the saved environment, which stays private and out of the log.
    env.ok(&["kill-server"]);
    env.ok(&["revive", "cl"]);
    let lines = env.ok(&["capture", "cl", "--from-line", "0"]);
    assert_eq!(
        lines.matches("foo=secret-from-caller").count(),
        2,
        "{lines}"
    );
    let meta = env.state.join("sessions/cl/meta.json");
    let mode = std::fs::metadata(&meta)
        .expect("record")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!env.log().contains("secret-from-caller"), "{}", env.log());
}

#[test]
fn new_without_a_terminal_fails_before_creating_anything() {
    let env = Env::new();
    let out = env.run(&["new", "x", "--", "sleep", "300"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).starts_with("linger: attaching needs a terminal"),
        "{}",
        stderr(&out)
    );
    assert_eq!(env.run(&["has", "x"]).status.code(), Some(1));
    assert!(!env.socket().exists(), "no server was started");

    let out = env.run(&["new", "x", "echo hi && sleep 5"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("-- sh -c 'echo hi && sleep 5'"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn bare_linger_revives_an_exited_main_and_attaches() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "main",
        "--",
        "sh",
        "-c",
        "echo hello-from-main; exec sleep 300",
    ]);
    wait_text(&env, "main", "hello-from-main");
    env.ok(&["stop", "main"]);
    assert_eq!(session(&env, "main").expect("kept")["state"], "killed");
    let term = env.term(&[], 24, 80);
    term.wait_text("revived at");
    term.wait_output("old output above the new", |o| {
        String::from_utf8_lossy(o)
            .matches("hello-from-main")
            .count()
            == 2
    });
    assert_eq!(session(&env, "main").expect("main")["state"], "running");
    drop(term);

    // Lost with its server (a crash, a reboot): the same, from what reached the disk.
    let screen = env.state.join("sessions/main/screen.txt");
    eventually("the new run's screen on disk", || {
        let saved = std::fs::read_to_string(&screen).ok()?;
        saved.contains("hello-from-main").then_some(())
    });
    let pid = env.server_pid().expect("server pid");
    // SAFETY: kill(2) on the test's own server.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    eventually("server gone", || {
        // SAFETY: signal 0 only checks that the process exists.
        (unsafe { libc::kill(pid, 0) } != 0).then_some(())
    });
    let term = env.term(&[], 24, 80);
    term.wait_output("both earlier runs above the new one", |o| {
        String::from_utf8_lossy(o)
            .matches("hello-from-main")
            .count()
            == 3
    });
    assert_eq!(session(&env, "main").expect("main")["state"], "running");
}

#[test]
fn bare_linger_creates_main_with_the_callers_environment() {
    let env = Env::new();
    let mut cmd = env.cmd();
    cmd.env("FOO", "bare-from-caller");
    let term = common::Term::spawn(cmd, 24, 80);
    term.write(b"echo foo=$FOO\r");
    term.wait_text("foo=bare-from-caller");
}

#[test]
fn an_invalid_detach_key_only_warns_when_attaching() {
    let env = Env::new();
    let with_key = |args: &[&str]| {
        env.cmd()
            .args(args)
            .env("LINGER_DETACH_KEY", "bogus")
            .output()
            .expect("run")
    };
    let out = with_key(&[
        "new",
        "-d",
        "s",
        "--",
        "sh",
        "-c",
        "echo ready-$((1+1)); exec sleep 300",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let out = with_key(&["ls"]);
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        stderr(&out)
    );
    let mut cmd = env.cmd();
    cmd.args(["attach", "s"]).env("LINGER_DETACH_KEY", "bogus");
    let term = common::Term::spawn(cmd, 24, 80);
    term.wait_text("ready-2");
    let text = term.text();
    assert!(
        text.contains("linger: LINGER_DETACH_KEY: invalid detach key 'bogus'"),
        "{text}"
    );
    assert_eq!(text.matches("invalid detach key").count(), 1);
}

#[test]
fn read_only_commands_do_not_start_a_server_for_an_unknown_name() {
    let env = Env::new();
    let cases: [&[&str]; 9] = [
        &["capture", "typo"],
        &["wait", "typo", "--exit"],
        &["log", "typo"],
        &["send", "typo", "x"],
        &["kill", "typo"],
        &["stop", "typo"],
        &["note", "typo"],
        &["attach", "typo"],
        &["rename", "typo", "other"],
    ];
    for args in cases {
        let out = env.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(
            stderr(&out),
            "linger: no session named 'typo' (see `linger ls`)\n",
            "{args:?}"
        );
    }
    let out = env.run(&["has", "typo"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert_eq!(env.ok(&["ls"]), "");
    assert_eq!(env.ok(&["ls", "--json"]).trim(), "[]");
    assert!(!env.socket().exists(), "no server was started");
}

#[test]
fn has_answers_in_any_state_including_after_the_server_is_gone() {
    let env = Env::new();
    env.ok(&["new", "-d", "h", "--", "sh", "-c", "exit 3"]);
    assert_eq!(env.run(&["has", "h"]).status.code(), Some(0));
    assert_eq!(env.run(&["wait", "h", "--exit"]).status.code(), Some(3));
    env.ok(&["kill-server"]);
    let out = env.run(&["has", "h"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    assert!(!env.socket().exists());
}

#[test]
fn ls_shows_the_foreground_process_and_one_word_states() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "sh",
        "--",
        "bash",
        "--norc",
        "--noprofile",
        "-i",
    ]);
    env.ok(&["send", "sh", "--enter", "cd /tmp && sleep 300"]);
    let fg = eventually("sleep in the foreground", || {
        session(&env, "sh").and_then(|s| {
            (s["foreground"]["command"] == serde_json::json!(["sleep", "300"])).then_some(s)
        })
    });
    assert_eq!(fg["foreground"]["cwd"], "/tmp");
    assert!(fg["foreground"]["pid"].as_u64().is_some_and(|p| p > 0));
    assert_eq!(fg["state"], "running");
    assert!(fg["pid"].as_u64().is_some());
    let table = env.ok(&["ls"]);
    let row = table.lines().find(|l| l.starts_with("sh ")).expect("row");
    assert!(row.ends_with("sleep 300"), "{table}");

    env.ok(&["new", "-d", "ex", "--", "sh", "-c", "exit 7"]);
    env.run(&["wait", "ex", "--exit"]);
    let ex = session(&env, "ex").expect("ex");
    assert_eq!(
        (ex["state"].clone(), ex["exit_code"].clone()),
        ("exited".into(), 7.into())
    );
    assert!(ex["pid"].is_null() && ex["foreground"].is_null());
    let row = env
        .ok(&["ls"])
        .lines()
        .find(|l| l.starts_with("ex "))
        .map(String::from);
    let cells: Vec<String> = row
        .expect("row")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(
        (cells[2].as_str(), cells[5].as_str()),
        ("-", "-"),
        "no stale pid or idle"
    );

    env.ok(&["new", "-d", "k", "--", "sleep", "300"]);
    env.ok(&["stop", "k", "--signal", "INT"]);
    let k = session(&env, "k").expect("k");
    assert_eq!(
        (k["state"].clone(), k["signal"].clone()),
        ("killed".into(), "SIGINT".into())
    );
    assert!(k["exit_code"].is_null() && k["pid"].is_null());
}

#[test]
fn attach_d_detaches_every_other_client() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "s",
        "--",
        "sh",
        "-c",
        "echo up-$((2*21)); exec sleep 300",
    ]);
    let mut one = env.term(&["attach", "s"], 24, 80);
    let mut two = env.term(&["attach", "s", "-r"], 24, 80);
    one.wait_text("up-42");
    two.wait_text("up-42");
    let three = env.term(&["attach", "s", "-d"], 24, 80);
    three.wait_text("up-42");
    one.wait_text("[detached from s]");
    two.wait_text("[detached from s]");
    assert!(one.wait_exit().success() && two.wait_exit().success());
    assert_eq!(session(&env, "s").expect("s")["clients"], 1);
}

#[test]
fn log_prints_the_transcript_and_follows_complete_lines() {
    let env = Env::new();
    let prog = "for i in $(seq 1 39); do echo line-$i; done; printf '\\033[31mline-40\\033[m\\n'; \
                read x; echo got-$x; read y; echo got-$y";
    env.ok(&["new", "-d", "lg", "--", "sh", "-c", prog]);
    wait_text(&env, "lg", "^line-40$");
    let log = env.ok(&["log", "lg"]);
    let want: Vec<String> = (1..=40).map(|i| format!("line-{i}")).collect();
    assert_eq!(
        log.lines().collect::<Vec<_>>(),
        want,
        "history then screen, no blank rows"
    );
    let ansi = env.ok(&["log", "lg", "--ansi"]);
    assert!(ansi.contains("\x1b[31mline-40"), "{ansi:?}");

    let mut follow = env
        .cmd()
        .args(["log", "lg", "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("log -f");
    let rx = line_reader(follow.stdout.take().expect("stdout"));
    let next_until = |needle: &str| {
        let deadline = Instant::now() + common::DEADLINE;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {needle}: {seen:?}"));
            if line == needle {
                return seen;
            }
            seen.push(line);
        }
    };
    assert_eq!(next_until("line-40").len(), 39);
    env.ok(&["send", "lg", "--enter", "one"]);
    assert_eq!(
        next_until("got-one"),
        vec!["one"],
        "each line once, in order"
    );
    env.ok(&["send", "lg", "--enter", "two"]);
    assert_eq!(next_until("got-two"), vec!["two"]);
    let start = Instant::now();
    while follow.try_wait().expect("try_wait").is_none() {
        assert!(
            start.elapsed() < common::DEADLINE,
            "log -f did not end with the session"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stop_ends_the_program_but_keeps_the_session() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "st",
        "--",
        "sh",
        "-c",
        "trap '' TERM; echo stubborn; while :; do sleep 1; done",
    ]);
    wait_text(&env, "st", "stubborn");
    env.ok(&["stop", "st"]);
    let s = session(&env, "st").expect("kept");
    assert_eq!(
        (s["state"].clone(), s["signal"].clone()),
        ("killed".into(), "SIGKILL".into())
    );
    assert!(env.ok(&["capture", "st"]).contains("stubborn"));
    assert!(env.state.join("sessions/st/meta.json").exists());
    let out = env.run(&["stop", "st"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("is not running"), "{}", stderr(&out));
}

#[test]
fn rename_moves_the_session_and_its_files() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "old",
        "--",
        "sh",
        "-c",
        "echo kept-$((3*3)); read x; echo typed-$x; exec sleep 300",
    ]);
    wait_text(&env, "old", "kept-9");
    env.ok(&["rename", "old", "new"]);
    assert_eq!(env.run(&["has", "old"]).status.code(), Some(1));
    env.ok(&["send", "new", "--enter", "hi"]);
    wait_text(&env, "new", "typed-hi");
    assert!(env.state.join("sessions/new/meta.json").exists());
    assert!(!env.state.join("sessions/old").exists());
    env.ok(&["new", "-d", "other", "--", "sleep", "300"]);
    let out = env.run(&["rename", "new", "other"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("'other' already exists"),
        "{}",
        stderr(&out)
    );
    env.ok(&["kill-server"]);
    env.ok(&["rename", "new", "again"]);
    let all = env.ok(&["capture", "again", "--all"]);
    assert!(all.contains("kept-9") && all.contains("typed-hi"), "{all}");
    env.ok(&["revive", "again"]);
    assert_eq!(session(&env, "again").expect("again")["state"], "running");
}

#[test]
fn kill_exited_forgets_only_ended_sessions() {
    let env = Env::new();
    env.ok(&["new", "-d", "ex", "--", "sh", "-c", "exit 0"]);
    env.ok(&["new", "-d", "ki", "--", "sleep", "300"]);
    env.ok(&["new", "-d", "run", "--", "sleep", "300"]);
    env.run(&["wait", "ex", "--exit"]);
    env.ok(&["stop", "ki"]);
    assert_eq!(
        env.ok(&["kill", "--exited"]).trim(),
        "forgot 2 exited sessions"
    );
    let names: Vec<_> = sessions(&env).iter().map(|s| s["name"].clone()).collect();
    assert_eq!(names, vec![serde_json::json!("run")]);
    assert!(!env.state.join("sessions/ex").exists());
}

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

#[test]
fn completions_and_man_page() {
    let env = Env::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = env.ok(&["completions", shell]);
        assert!(out.contains("capture") && out.contains("linger"), "{shell}");
    }
    let man = env.ok(&["man"]);
    assert!(man.contains(".TH linger"), "{man}");
    assert_eq!(env.run(&["completions", "tcsh"]).status.code(), Some(2));
}

#[test]
fn config_file_sets_defaults_and_a_bad_one_is_one_clear_line() {
    let env = Env::new();
    let dir = env.home.join(".config/linger");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = dir.join("config.toml");
    let fakebin = env.home.join("fakebin");
    let agent = script(&fakebin, "myagent", "exec sleep 300");
    std::fs::write(
        &file,
        "command = [\"sh\", \"-c\", \"echo from-config; exec sleep 300\"]\nscrollback = 123\ndetach_key = \"nonsense\"\n[resume]\nmyagent = [\"--again\"]\n",
    )
    .expect("config");
    env.ok(&["new", "-d", "c"]);
    wait_text(&env, "c", "from-config");
    env.ok(&[
        "new",
        "-d",
        "a",
        "--",
        agent.to_str().expect("utf-8"),
        "--x",
    ]);
    let a = session(&env, "a").expect("a");
    assert_eq!(
        a["resume_command"],
        serde_json::json!([agent.to_str(), "--x", "--again"])
    );
    let term = env.term(&["attach", "c"], 24, 80);
    term.wait_text("from-config");
    assert!(
        term.text()
            .contains("config.toml: invalid detach key 'nonsense'"),
        "{}",
        term.text()
    );

    std::fs::write(&file, "scrollback = 10\nscrolback = 5\n").expect("config");
    let out = env.run(&["new", "-d", "bad"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&file.display().to_string()) && err.contains("line 2"),
        "{err}"
    );
    assert_eq!(env.run(&["has", "bad"]).status.code(), Some(1));
}

#[test]
fn errors_keep_hints_and_names_print_as_written() {
    let env = Env::new();
    let out = env.run(&["captur", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("'capture'"), "{}", stderr(&out));
    let out = env.run(&["new", "x", "echo", "hi"]);
    assert!(stderr(&out).contains("after --"), "{}", stderr(&out));
    let out = env.run(&["attach", "ün"]);
    assert!(stderr(&out).contains("'ün'"), "{}", stderr(&out));
    env.ok(&["new", "-d", "agent", "--", "sleep", "300"]);
    let term = env.term(&["attach", "agnet"], 24, 80);
    term.wait_text("did you mean 'agent'?");
    let out = env.run(&["capture", "agnet"]);
    assert!(
        stderr(&out).ends_with("; did you mean 'agent'?\n"),
        "{}",
        stderr(&out)
    );
    let help = env.ok(&["--help"]);
    assert!(help.contains("Without a command, linger attaches to the session `main`"));
    for var in [
        "LINGER_DIR",
        "LINGER_STATE_DIR",
        "LINGER_DETACH_KEY",
        "XDG_CONFIG_HOME",
    ] {
        assert!(help.contains(var), "{var}");
    }
    for cmd in [
        "new", "attach", "kill", "stop", "rename", "log", "send", "capture", "wait",
    ] {
        let help = env.ok(&[cmd, "--help"]);
        let args = help.split("Arguments:").nth(1).unwrap_or("");
        for line in args.lines().take_while(|l| !l.is_empty()) {
            assert!(
                line.trim().split_once("  ").is_some(),
                "{cmd}: undescribed {line}"
            );
        }
    }
}

#[test]
fn resume_presets_keep_the_original_flags() {
    let env = Env::new();
    let claude = script(
        &env.home.join("fakebin"),
        "claude",
        "echo \"claude $*\"; exec sleep 300",
    );
    let claude = claude.to_str().expect("utf-8");
    env.ok(&["new", "-d", "cl", "--", claude, "--model", "opus"]);
    wait_text(&env, "cl", "^claude --model opus$");
    env.ok(&["stop", "cl"]);
    env.ok(&["revive", "cl"]);
    wait_text(&env, "cl", "^claude --model opus --continue$");
}

#[test]
fn detach_key_flag_beats_environment_beats_file() {
    let env = Env::new();
    let dir = env.home.join(".config/linger");
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("config.toml"), "detach_key = \"C-a\"\n").expect("config");
    env.ok(&[
        "new",
        "-d",
        "s",
        "--",
        "sh",
        "-c",
        "echo up-$((5*5)); exec sleep 300",
    ]);
    let attach = |flag: &[&str], chord: u8| {
        let mut cmd = env.cmd();
        cmd.args(["attach", "s"])
            .args(flag)
            .env("LINGER_DETACH_KEY", "C-]");
        let mut term = common::Term::spawn(cmd, 24, 80);
        term.wait_text("up-25");
        term.write(&[chord]);
        term.wait_text("[detached from s]");
        assert!(term.wait_exit().success());
    };
    attach(&[], 0x1d);
    attach(&["--detach-key", "C-b"], 0x02);
    let mut cmd = env.cmd();
    cmd.args(["attach", "s"]);
    let mut term = common::Term::spawn(cmd, 24, 80);
    term.wait_text("up-25");
    term.write(&[0x01]);
    term.wait_text("[detached from s]");
    assert!(term.wait_exit().success());
}

#[test]
fn log_follow_ends_when_the_session_is_killed() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "f",
        "--",
        "sh",
        "-c",
        "echo before-kill; exec sleep 300",
    ]);
    wait_text(&env, "f", "before-kill");
    let mut follow = env
        .cmd()
        .args(["log", "f", "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("log -f");
    // Once log -f printed it, the follow has begun: kill only then.
    let lines = line_reader(follow.stdout.take().expect("stdout"));
    let first = lines.recv_timeout(common::DEADLINE).expect("first line");
    assert_eq!(first, "before-kill");
    env.ok(&["kill", "f"]);
    let status = eventually("log -f to end", || follow.try_wait().expect("try_wait"));
    assert!(status.success(), "{status:?}");
}

/// Lines of a child's output as they come, for reads with a deadline.
fn line_reader(out: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}
