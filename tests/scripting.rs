//! The scripting surface: send, capture and wait, as scripts and orchestrators use them.

mod common;

use common::Env;

fn wait_text(env: &Env, name: &str, regex: &str) -> String {
    env.ok(&["wait", name, "--text", regex, "--timeout", "20s"])
}

#[test]
fn send_wait_capture_round_trip() {
    let env = Env::new();
    env.ok(&["new", "-d", "b", "--", "bash", "--norc", "--noprofile"]);
    env.ok(&["send", "b", "--enter", "echo hi-$((6*7))"]);
    let matched = wait_text(&env, "b", "^hi-42$");
    assert_eq!(matched.trim(), "hi-42");
    let screen = env.ok(&["capture", "b"]);
    assert!(screen.lines().any(|l| l == "hi-42"), "{screen}");
    assert_eq!(screen.lines().count(), 24, "one line per row");
}

const LOGGER: &str = r#"
import os, sys
sys.stdout.write("\x1b[?2004h")
sys.stdout.flush()
os.system("stty raw -echo")
print("READY", end="\r\n", flush=True)
while True:
    data = os.read(0, 4096)
    if not data:
        break
    print("READ " + data.hex(), end="\r\n", flush=True)
"#;

#[test]
fn multi_line_send_is_one_bracketed_paste_and_enter_is_separate() {
    let env = Env::new();
    env.ok(&["new", "-d", "log", "--", "python3", "-c", LOGGER]);
    wait_text(&env, "log", "READY");
    env.ok(&["send", "log", "--enter", "a\nb"]);
    wait_text(&env, "log", "^READ 0d$");
    let screen = env.ok(&["capture", "log"]);
    let reads: Vec<&str> = screen
        .lines()
        .filter_map(|l| l.strip_prefix("READ "))
        .collect();
    let paste = "1b5b3230307e610a621b5b3230317e";
    assert_eq!(reads.concat(), format!("{paste}0d"), "{screen}");
    assert_eq!(
        reads.last(),
        Some(&"0d"),
        "Enter arrived in its own read: {reads:?}"
    );
}

#[test]
fn single_line_without_paste_mode_is_typed() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "typed",
        "--",
        "python3",
        "-c",
        &LOGGER.replace("\\x1b[?2004h", ""),
    ]);
    wait_text(&env, "typed", "READY");
    env.ok(&["send", "typed", "a\nb"]);
    wait_text(&env, "typed", "READ");
    let screen = env.ok(&["capture", "typed"]);
    let reads: String = screen
        .lines()
        .filter_map(|l| l.strip_prefix("READ "))
        .collect();
    assert_eq!(reads, "610a62");
}

#[test]
fn keys_interrupt_a_running_command() {
    let env = Env::new();
    env.ok(&["new", "-d", "k", "--", "bash", "--norc", "--noprofile"]);
    env.ok(&["send", "k", "--enter", "sleep 1000; echo not-interrupted"]);
    env.ok(&["wait", "k", "--idle", "300ms", "--timeout", "20s"]);
    env.ok(&["send", "k", "--keys", "C-c"]);
    env.ok(&["send", "k", "--enter", "echo after-$((1+1))"]);
    wait_text(&env, "k", "^after-2$");
    assert!(
        !env.ok(&["capture", "k"])
            .lines()
            .any(|l| l == "not-interrupted")
    );
}

