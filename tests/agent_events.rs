//! `linger events` and the config file's hooks and screen rules, through the real binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{Env, eventually};

/// `linger` with a config file of its own (the server started by the first such command reads
/// it too).
fn with_config(env: &Env, config: &str) -> impl Fn(&[&str]) -> std::process::Output {
    let dir = env.home.join(".config");
    std::fs::create_dir_all(dir.join("linger")).expect("config dir");
    std::fs::write(dir.join("linger/config.toml"), config).expect("config");
    move |args: &[&str]| {
        env.cmd()
            .env("XDG_CONFIG_HOME", &dir)
            .args(args)
            .output()
            .expect("run linger")
    }
}

/// Waits (through `linger`, with its config) until the agent of `name` is in `state`.
fn wait_state(linger: &impl Fn(&[&str]) -> std::process::Output, name: &str, state: &str) {
    ok(linger(&[
        "wait",
        name,
        "--state",
        state,
        "--timeout",
        "20s",
    ]));
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "linger failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `linger events --json` and the lines it printed.
struct Subscriber {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
    seen: Vec<serde_json::Value>,
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Subscriber {
    /// Starts `events --json ARGS` and makes sure it is subscribed: sessions `ready-N` are
    /// created until one's `created` event arrives.
    fn start(env: &Env, args: &[&str]) -> Subscriber {
        let mut child = env
            .cmd()
            .args(["events", "--json"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("events");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let value = serde_json::from_str(&line).expect("events --json prints JSON lines");
                if tx.send(value).is_err() {
                    return;
                }
            }
        });
        let mut sub = Subscriber {
            child,
            lines,
            seen: Vec::new(),
        };
        if args.is_empty() {
            for n in 0.. {
                let name = format!("ready-{n}");
                env.ok(&["new", "-d", &name, "--", "sleep", "1000"]);
                let got =
                    sub.next_within(Duration::from_secs(2), |e| e["session"] == name.as_str());
                env.ok(&["kill", &name]);
                if got.is_some() {
                    break;
                }
            }
        }
        sub
    }

    /// The next event that satisfies `pred`, within `limit`; every event read is kept.
    fn next_within(
        &mut self,
        limit: Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let event = self.lines.recv_timeout(left).ok()?;
            self.seen.push(event.clone());
            if pred(&event) {
                return Some(event);
            }
        }
    }

    fn expect(
        &mut self,
        what: &str,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        self.next_within(common::DEADLINE, pred)
            .unwrap_or_else(|| panic!("no {what} event; saw {:?}", self.seen))
    }
}

#[test]
fn events_see_created_state_attention_and_exit_in_order() {
    let env = Env::new();
    let mut sub = Subscriber::start(&env, &[]);
    sub.seen.clear();
    env.ok(&["new", "-d", "ev", "--", "python3", "-c", common::FAKE_AGENT]);
    let of =
        |kind: &'static str| move |e: &serde_json::Value| e["session"] == "ev" && e["kind"] == kind;
    let created = sub.expect("created", of("created"));
    assert_eq!(created["state"], "running");
    assert!(
        created["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{created}"
    );
    sub.expect("idle", |e| {
        e["session"] == "ev" && e["kind"] == "state" && e["state"] == "idle"
    });
    env.ok(&["send", "ev", "--enter", "work"]);
    sub.expect("working", |e| {
        e["kind"] == "state" && e["state"] == "working"
    });
    env.ok(&["send", "ev", "--enter", "ask"]);
    let waiting = sub.expect("waiting", |e| {
        e["kind"] == "state" && e["state"] == "waiting"
    });
    assert_eq!(waiting["reason"], "Fake Agent needs your permission");
    let attention = sub.expect("attention", of("attention"));
    assert_eq!(attention["message"], "Fake Agent needs your permission");
    env.ok(&["send", "ev", "--enter", "exit"]);
    let exited = sub.expect("exited", of("exited"));
    assert_eq!(
        (exited["state"].clone(), exited["message"].clone()),
        ("exited".into(), "[ev exited with 3]".into())
    );
    let kinds: Vec<&str> = sub
        .seen
        .iter()
        .filter(|e| e["session"] == "ev")
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"created"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"exited"), "{kinds:?}");
    let keys: Vec<&String> = created.as_object().expect("object").keys().collect();
    assert_eq!(keys.len(), 6, "{created}");
}

