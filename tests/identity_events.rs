//! What linger's terminal tells programs besides answers, through the real binary: focus
//! events only from real clients' terminals, once per change; the clipboard only to the
//! writer at the keyboard; notifications and bells to everyone as written; and synchronized
//! frames never split by an attach.

mod common;

use common::{Env, Term};

/// Logs every byte the program reads (hex, one read per line) to the file in argv[1], after
/// setting the mode in argv[2] if any, and prints READY.
const LOGGER: &str = r#"
import os, sys
os.system("stty raw -echo")
if len(sys.argv) > 2:
    os.write(1, sys.argv[2].encode().decode("unicode_escape").encode())
out = open(sys.argv[1], "w")
os.write(1, b"READY\r\n")
while True:
    data = os.read(0, 4096)
    if not data:
        break
    out.write(data.hex() + "\n")
    out.flush()
"#;

/// Everything the logger read so far.
fn read_log(env: &Env) -> Vec<u8> {
    let text = std::fs::read_to_string(env.home.join("input.log")).unwrap_or_default();
    text.split_whitespace()
        .flat_map(|hex| {
            (0..hex.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                .collect::<Vec<u8>>()
        })
        .collect()
}

/// Waits until the program has read `marker` (typed after the events under test, so all of
/// them were handled) and returns everything it read.
fn read_until(env: &Env, marker: &[u8]) -> Vec<u8> {
    common::eventually(&format!("the program to read {marker:?}"), || {
        let log = read_log(env);
        common::contains(&log, marker).then_some(log)
    })
}

fn start_logger(env: &Env, name: &str, mode: &str) {
    let script = env.home.join("logger.py");
    std::fs::write(&script, LOGGER).expect("logger");
    let log = env.home.join("input.log");
    let (script, log) = (common::path_str(&script), common::path_str(&log));
    env.ok(&["new", "-d", name, "--", "python3", script, log, mode]);
    env.ok(&["wait", name, "--text", "READY", "--timeout", "20s"]);
}

fn attach(env: &Env, args: &[&str]) -> Term {
    let term = env.term(args, 24, 80);
    term.wait_text("READY");
    term
}

#[test]
fn focus_reaches_a_program_once_per_change_and_only_from_real_clients() {
    let env = Env::new();
    start_logger(&env, "f", "\\x1b[?1004h");
    // A writer that attaches has focus: the user typed the attach in that terminal.
    let writer = attach(&env, &["attach", "f"]);
    writer.write(b"a");
    assert_eq!(read_until(&env, b"a"), b"\x1b[Ia");
    // The viewer's terminal focus is not the program's business.
    let viewer = attach(&env, &["attach", "-r", "f"]);
    viewer.write(b"\x1b[O");
    writer.write(b"b");
    assert_eq!(
        read_until(&env, b"b"),
        b"\x1b[Iab",
        "a viewer's focus reached the program"
    );
    // The writer's terminal reports focus it already had, then loses it; keys stay keys.
    writer.write(b"\x1b[I");
    writer.write(b"c\x1b[Id");
    writer.write(b"\x1b[O");
    writer.write(b"e");
    assert_eq!(
        read_until(&env, b"e"),
        b"\x1b[Iabcd\x1b[Oe",
        "one report per change"
    );
    // `send` never fakes focus.
    env.ok(&["send", "f", "g"]);
    assert_eq!(read_until(&env, b"g"), b"\x1b[Iabcd\x1b[Oeg");
    // Focus again, then the last writer goes: the program hears it lose focus.
    writer.write(b"\x1b[I");
    writer.write(b"h");
    read_until(&env, b"h");
    drop(writer);
    let log = common::eventually("a focus-out after the last writer left", || {
        let log = read_log(&env);
        log.ends_with(b"\x1b[O").then_some(log)
    });
    assert_eq!(log, b"\x1b[Iabcd\x1b[Oeg\x1b[Ih\x1b[O");
    drop(viewer);
}

#[test]
fn a_program_that_did_not_ask_for_focus_gets_no_reports() {
    let env = Env::new();
    start_logger(&env, "nf", "");
    let writer = attach(&env, &["attach", "nf"]);
    writer.write(b"\x1b[I");
    writer.write(b"x\x1b[O");
    writer.write(b"y");
    assert_eq!(read_until(&env, b"y"), b"xy");
}

/// Echoes each line it reads as an OSC 52 clipboard write, then `DONE-<line>`.
const CLIPBOARD: &str =
    r"stty -echo; echo READY; while read x; do printf '\033]52;c;%s\007DONE-%s\n' $x $x; done";

#[test]
fn the_clipboard_goes_to_the_writer_at_the_keyboard_only() {
    let env = Env::new();
    env.ok(&["new", "-d", "c", "--", "sh", "-c", CLIPBOARD]);
    env.ok(&["wait", "c", "--text", "READY", "--timeout", "20s"]);
    let first = attach(&env, &["attach", "c"]);
    let viewer = attach(&env, &["attach", "-r", "c"]);
    let second = attach(&env, &["attach", "c"]);
    // Nobody typed yet: the writer that attached last owns the clipboard.
    env.ok(&["send", "c", "--enter", "QUFB"]);
    for t in [&first, &viewer, &second] {
        t.wait_text("DONE-QUFB");
    }
    assert!(second.text().contains("\x1b]52;c;QUFB\x07"));
    assert!(!first.text().contains("52;c;QUFB"), "an earlier writer");
    assert!(!viewer.text().contains("52;c;QUFB"), "a viewer");
    // The first writer types: the clipboard follows the keyboard.
    first.write(b"QkJC\r");
    for t in [&first, &viewer, &second] {
        t.wait_text("DONE-QkJC");
    }
    assert!(first.text().contains("\x1b]52;c;QkJC\x07"));
    assert!(!second.text().contains("52;c;QkJC"));
    assert!(!viewer.text().contains("52;c;QkJC"));
}

#[test]
fn notifications_and_bells_reach_every_client_as_written() {
    let env = Env::new();
    env.ok(&["new", "-d", "n", "--", "sh", "-c", "stty -echo; echo READY; read x; \
        printf '\\033]9;nine\\007\\033]777;notify;Title;Body\\033\\\\\\033]99;i=1;ninety\\033\\\\\\007BELL-DONE\\n'; exec sleep 1000"]);
    env.ok(&["wait", "n", "--text", "READY", "--timeout", "20s"]);
    let writer = attach(&env, &["attach", "n"]);
    let viewer = attach(&env, &["attach", "-r", "n"]);
    env.ok(&["send", "n", "--enter", "go"]);
    let written =
        "\x1b]9;nine\x07\x1b]777;notify;Title;Body\x1b\\\x1b]99;i=1;ninety\x1b\\\x07BELL-DONE";
    writer.wait_text("BELL-DONE");
    viewer.wait_text("BELL-DONE");
    assert!(writer.text().contains(written), "{:?}", writer.text());
    assert!(viewer.text().contains(written), "{:?}", viewer.text());
}

/// Starts a frame, draws its first half, and finishes it (second half, end of frame) only
/// after reading a line.
const HALF_FRAME: &str = r"stty -echo; printf '\033[?2026h\033[2J\033[HHALF-ONE\n'; read x; printf 'HALF-TWO\n\033[?2026l'; exec sleep 1000";

#[test]
fn an_attach_mid_frame_waits_for_the_frame_to_end() {
    let env = Env::new();
    // The test's own steps (seeing the attach wait, sending the line) may take longer than a
    // frame may: stretch the wait so only the frame's end can release the attach.
    let out = env
        .cmd()
        .env("LINGER_TEST_FRAME_WAIT_MS", "20000")
        .args(["new", "-d", "fr", "--", "sh", "-c", HALF_FRAME])
        .output()
        .expect("linger new");
    assert!(out.status.success(), "{out:?}");
    env.wait_capture("fr", "the first half", |s| s.contains("HALF-ONE"));
    let client = env.term(&["attach", "fr"], 24, 80);
    common::eventually("the attach to wait for the frame", || {
        env.log()
            .contains("an attach waits for the program's frame to end")
            .then_some(())
    });
    assert!(
        !client.text().contains("HALF-ONE"),
        "half a frame was shown"
    );
    env.ok(&["send", "fr", "--enter", "go"]);
    client.wait_text("HALF-TWO");
    let text = client.text();
    let one = text.find("HALF-ONE").expect("the first half");
    assert!(one < text.find("HALF-TWO").expect("the second half"));
}

#[test]
fn a_frame_that_never_ends_holds_an_attach_only_briefly() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "stuck",
        "--",
        "sh",
        "-c",
        r"printf '\033[?2026hSTUCK-IN-FRAME\n'; exec sleep 1000",
    ]);
    env.wait_capture("stuck", "the frame's start", |s| s.contains("STUCK"));
    let client = env.term(&["attach", "stuck"], 24, 80);
    client.wait_text("STUCK-IN-FRAME");
}

