//! Attach and send the way people use them: typing and resizing while output streams, two
//! scripts sending at once, large pastes, programs that stop reading, clients that fall behind
//! or whose terminal blocks, servers that stop answering. The trial counts the issue
//! reproduced with run behind `--ignored` (`cargo test -- --ignored`, which CI runs).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Env, eventually};

/// A program streaming without pause (like an agent's output) that logs what is typed to a
/// file.
fn streaming_with_typing_log(env: &Env) -> std::path::PathBuf {
    start_busy_reader(env, "fl", "typed.txt")
}

/// Starts [`BUSY_READER`] as session `name`, logging its reads to `log` in the test's home;
/// returns the log's path.
fn start_busy_reader(env: &Env, name: &str, log: &str) -> std::path::PathBuf {
    let log = env.home.join(log);
    let log_arg = log.to_str().expect("a UTF-8 temp path");
    env.ok(&[
        "new",
        "-d",
        name,
        "--",
        "python3",
        "-c",
        BUSY_READER,
        log_arg,
    ]);
    log
}

/// The typed text so far, from the hex log of reads.
fn typed_text(path: &std::path::Path) -> String {
    String::from_utf8_lossy(&reads(path).concat()).into_owned()
}

#[test]
fn typing_and_resizing_while_output_streams_never_drops_the_client() {
    typing_and_resizing_storm(2, Duration::from_millis(1500));
}

#[test]
#[ignore = "soak: 20 trials of 3 s, as the issue reproduced it"]
fn typing_and_resizing_storm_soak() {
    typing_and_resizing_storm(20, Duration::from_secs(3));
}

fn typing_and_resizing_storm(trials: u32, typing_for: Duration) {
    let env = Env::new();
    let sink = env.home.join("typed.txt");
    let script = format!(
        "while :; do seq 1 2000; done & exec cat > {}",
        sink.display()
    );
    env.ok(&["new", "-d", "stream", "--", "sh", "-c", &script]);
    for trial in 0..trials {
        let mut typist = env.term(&["attach", "stream"], 24, 80);
        let mut resizer = env.term(&["attach", "stream"], 24, 80);
        let mut viewer = env.term(&["attach", "-r", "stream"], 24, 80);
        for t in [&typist, &resizer, &viewer] {
            t.wait_output("streamed output", |o| o.len() > 4096);
        }
        let start = Instant::now();
        let mut tick = 0u32;
        while start.elapsed() < typing_for {
            typist.write(b"x");
            viewer.write(b"v");
            let (rows, cols) = if tick.is_multiple_of(2) {
                (30, 100)
            } else {
                (24, 80)
            };
            resizer.resize(rows, cols);
            resizer.signal(libc::SIGWINCH);
            tick += 1;
            std::thread::sleep(Duration::from_millis(5));
        }
        for (name, t) in [
            ("typist", &mut typist),
            ("resizer", &mut resizer),
            ("viewer", &mut viewer),
        ] {
            assert!(
                t.running(),
                "trial {trial}: the {name} client dropped:\n{}",
                t.text()
            );
        }
        let marker = format!("MARKER-{trial}");
        typist.write(format!("\r{marker}\r").as_bytes());
        eventually(&format!("{marker} typed after the storm"), || {
            std::fs::read_to_string(&sink)
                .ok()
                .filter(|t| t.contains(&marker))
        });
    }
}

#[test]
fn a_marker_typed_during_a_flood_arrives() {
    let env = Env::new();
    let typed = streaming_with_typing_log(&env);
    let typist = env.term(&["attach", "fl"], 24, 80);
    typist.wait_text("line ");
    typist.write(b"MARKER\r");
    eventually("the marker", || {
        typed_text(&typed).contains("MARKER").then_some(())
    });
}

/// A raw-mode program that prints without pause and logs each read of its input to a file.
const BUSY_READER: &str = r#"
import os, sys, threading
os.system("stty raw -echo")
log = open(sys.argv[1], "w")
def chatter():
    n = 0
    while True:
        n += 1
        sys.stdout.write("line %d\r\n" % n)
        sys.stdout.flush()
threading.Thread(target=chatter, daemon=True).start()
while True:
    data = os.read(0, 65536)
    if not data:
        break
    log.write(data.hex() + "\n")
    log.flush()
"#;