#[test]
fn events_for_named_sessions_only() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "mine",
        "--",
        "python3",
        "-c",
        common::FAKE_AGENT,
    ]);
    env.ok(&[
        "new",
        "-d",
        "other",
        "--",
        "python3",
        "-c",
        common::FAKE_AGENT,
    ]);
    env.wait_state("mine", "idle");
    let mut sub = Subscriber::start(&env, &["mine"]);
    // Subscribed once a report made for the purpose arrives.
    eventually("the subscription", || {
        env.ok(&["status", "mine", "waiting", "--reason", "probe"]);
        sub.next_within(Duration::from_millis(500), |e| e["reason"] == "probe")
    });
    env.ok(&["status", "other", "working"]);
    env.ok(&["status", "mine", "working", "--reason", "marker"]);
    sub.expect("marker", |e| e["reason"] == "marker");
    assert!(
        sub.seen.iter().all(|e| e["session"] == "mine"),
        "{:?}",
        sub.seen
    );
    // Bad names are refused at once.
    let out = env.run(&["events", "-bad"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn screen_rules_from_the_config_file_and_built_in() {
    let env = Env::new();
    let linger = with_config(
        &env,
        "[[rules]]\npattern = 'PLEASE CONFIRM'\nstate = 'waiting'\nreason = 'confirm'\n",
    );
    ok(linger(&[
        "new",
        "-d",
        "r",
        "--",
        "python3",
        "-c",
        common::FAKE_AGENT,
    ]));
    wait_state(&linger, "r", "idle");
    ok(linger(&["send", "r", "--enter", "confirm"]));
    wait_state(&linger, "r", "waiting");
    let agent = common::listed(&env, "r").expect("r")["agent"].clone();
    assert_eq!(agent["reason"], "confirm", "{agent}");
    // Gone from the screen: the title (idle) counts again.
    ok(linger(&["send", "r", "--enter", "clear"]));
    wait_state(&linger, "r", "idle");

    // A built-in rule, for a program that is Claude Code by its name.
    let script = env.home.join("claude");
    std::fs::write(
        &script,
        "import sys, time\nsys.stdout.write(' Bash command\\r\\n Do you want to proceed?\\r\\n ❯ 1. Yes\\r\\n')\nsys.stdout.flush()\ntime.sleep(1000)\n",
    )
    .expect("script");
    ok(linger(&[
        "new",
        "-d",
        "cl",
        "--",
        "python3",
        common::path_str(&script),
    ]));
    wait_state(&linger, "cl", "waiting");
    let agent = common::listed(&env, "cl").expect("cl")["agent"].clone();
    assert_eq!(
        (agent["kind"].clone(), agent["reason"].clone()),
        ("claude".into(), "permission".into())
    );

    // A bad rule is one clear line naming the file.
    let bad = with_config(&env, "[[rules]]\npattern = '('\nstate = 'waiting'\n");
    let out = bad(&["new", "-d", "x", "--", "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("rule 1") && err.contains("config.toml"),
        "{err}"
    );
}

#[test]
fn hooks_run_with_the_event_in_their_environment_and_a_hanging_one_delays_nothing() {
    let env = Env::new();
    let file = env.home.join("hooks.txt");
    let config = format!(
        "[hooks]\ncreated = 'sleep 100000'\nattention = 'echo \"$LINGER_EVENT $LINGER_SESSION $LINGER_STATE $LINGER_REASON\" >> {}'\nexited = 'exit 7'\ntimeout = '3s'\n",
        file.display()
    );
    let linger = with_config(&env, &config);
    ok(linger(&[
        "new",
        "-d",
        "h",
        "--",
        "python3",
        "-c",
        common::FAKE_AGENT,
    ]));
    // The created hook hangs; the session answers, reads, and its attention hook runs.
    ok(linger(&[
        "wait",
        "h",
        "--text",
        "ready",
        "--timeout",
        "20s",
    ]));
    ok(linger(&["send", "h", "--enter", "ask"]));
    wait_state(&linger, "h", "waiting");
    let line = eventually("the attention hook", || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| t.ends_with('\n'))
    });
    assert_eq!(
        line,
        "attention h waiting Fake Agent needs your permission\n"
    );
    // The hanging hook is killed after its timeout; a failing one is logged.
    eventually("the hung hook killed", || {
        env.log()
            .contains("created hook for session h ran longer than 3s and was killed")
            .then_some(())
    });
    ok(linger(&["send", "h", "--enter", "exit"]));
    eventually("the failed hook logged", || {
        env.log()
            .contains("exited hook for session h failed")
            .then_some(())
    });
}

#[test]
fn hooks_run_for_lost_and_revived_sessions_and_at_most_eight_at_once() {
    let env = Env::new();
    let file = env.home.join("hooks.txt");
    let config = format!(
        "[hooks]\nlost = 'echo \"$LINGER_EVENT $LINGER_SESSION $LINGER_STATE\" >> {f}'\nrevived = 'echo \"$LINGER_EVENT $LINGER_SESSION $LINGER_STATE\" >> {f}'\ncreated = 'exec sleep 60'\ntimeout = '60s'\n",
        f = file.display()
    );
    let linger = with_config(&env, &config);
    ok(linger(&["new", "-d", "l", "--", "sleep", "1000"]));
    let record = env.state.join("sessions/l/meta.json");
    eventually("the record on disk", || record.exists().then_some(()));
    // The keeper goes too, so that the program dies with the server and its session is lost.
    env.kill9_server_and_keeper();
    ok(linger(&["ls"]));
    ok(linger(&["revive", "l"]));
    let text = eventually("the lost and revived hooks", || {
        std::fs::read_to_string(&file)
            .ok()
            .filter(|t| t.lines().count() == 2)
    });
    assert_eq!(text, "lost l lost\nrevived l running\n");
    // Each `created` hook hangs: the ninth finds eight running and is skipped, and the
    // sessions do not care.
    for i in 0..9 {
        ok(linger(&[
            "new",
            "-d",
            &format!("c{i}"),
            "--",
            "sleep",
            "1000",
        ]));
    }
    eventually("a hook skipped", || {
        env.log()
            .contains("hook for created of session c8 skipped: 8 hooks are still running")
            .then_some(())
    });
    ok(linger(&["send", "c8", "--enter", "still answering"]));
}

#[test]
fn events_as_text_are_one_line_each() {
    let env = Env::new();
    env.ok(&["new", "-d", "t", "--", "sleep", "1000"]);
    let mut child = env
        .cmd()
        .args(["events", "t"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("events");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let line = eventually("a state line", || {
        env.ok(&["status", "t", "waiting", "--reason", "a question"]);
        let line = lines.recv_timeout(Duration::from_millis(500)).ok()?;
        line.contains("a question").then_some(line)
    });
    let _ = child.kill();
    let _ = child.wait();
    let (time, rest) = line.split_once(' ').expect("time first");
    assert!(time.ends_with('Z') && time.len() == 24, "{line}");
    assert!(
        rest == "t state waiting: a question" || rest == "t attention waiting: a question",
        "{line}"
    );
}