#[test]
fn a_slow_terminals_late_answers_never_reach_the_shell_after_a_failed_attach() {
    let env = Env::new();
    env.ok(&["new", "-d", "up", "--", "sleep", "1000"]);
    let linger = env.cmd();
    // Takes `env.cmd()`'s environment: the same sandbox (LINGER_DIR, LINGER_STATE_DIR, HOME).
    let mut cmd = std::process::Command::new("sh");
    for (k, v) in linger.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.arg("-c").arg(format!(
        "'{}' attach nosuch; echo AFTER; read -r line; echo \"GOT:$line:\"",
        common::bin().display()
    ));
    // A terminal over a link with most of a second's round trip (a satellite, a congested
    // mobile link).
    let term = Term::spawn_answering_after(cmd, 24, 80, std::time::Duration::from_millis(800));
    term.wait_text("AFTER");
    common::eventually("the terminal's late answer", || {
        (term.answers_written() > 0).then_some(())
    });
    term.write(b"typed\n");
    term.wait_text("GOT:");
    assert!(
        term.text().contains("GOT:typed:"),
        "the terminal's late answer reached the shell: {:?}",
        term.text()
    );
}

/// Logs the answer (hex) to the background colour query its shell asked as it started.
const READ_BACKGROUND: &str = r#"
import os, sys, select, time
os.system("stty raw -echo")
got, deadline = b"", time.time() + 5
while b"c" not in got.rsplit(b"[?", 1)[-1] and time.time() < deadline:
    if select.select([0], [], [], 0.1)[0]:
        got += os.read(0, 4096)