fn reads(path: &std::path::Path) -> Vec<Vec<u8>> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(l.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .collect()
}

#[test]
fn concurrent_sends_each_arrive_whole_with_their_own_enter() {
    concurrent_sends(4);
}

#[test]
#[ignore = "soak: 20 rounds of two concurrent senders"]
fn concurrent_sends_soak() {
    concurrent_sends(20);
}

fn concurrent_sends(trials: usize) {
    let env = Env::new();
    let log = start_busy_reader(&env, "raw", "reads.txt");
    env.wait_capture("raw", "the program to print", |s| s.contains("line"));
    for _ in 0..trials {
        let senders: Vec<_> = ["ONE", "TWO"]
            .iter()
            .map(|text| {
                env.cmd()
                    .args(["send", "raw", "--enter", text])
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn send")
            })
            .collect();
        for sender in senders {
            let out = sender.wait_with_output().expect("send");
            assert!(
                out.status.success(),
                "send failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let all: Vec<u8> = reads(&log).concat();
    let text = String::from_utf8_lossy(&all);
    assert_eq!(text.matches("ONE\r").count(), trials, "{text:?}");
    assert_eq!(text.matches("TWO\r").count(), trials, "{text:?}");
    for read in reads(&log) {
        if read.contains(&b'\r') {
            assert_eq!(read, b"\r", "an Enter shared a read with text: {read:?}");
        }
    }
}

#[test]
fn large_sends_arrive_complete_and_a_program_that_stops_reading_fails_the_send() {
    let env = Env::new();
    let log = start_busy_reader(&env, "raw", "reads.txt");
    env.wait_capture("raw", "the program to print", |s| s.contains("line"));
    let chunk: String = "abcdefghij".repeat(60_000);
    let big = "0123456789".repeat(150_000);
    let senders: Vec<_> = [&chunk, &chunk, &chunk, &big]
        .iter()
        .map(|text| {
            let mut child = env
                .cmd()
                .args(["send", "raw", "-"])
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn send");
            let mut stdin = child.stdin.take().expect("stdin");
            let text = text.to_string();
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = stdin.write_all(text.as_bytes());
            });
            child
        })
        .collect();
    for sender in senders {
        let out = sender.wait_with_output().expect("send");
        assert!(
            out.status.success(),
            "send failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let received: usize = reads(&log).iter().map(Vec::len).sum();
    // Each send exits only once its text was written to the pty, and the program reads it.
    let expected = 3 * chunk.len() + big.len();
    eventually("every byte to be read", || {
        let n: usize = reads(&log).iter().map(Vec::len).sum();
        (n >= expected).then_some(())
    });
    assert!(
        received <= expected + 12 * 4,
        "{received} bytes for {expected}"
    );

    // Raw mode: a full input buffer then stops the writer (cooked mode would drop bytes).
    let deaf = "stty raw -echo; echo RAW-MODE; exec sleep 1000";
    env.ok(&["new", "-d", "deaf", "--", "sh", "-c", deaf]);
    env.wait_capture("deaf", "raw mode", |s| s.contains("RAW-MODE"));
    let out = env
        .cmd()
        .args(["send", "deaf", "--timeout", "1s", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            let mut stdin = child.stdin.take().expect("stdin");
            std::thread::spawn(move || {
                let _ = stdin.write_all("z".repeat(600_000).as_bytes());
            });
            child.wait_with_output()
        })
        .expect("send");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("delivered") && err.contains("of 600000 bytes"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // The input stays full: named keys fail the same way, within their own --timeout (they
    // always waited 30 s, then said the server might be stuck).
    let out = env.run(&["send", "deaf", "--keys", "--timeout", "1s", "a"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("delivered 0 of 1 bytes within 1s"), "{err}");
}

#[test]
fn a_client_that_fell_behind_still_ends_on_the_final_screen() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "burst",
        "--",
        "sh",
        "-c",
        "read go; seq 1 300000; echo FINAL-SCREEN-LINE",
    ]);
    let mut client = env.term(&["attach", "burst"], 24, 80);
    client.wait_output("the replay", |o| !o.is_empty());
    client.signal(libc::SIGSTOP);
    env.ok(&["send", "burst", "--enter", "go"]);
    env.ok(&["wait", "burst", "--exit", "--timeout", "60s"]);
    client.signal(libc::SIGCONT);
    client.wait_exit();
    // The terminal may still be taking the client's last writes.
    client.wait_screen("the final screen and the exit notice", |s| {
        let text = s.contents();
        text.contains("FINAL-SCREEN-LINE") && text.contains("[burst exited with 0]")
    });
}

#[test]
fn commands_against_a_stopped_server_fail_with_one_line() {
    let env = Env::new();
    env.ok(&["new", "-d", "s", "--", "sleep", "1000"]);
    let server = env.server_pid().expect("server pid");
    // SAFETY: kill(2) on the test's own server.
    unsafe { libc::kill(server, libc::SIGSTOP) };
    let started = Instant::now();
    let out = env.run(&["ls"]);
    // SAFETY: as above.
    unsafe { libc::kill(server, libc::SIGCONT) };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("did not answer"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(started.elapsed() < Duration::from_secs(15));
    env.ok(&["ls"]);
}

#[test]
fn a_client_whose_terminal_blocks_still_exits_on_sigterm() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "fl",
        "--",
        "sh",
        "-c",
        "while :; do seq 1 2000; done",
    ]);
    let mut client = env.term(&["attach", "fl"], 24, 80);
    client.wait_text("1999");
    client.pause_reading(true);
    eventually("the terminal to fill up", || {
        let before = client.output().len();
        std::thread::sleep(Duration::from_millis(200));
        (client.output().len() == before).then_some(())
    });
    client.signal(libc::SIGTERM);
    client.pause_reading(false);
    let status = client.wait_exit();
    assert!(status.code().is_some(), "exited by itself: {status:?}");
    env.ok(&["ls"]);
}