#[test]
fn unknown_key_is_an_error() {
    let env = Env::new();
    env.ok(&["new", "-d", "k", "--", "sleep", "1000"]);
    let out = env.run(&["send", "k", "--keys", "Hyper-Q"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key"));
}

#[test]
fn from_line_returns_only_new_lines() {
    let env = Env::new();
    env.ok(&["new", "-d", "inc", "--", "bash", "--norc", "--noprofile"]);
    env.ok(&["send", "inc", "--enter", "seq 1 60"]);
    wait_text(&env, "inc", "^60$");
    let first: serde_json::Value =
        serde_json::from_str(&env.ok(&["capture", "inc", "--all", "--json"])).unwrap();
    let next = first["next_line"].as_u64().unwrap();
    let history = first["history"].as_array().unwrap();
    assert!(!history.is_empty());
    for pair in history.windows(2) {
        assert_eq!(
            pair[1]["line"].as_u64().unwrap(),
            pair[0]["line"].as_u64().unwrap() + 1
        );
    }
    env.ok(&["send", "inc", "--enter", "seq 1000 1040"]);
    wait_text(&env, "inc", "^1040$");
    let second: serde_json::Value = serde_json::from_str(&env.ok(&[
        "capture",
        "inc",
        "--json",
        "--from-line",
        &next.to_string(),
    ]))
    .unwrap();
    let lines = second["history"].as_array().unwrap();
    assert!(!lines.is_empty());
    assert_eq!(lines[0]["line"].as_u64().unwrap(), next);
    let texts: Vec<&str> = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert!(
        !texts.contains(&"5"),
        "old lines were not repeated: {texts:?}"
    );
    assert!(texts.contains(&"1000"), "{texts:?}");
}

#[test]
fn wait_timeout_exits_124_with_one_line() {
    let env = Env::new();
    env.ok(&["new", "-d", "t", "--", "sleep", "1000"]);
    let out = env.run(&["wait", "t", "--text", "never", "--timeout", "200ms"]);
    assert_eq!(out.status.code(), Some(124));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("linger: ") && err.contains("never") && err.lines().count() == 1,
        "{err}"
    );
    let out = env.run(&["wait", "t", "--exit", "--timeout", "1x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn wait_exit_returns_the_exit_code() {
    let env = Env::new();
    env.ok(&["new", "-d", "e", "--", "sh", "-c", "read x; exit 42"]);
    let waiter = env
        .cmd()
        .args(["wait", "e", "--exit", "--timeout", "20s"])
        .spawn()
        .unwrap();
    env.ok(&["send", "e", "--enter", ""]);
    let status = waiter.wait_with_output().unwrap().status;
    assert_eq!(status.code(), Some(42));
    // After the fact, too.
    assert_eq!(env.run(&["wait", "e", "--exit"]).status.code(), Some(42));
}

#[test]
fn wait_idle_returns_once_output_stops() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "i",
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo tick; sleep 0.1; done; exec sleep 1000",
    ]);
    env.ok(&["wait", "i", "--idle", "500ms", "--timeout", "20s"]);
    let ticks = env.ok(&["capture", "i"]).matches("tick").count();
    assert_eq!(ticks, 5, "idle came after the last tick");
}

#[test]
fn capture_json_has_the_cursor_where_the_app_left_it() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "j",
        "--",
        "sh",
        "-c",
        "printf '\\033]2;the title\\007\\033[5;7Hxy'; exec sleep 1000",
    ]);
    wait_text(&env, "j", "xy");
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["capture", "j", "--json"])).unwrap();
    assert_eq!(v["name"], "j");
    assert_eq!(v["cursor"]["row"], 4);
    assert_eq!(v["cursor"]["col"], 8);
    assert_eq!(v["cursor"]["visible"], true);
    assert_eq!(v["title"], "the title");
    assert_eq!(v["alternate_screen"], false);
    assert_eq!(v["rows"], 24);
    assert_eq!(v["screen"].as_array().unwrap().len(), 24);
    assert_eq!(v["screen"][4], "      xy");
}

/// A wide char that no longer fits in the last column goes on to the next row and leaves
/// that cell unprinted: the logical line has no space there (as tmux's `capture-pane -J`),
/// so `wait --text` finds the line as printed.
#[test]
fn a_wide_char_wrapped_early_leaves_no_space_in_the_line() {
    let env = Env::new();
    let line = format!("E: {}", "漢".repeat(45));
    env.new_sh("w", &format!("printf '%s\\n' '{line}'; exec sleep 1000"));
    wait_text(&env, "w", "漢{45}");
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["capture", "w", "--json"])).expect("capture --json is JSON");
    assert_eq!(v["lines"][0]["text"], line.as_str());
}