open(sys.argv[1], "w").write(got.hex())
os.write(1, b"ASKED\r\n")
time.sleep(1000)
"#;

#[test]
fn a_program_started_by_an_attach_that_creates_hears_that_terminals_colours_first() {
    let env = Env::new();
    // The server is up already, so the session starts at once.
    env.ok(&["new", "-d", "up", "--", "sleep", "1000"]);
    let script = env.home.join("read.py");
    std::fs::write(&script, READ_BACKGROUND).expect("script");
    for (i, how) in [&["new"][..], &["attach", "--create"]]
        .into_iter()
        .enumerate()
    {
        let log = env.home.join(format!("bg-{i}.txt"));
        // printf is built in: the question goes out within moments of the start.
        let ask = format!(
            r"printf '\033]11;?\033\\\033[c'; exec python3 {} {}",
            common::path_str(&script),
            common::path_str(&log)
        );
        let name = format!("bg-{i}");
        let mut cmd = env.cmd();
        cmd.args(how).args([name.as_str(), "--", "sh", "-c", &ask]);
        // A terminal that answers late: the program must still hear it, not the default.
        let term = Term::spawn_answering_after(cmd, 24, 80, std::time::Duration::from_millis(120));
        term.wait_text("ASKED");
        let hex = std::fs::read_to_string(&log).expect("the answer");
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
            .collect();
        assert!(
            common::contains(&bytes, common::TERMINAL_BACKGROUND_ANSWER),
            "{how:?}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
}