#[test]
fn a_closed_stderr_is_a_failure_not_a_crash() {
    let env = Env::new();
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let status = env
        .cmd()
        .args(["capture", "no-such-session"])
        .stderr(writer)
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(1));
}

#[test]
fn detaching_over_an_inline_ui_leaves_the_notice_on_a_clean_line() {
    let env = Env::new();
    // An inline UI: a prompt line with a status line below it, cursor back on the prompt.
    let ui = "printf 'prompt> \\n  STATUS-LINE-LEFTOVER\\033[1A\\033[9G'; exec sleep 1000";
    env.ok(&["new", "-d", "ui", "--", "sh", "-c", ui]);
    env.wait_capture("ui", "the status line", |s| s.contains("STATUS-LINE"));
    let mut client = env.term(&["attach", "ui"], 24, 80);
    client.wait_screen("the UI", |s| s.contents().contains("STATUS-LINE"));
    client.write(b"\x1c");
    client.wait_exit();
    let screen = client.screen_text();
    let notice = screen
        .lines()
        .find(|l| l.contains("[detached from ui]"))
        .unwrap_or_else(|| panic!("no notice:\n{screen}"));
    assert_eq!(notice.trim(), "[detached from ui]", "{screen}");
    assert!(!screen.contains("STATUS-LINE"), "{screen}");
}

/// Over ssh the two halves of one key commonly arrive 50-200 ms apart: a kitty-encoded
/// detach chord split that way still detaches, and nothing of it reaches the program.
#[test]
fn a_detach_chord_split_over_a_slow_link_still_detaches() {
    let env = Env::new();
    let typed = env.home.join("typed.txt");
    let script = format!("stty raw -echo; exec cat > {}", typed.display());
    env.ok(&["new", "-d", "k", "--", "sh", "-c", &script]);
    let mut client = env.term(&["attach", "k"], 24, 80);
    client.wait_output("the replay", |o| !o.is_empty());
    client.write(b"\x1b[92;");
    // The gap a slow link puts between the halves: the input's timing, not a synchronisation.
    std::thread::sleep(Duration::from_millis(150));
    client.write(b"5u");
    assert!(client.wait_exit().success());
    client.wait_text("[detached from k]");
    let got = std::fs::read(&typed).unwrap_or_default();
    assert!(
        !contains_seq(&got, b"92;"),
        "part of the chord reached the program: {got:?}"
    );
}