#[test]
fn capture_ansi_keeps_colour() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "c",
        "--",
        "sh",
        "-c",
        "printf '\\033[31mred\\033[m\\n'; exec sleep 1000",
    ]);
    wait_text(&env, "c", "red");
    assert!(env.ok(&["capture", "c", "--ansi"]).contains("\x1b[31mred"));
    assert!(!env.ok(&["capture", "c"]).contains('\x1b'));
}

#[test]
fn many_concurrent_waiters_on_many_sessions() {
    let env = Env::new();
    for i in 0..10 {
        env.ok(&[
            "new",
            "-d",
            &format!("w{i}"),
            "--",
            "sh",
            "-c",
            &format!("read x; echo GO-{i}-DONE; exec sleep 1000"),
        ]);
    }
    let waiters: Vec<_> = (0..100)
        .map(|n| {
            let i = n % 10;
            let child = env
                .cmd()
                .args([
                    "wait",
                    &format!("w{i}"),
                    "--text",
                    &format!("GO-{i}-DONE"),
                    "--timeout",
                    "60s",
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            (i, child)
        })
        .collect();
    // Every waiter is registered before the text appears (or sees it on screen after).
    for i in 0..10 {
        env.ok(&["send", &format!("w{i}"), "--enter", ""]);
    }
    for (i, child) in waiters {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "waiter on w{i}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("GO-{i}-DONE")
        );
    }
}

#[test]
fn library_client_drives_a_session() {
    let env = Env::new();
    // `connect_with` would start a server with this process's environment, i.e. the user's real
    // state dir: start it through the sandboxed CLI first, so the library only connects.
    env.ok(&["ls"]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = linger::Client::connect_with(&env.dir, &common::bin())
            .await
            .unwrap_or_else(|e| panic!("{e}: {}", env.log()));
        client
            .create(linger::protocol::SessionSpec {
                name: "lib".into(),
                command: vec!["sh".into()],
                cwd: "/".into(),
                env: vec![],
                scrollback: 100,
                rows: 24,
                cols: 80,
                ..Default::default()
            })
            .await
            .unwrap();
        client
            .send("lib", b"echo lib-$((2+3))", false, true)
            .await
            .unwrap();
        let outcome = client
            .wait(
                "lib",
                linger::protocol::WaitCondition::Text {
                    regex: "^lib-5$".into(),
                    from_line: None,
                    new: false,
                },
                Some(std::time::Duration::from_secs(20)),
            )
            .await
            .unwrap();
        assert_eq!(
            outcome,
            linger::client::WaitOutcome::Done {
                line: "lib-5".into(),
                exit_code: None
            }
        );
        let sessions = client.list().await.unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].name, "lib");
        client.kill("lib", None).await.unwrap();
        assert!(client.list().await.unwrap().is_empty());
        assert!(client.kill("lib", None).await.is_err());
    });
}

/// Reads its input only 4 s after it said READY, then prints what it read, in hex.
const LATE_READER: &str = r#"
import os, time
os.system("stty raw -echo")
print("READY", end="\r\n", flush=True)
time.sleep(4)
while True:
    data = os.read(0, 4096)
    print("READ " + data.hex(), end="\r\n", flush=True)
"#;

#[test]
fn a_send_whose_bytes_all_reached_the_program_succeeds_even_if_it_reads_them_later() {
    // The bytes are in the program's input when the timeout comes: failing would make a
    // script retry and type them twice.
    let env = Env::new();
    env.ok(&["new", "-d", "late", "--", "python3", "-c", LATE_READER]);
    wait_text(&env, "late", "^READY$");
    let out = env.run(&["send", "late", "--timeout", "1s", "hello"]);
    assert!(out.status.success(), "{out:?}");
    // With --enter: the Enter goes at the timeout, unread text or not, and is written.
    let out = env.run(&["send", "late", "--enter", "--timeout", "1s", "bye"]);
    assert!(out.status.success(), "{out:?}");
    wait_text(&env, "late", "^READ .*0d$");
    let screen = env.ok(&["capture", "late"]);
    let read: String = screen
        .lines()
        .filter_map(|l| l.strip_prefix("READ "))
        .collect();
    assert_eq!(read, "68656c6c6f".to_owned() + "6279650d", "{screen}");
}
