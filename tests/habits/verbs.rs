//! The tmux verbs people reach for: has, ls with the foreground process, attach -d, log, stop,
//! rename, kill --exited.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{self, Env, eventually};
use crate::{line_reader, session, sessions, stderr, wait_text};

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

#[test]
fn log_follow_says_which_lines_it_could_not_print_in_a_flood() {
    // 100 lines of history and 200,000 lines at full speed: most leave the history between
    // two looks, and the follower says so instead of skipping them silently.
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "fl",
        "--scrollback",
        "100",
        "--",
        "sh",
        "-c",
        "echo READY; read go; seq 1 200000; echo FLOOD-END; exec sleep 300",
    ]);
    wait_text(&env, "fl", "READY");
    let mut follow = env
        .cmd()
        .args(["log", "fl", "-f"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("log -f");
    let lines = line_reader(follow.stdout.take().expect("stdout"));
    // Once log -f printed READY, the follow has begun: the flood starts only then.
    let first = lines.recv_timeout(common::DEADLINE).expect("first line");
    assert_eq!(first, "READY");
    env.ok(&["send", "fl", "--enter", "go"]);
    while lines.recv_timeout(common::DEADLINE).expect("a line") != "FLOOD-END" {}
    env.ok(&["kill", "fl"]);
    let out = follow.wait_with_output().expect("log -f");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("left the history before they could be printed"),
        "{err}"
    );
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

#[test]
fn rename_to_its_own_name_does_nothing_and_ls_keeps_one_row_per_session() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "nl",
        "--",
        "sh",
        "-c",
        "echo a\nexec sleep 300",
    ]);
    env.ok(&["rename", "nl", "nl"]);
    let missing = env.run(&["rename", "zz", "zz"]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    let table = env.ok(&["ls"]);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(table.contains("echo a\\nexec sleep 300"), "{table}");
}