fn contains_seq(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Prints lines 1 to 100000 as fast as the pty takes them, with a cursor position query after
/// line 50000, then what the query was answered (see [`new_raw_python_after_go`]).
const FLOOD_WITH_QUERY: &str = r#"
lines = lambda a, b: "".join(f"{i}\r\n" for i in range(a, b)).encode()
os.write(1, lines(1, 50001) + b"\x1b[6n" + lines(50001, 100001))
answer = b""
while not answer.endswith(b"R"):
    answer += os.read(0, 1)
os.write(1, b"ANSWER " + answer[1:] + b"\r\n")
"#;

/// Session `name` running python3 with `body` once a line is typed (`send NAME --enter go`),
/// in raw mode; the program then sleeps, so the session stays.
fn new_raw_python_after_go(env: &Env, name: &str, body: &str) {
    let script = format!(
        "import os, sys, tty\nsys.stdin.readline()\ntty.setraw(0)\n{body}\n\
         os.execvp(\"sleep\", [\"sleep\", \"1000\"])\n"
    );
    env.ok(&["new", "-d", name, "--", "python3", "-c", &script]);
}

/// Under a flood the server reads several batches a turn and models each between the reads
/// of the next (server/session/flood.rs). The client still gets every byte once and in order
/// (0.6 MB: below the client's queue bound, so none may be dropped), without the query; the
/// program gets its answer as the screen stood at the query; history has each line once.
#[test]
fn a_flood_reaches_the_client_whole_and_the_model_sees_every_byte_once() {
    let env = Env::new();
    new_raw_python_after_go(&env, "fl", FLOOD_WITH_QUERY);
    let term = env.term(&["attach", "fl"], 24, 80);
    term.wait_output("the replay", |o| !o.is_empty());
    env.ok(&["send", "fl", "--enter", "go"]);
    term.wait_text("ANSWER");
    let text = term.text();
    let expected: String = (1..=100_000).map(|i| format!("{i}\r\n")).collect();
    assert!(
        text.contains(&expected),
        "the client did not get lines 1-100000 whole and in order"
    );
    assert!(text.contains("ANSWER [24;1R"), "answer: {:?}", tail(&text));
    let capture = env.ok(&["capture", "fl", "--all"]);
    let numbers: Vec<u32> = capture.lines().filter_map(|l| l.parse().ok()).collect();
    assert!(numbers.len() > 5000, "history too short: {}", numbers.len());
    assert_eq!(numbers.last(), Some(&100_000));
    for pair in numbers.windows(2) {
        assert_eq!(pair[1], pair[0] + 1, "history skips or repeats a line");
    }
}

fn tail(text: &str) -> &str {
    let from = text.len().saturating_sub(200);
    let from = (from..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    &text[from..]
}

/// Prints 80 KB of filler (a flood turn starts), a marker, then 12,000 lines of 24 bytes
/// (enough to push the marker out of the default 10,000-line history within one flood turn),
/// then an end marker.
const MARKER_THEN_FLOOD: &str = r#"
filler = b"f" * 79 + b"\r\n"
lines = "".join(f"{i:>22}\r\n" for i in range(12000)).encode()
os.write(1, filler * 1000 + b"THE-MARKER\r\n" + lines + b"THE-END\r\n")
"#;

/// `wait --text` looks at what each read batch added, also when one turn reads several
/// (server/session/flood.rs): a line that leaves history within the turn is still seen.
#[test]
fn wait_text_sees_a_line_that_a_flood_pushes_out_of_history_in_one_turn() {
    let env = Env::new();
    new_raw_python_after_go(&env, "mk", MARKER_THEN_FLOOD);
    let mut waiter = env
        .cmd()
        .args(["wait", "mk", "--text", "THE-MARKER", "--timeout", "30s"])
        .stdout(Stdio::null())
        .spawn()
        .expect("cannot start linger wait");
    // The wait's request is sent once the client sleeps for the answer; a command sent
    // after it over the same server reaches the session behind it.
    eventually("the wait to be sent", || {
        std::fs::read_to_string(format!("/proc/{}/wchan", waiter.id()))
            .is_ok_and(|w| w.contains("epoll"))
            .then_some(())
    });
    env.ok(&["capture", "mk"]);
    env.ok(&["send", "mk", "--enter", "go"]);
    let status = waiter.wait().expect("linger wait");
    assert!(status.success(), "the wait missed the marker: {status}");
    env.ok(&["wait", "mk", "--text", "THE-END", "--timeout", "20s"]);
    let history = env.ok(&["capture", "mk", "--all"]);
    assert!(
        !history.contains("THE-MARKER"),
        "the marker should have left history (else this test proves nothing)"
    );
}
