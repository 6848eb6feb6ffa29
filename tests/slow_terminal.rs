//! Terminals that fall behind: a stalled or slow link gets a fresh screen rather than minutes
//! of stale output, and a client continued after a stop redraws the screen its shell wrote on.

mod common;

use std::time::Duration;

use common::{Env, eventually};

/// How far the terminal may lag when it takes output again: what the pty held when it stalled
/// (a few KiB), the fresh screen, and little more. A client that kept its backlog sends its
/// queue and its socket's contents first: hundreds of KiB.
const STALE_BOUND: usize = 64 * 1024;

/// How long the terminal's link stays stalled after the program stopped or the user detached.
/// The stall lasting past the client's limit of a second is the scenario, not a
/// synchronisation: only then does the client drop what the terminal has not shown.
const STALL_AFTER: Duration = Duration::from_secs(2);

/// Numbered lines without pause until `stop` exists, then a marker.
fn flood_until(stop: &std::path::Path) -> String {
    format!(
        "i=0; while [ ! -e {stop} ]; do seq $i $((i+4999)); i=$((i+5000)); done; \
         echo FLOOD-OVER; exec sleep 100000",
        stop = stop.display()
    )
}

/// Waits for `text` on the terminal, and checks that less than [`STALE_BOUND`] came before
/// it since `before` bytes.
fn assert_little_stale(client: &common::Term, before: usize, text: &str) {
    client.wait_text(text);
    let output = client.output();
    let at = output[before..]
        .windows(text.len())
        .position(|w| w == text.as_bytes())
        .expect("the text");
    eprintln!("{at} bytes of stale output before {text:?}");
    assert!(
        at < STALE_BOUND,
        "{at} bytes of stale output came before {text:?}"
    );
}

#[test]
fn a_stalled_terminal_gets_a_fresh_screen_instead_of_its_backlog() {
    let env = Env::new();
    let stop = env.home.join("stop");
    env.new_sh("fl", &flood_until(&stop));
    let mut client = env.term(&["attach", "fl"], 24, 80);
    client.wait_text("4999");
    // The link stalls under the flood, and the program stops while it does.
    client.pause_reading(true);
    std::fs::write(&stop, b"").expect("create the stop file");
    env.wait_capture("fl", "the flood's end", |s| s.contains("FLOOD-OVER"));
    std::thread::sleep(STALL_AFTER);
    let before = client.output().len();
    client.pause_reading(false);
    assert_little_stale(&client, before, "FLOOD-OVER");
    client.wait_screen("the end on screen", |s| s.contents().contains("FLOOD-OVER"));
    // The session is whole: only the stalled terminal skipped output.
    let history = env.ok(&["capture", "fl", "--history", "100"]);
    assert!(history.contains("FLOOD-OVER"), "{history}");
    client.write(b"\x1c");
    client.wait_exit();
}

#[test]
fn a_client_continued_after_a_stop_redraws_the_screen_its_shell_wrote_on() {
    let env = Env::new();
    env.new_sh("c", "echo SESSION-SCREEN; exec cat");
    let client = env.term(&["attach", "c"], 24, 80);
    client.wait_screen("the session", |s| s.contents().contains("SESSION-SCREEN"));
    client.signal(libc::SIGSTOP);
    eventually("the client to stop", || {
        linger::proc_stat::ProcStat::of(client.pid()).filter(|stat| stat.stopped())
    });
    // What the user's shell prints while it has the terminal.
    let pts = std::fs::read_link(format!("/proc/{}/fd/0", client.pid())).expect("the pts");
    std::fs::write(
        &pts,
        "\r\n\x1b[2J[1]+  Stopped    linger attach c\r\n$ fg\r\n",
    )
    .expect("write to the pts");
    client.wait_screen("the shell's text", |s| s.contents().contains("Stopped"));
    client.signal(libc::SIGCONT);
    client.wait_screen("the session's screen again", |s| {
        let text = s.contents();
        text.contains("SESSION-SCREEN") && !text.contains("Stopped")
    });
}

#[test]
fn a_detach_from_a_stalled_terminal_skips_what_it_had_not_shown() {
    let env = Env::new();
    env.new_sh("fl", "while :; do seq 1 5000; done");
    let client = env.term(&["attach", "fl"], 24, 80);
    client.wait_text("4999");
    client.pause_reading(true);
    let before = client.output().len();
    client.write(b"\x1c");
    // The session saw the detach.
    common::eventually_clients(&env, "fl", 0);
    // The link stays stalled past the client's limit (the scenario, as above).
    std::thread::sleep(STALL_AFTER);
    client.pause_reading(false);
    assert_little_stale(&client, before, "[detached from fl]");
}
