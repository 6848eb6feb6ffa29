//! Issue 13 through the real binary: sessions start where and how the user is, the tmux verbs
//! people reach for, scripts that read output, and a first run that just works.

#[path = "../common/mod.rs"]
mod common;
mod first_run;
mod scripts;
mod verbs;

use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;

use common::{Env, eventually};

pub(crate) use common::listed as session;
pub(crate) use common::listed_sessions as sessions;

pub(crate) fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub(crate) fn wait_text(env: &Env, name: &str, regex: &str) -> String {
    env.ok(&["wait", name, "--text", regex, "--timeout", "20s"])
}

/// An executable shell script in `dir`.
pub(crate) fn script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Lines of a child's output as they come, for reads with a deadline.
pub(crate) fn line_reader(out: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
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
    // The old history shows the first run's line; the revived program prints the second.
    eventually("the revived program's line under the first run's", || {
        let lines = env.ok(&["capture", "cl", "--from-line", "0"]);
        (lines.matches("foo=secret-from-caller").count() == 2).then_some(())
    });
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
    let out = env.run(&["new", "-d", "x", "--", "echo hi && sleep 5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("-- sh -c 'echo hi && sleep 5'"),
        "{}",
        stderr(&out)
    );
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
    // The keeper goes too, so the program dies with the server.
    env.kill9_server_and_keeper();
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
