//! Attach, replay, detach and shared viewing, through the real binary on a real pty.

mod common;

use common::{Env, Term};

fn bash_session(env: &Env, name: &str, script: &str) {
    env.ok(&["new", "-d", name, "--", "bash", "--norc", "-c", script]);
}

/// The hex dump the query tests' app prints of what it read back.
fn answers_hex(screen: &str) -> String {
    let line = screen.lines().find(|l| l.contains("1b5b")).unwrap_or("");
    line.find("1b5b")
        .map(|i| line[i..].trim().to_string())
        .unwrap_or_default()
}

fn wait_text(env: &Env, name: &str, regex: &str) {
    env.ok(&["wait", name, "--text", regex, "--timeout", "20s"]);
}

#[test]
fn attach_replays_history_then_live_output() {
    let env = Env::new();
    env.new_sh("s", "seq 1 300; echo READY; exec sh");
    wait_text(&env, "s", "READY");
    let term = env.term(&["attach", "s"], 24, 80);
    term.wait_text("READY");
    let screen = term.screen();
    // History lines went to the terminal's own scrollback, in order, once each.
    let text = term.text();
    let first = text.find("1\r\n2\r\n3\r\n").expect("line 1 replayed");
    let last = text.find("\r\n250\r\n").expect("line 250 replayed");
    assert!(first < last);
    assert_eq!(
        text.matches("\r\n150\r\n").count(),
        1,
        "line 150 replayed once"
    );
    assert!(screen.contents().contains("299\n300\nREADY"));
    term.write(b"echo live-$((40+2))\r");
    term.wait_text("live-42");
}

#[test]
fn alternate_screen_app_replays_exactly() {
    let env = Env::new();
    env.new_sh("alt",
        r"printf 'main-screen-text\n'; printf '\033[?1049h\033[2J\033[5;10Hhello alt\033[1;1H\033[1;31mred\033[m\033[?2004h'; printf '\033]2;my title\007'; exec sleep 1000",
    );
    wait_text(&env, "alt", "hello alt");
    let term = env.term(&["attach", "alt"], 24, 80);
    term.wait_screen("alternate screen replayed", |s| {
        s.alternate_screen() && s.contents().contains("hello alt")
    });
    let s = term.screen();
    assert!(s.alternate_screen());
    assert!(s.bracketed_paste());
    assert_eq!(s.cell(4, 9).unwrap().contents(), "h");
    assert_eq!(s.cell(0, 0).unwrap().contents(), "r");
    assert_eq!(
        s.cell(0, 0).unwrap().fgcolor(),
        common::screen::Color::Idx(1)
    );
    assert!(!s.contents().contains("main-screen-text"));
    assert_eq!(s.cursor_position(), (0, 3));
    assert!(term.text().contains("\x1b]2;my title\x07"));
    let capture = env.ok(&["capture", "alt"]);
    let expected: Vec<String> = s.rows();
    let captured: Vec<&str> = capture.lines().collect();
    assert_eq!(captured, expected);
}

fn detach_with(keys: &[&[u8]]) {
    let env = Env::new();
    env.new_sh("d", "exec sleep 1000");
    let mut term = env.term(&["attach", "d"], 24, 80);
    // The replay resets origin mode and margins once the history is out, before the screen.
    term.wait_output("replay", |o| common::contains(o, b"\x1b[?6l\x1b[r"));
    for k in keys {
        term.write(k);
    }
    term.wait_text("[detached from d]");
    assert!(term.wait_exit().success());
    // The terminal was put back: bracketed paste and mouse off, cursor shown.
    let text = term.text();
    let tail = &text[text.rfind("[detached").unwrap_or(0).saturating_sub(200)..];
    assert!(
        tail.contains("\x1b[?2004l") && tail.contains("\x1b[?1000l") && tail.contains("\x1b[?25h")
    );
    assert!(
        env.ok(&["ls"]).contains("running"),
        "session survives detach"
    );
}

#[test]
fn raw_chord_detaches() {
    detach_with(&[b"\x1c"]);
}

/// An app that turned autowrap off, insert mode on and a line-drawing charset in (a TUI does,
/// and one killed or detached from mid-draw leaves them so): after a detach the user's shell
/// must wrap long lines, overwrite as it types and print letters, not box pieces.
#[test]
fn detaching_puts_back_autowrap_replace_mode_and_the_ascii_charset() {
    use alacritty_terminal::term::TermMode;
    let env = Env::new();
    env.new_sh("m", "printf 'tui\\033[?7l\\033[4h\\033(0'; exec sleep 1000");
    wait_text(&env, "m", "tui");
    let mut term = env.term(&["attach", "m"], 24, 80);
    term.wait_screen("the app's modes", |s| {
        !s.mode_has(TermMode::LINE_WRAP) && s.mode_has(TermMode::INSERT)
    });
    term.write(b"\x1c");
    term.wait_text("[detached from m]");
    assert!(term.wait_exit().success());
    let screen = term.screen();
    assert!(screen.mode_has(TermMode::LINE_WRAP), "autowrap left off");
    assert!(!screen.mode_has(TermMode::INSERT), "insert mode left on");
    let text = term.text();
    let tail = &text[text.rfind("[detached").unwrap_or(0).saturating_sub(200)..];
    assert!(
        tail.contains("\x1b(B"),
        "the ASCII charset was not put back"
    );
}

#[test]
fn kitty_chord_detaches() {
    detach_with(&[b"\x1b[92;5u"]);
}

#[test]
fn kitty_chord_with_event_type_detaches() {
    detach_with(&[b"\x1b[92;5:1u"]);
}

#[test]
fn modify_other_keys_chord_detaches() {
    detach_with(&[b"\x1b[27;5;92~"]);
}

#[test]
fn split_chords_detach() {
    detach_with(&[b"\x1b[92", b";5u"]);
}

#[test]
fn split_modify_other_keys_chord_detaches() {
    detach_with(&[b"\x1b", b"[27;5;", b"92~"]);
}

#[test]
fn configured_detach_key_detaches() {
    let env = Env::new();
    env.new_sh("k", "exec sleep 1000");
    let mut term = env.term(&["attach", "k", "--detach-key", "C-a"], 24, 80);
    // The replay resets origin mode and margins once the history is out, before the screen.
    term.wait_output("replay", |o| common::contains(o, b"\x1b[?6l\x1b[r"));
    term.write(b"\x01");
    term.wait_text("[detached from k]");
    term.wait_exit();
}

#[test]
fn double_chord_passes_one_byte_through() {
    let env = Env::new();
    env.new_sh(
        "c",
        "stty raw -echo opost; echo RAW; exec od -An -tx1 -w1 -v",
    );
    wait_text(&env, "c", "RAW");
    let term = env.term(&["attach", "c"], 24, 80);
    term.wait_text("RAW");
    term.write(b"\x1c\x1c");
    term.write(b"z");
    wait_text(&env, "c", r"^\s*7a$");
    wait_text(&env, "c", r"^\s*1c$");
    let all = env.ok(&["capture", "c", "--all"]);
    assert_eq!(
        all.lines().filter(|l| l.trim() == "1c").count(),
        1,
        "exactly one 0x1c reached the app"
    );
}

#[test]
fn chord_inside_bracketed_paste_is_typed() {
    let env = Env::new();
    env.new_sh(
        "p",
        "printf '\\033[?2004h'; stty raw -echo opost; echo RAW; exec od -An -tx1 -w1 -v",
    );
    wait_text(&env, "p", "RAW");
    let mut term = env.term(&["attach", "p"], 24, 80);
    term.wait_text("RAW");
    term.write(b"\x1b[200~a\x1cb\x1b[201~");
    wait_text(&env, "p", r"^\s*1b$");
    wait_text(&env, "p", r"^\s*1c$");
    assert!(term.child_running(), "the paste did not detach");
}

#[test]
fn two_clients_see_the_same_output() {
    let env = Env::new();
    env.new_sh("two", "exec sh");
    let a = env.term(&["attach", "two"], 24, 80);
    let b = env.term(&["attach", "two"], 24, 80);
    a.wait_output("replay", |o| !o.is_empty());
    b.wait_output("replay", |o| !o.is_empty());
    common::eventually_clients(&env, "two", 2);
    a.write(b"echo from-$((1+1))-a\r");
    a.wait_text("from-2-a");
    b.wait_text("from-2-a");
    b.write(b"echo from-$((1+2))-b\r");
    a.wait_text("from-3-b");
}

#[test]
fn read_only_client_cannot_type_or_resize() {
    let env = Env::new();
    env.new_sh(
        "ro",
        "stty raw -echo opost; echo RAW; exec od -An -tx1 -w1 -v",
    );
    wait_text(&env, "ro", "RAW");
    let mut viewer = env.term(&["attach", "-r", "ro"], 30, 100);
    viewer.wait_text("RAW");
    viewer.write(b"q");
    viewer.resize(40, 120);
    // A writable client's typing is the marker that everything before it was processed.
    let writer = env.term(&["attach", "ro"], 24, 80);
    writer.wait_text("RAW");
    writer.write(b"w");
    wait_text(&env, "ro", r"^\s*77$");
    let all = env.ok(&["capture", "ro", "--all"]);
    assert!(
        !all.lines().any(|l| l.trim() == "71"),
        "read-only input reached the app"
    );
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["ls", "--json"])).unwrap();
    assert_eq!(json[0]["rows"], 24);
    assert_eq!(json[0]["cols"], 80);
}

#[test]
fn resize_reaches_the_app() {
    let env = Env::new();
    env.new_sh("rs", "exec sh");
    let mut term = env.term(&["attach", "rs"], 24, 80);
    term.wait_output("replay", |o| !o.is_empty());
    term.write(b"stty size\r");
    term.wait_text("24 80");
    term.resize(31, 101);
    term.signal(0);
    common::eventually("resize applied", || {
        let json: serde_json::Value = serde_json::from_str(&env.ok(&["ls", "--json"])).ok()?;
        (json[0]["rows"] == 31 && json[0]["cols"] == 101).then_some(())
    });
    term.write(b"stty size\r");
    term.wait_text("31 101");
}

#[test]
fn exit_status_is_shown_and_the_client_exits() {
    let env = Env::new();
    env.new_sh("ex", "echo WAITING; read x; echo bye-now; exit 7");
    wait_text(&env, "ex", "WAITING");
    let mut term = env.term(&["attach", "ex"], 24, 80);
    term.wait_text("WAITING");
    term.write(b"\r");
    term.wait_text("[ex exited with 7]");
    assert!(term.wait_exit().success());
    let text = term.text();
    assert!(text.find("bye-now").unwrap() < text.find("[ex exited with 7]").unwrap());
    assert!(env.ok(&["ls"]).contains("exited(7)"));
    // The final screen stays until kill.
    assert!(env.ok(&["capture", "ex"]).contains("bye-now"));
    env.ok(&["kill", "ex"]);
    assert!(!env.ok(&["ls"]).contains("ex"));
}

#[test]
fn killed_session_reports_its_signal() {
    let env = Env::new();
    env.new_sh("sig", "echo UP; exec sleep 1000");
    wait_text(&env, "sig", "UP");
    let pid: i32 = {
        let json: serde_json::Value = serde_json::from_str(&env.ok(&["ls", "--json"])).unwrap();
        json[0]["pid"].as_i64().unwrap() as i32
    };
    // SAFETY: signalling the session's own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    let out = env.run(&["wait", "sig", "--exit", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(137));
    assert!(env.ok(&["ls"]).contains("killed(SIGKILL)"));
}

#[test]
fn stopped_client_does_not_stall_a_flooding_session() {
    let env = Env::new();
    env.new_sh(
        "flood",
        "read x; seq 1 400000; echo FLOOD-DONE; exec sleep 1000",
    );
    let stopped = env.term(&["attach", "flood"], 24, 80);
    stopped.wait_output("replay", |o| !o.is_empty());
    let live = env.term(&["attach", "flood"], 24, 80);
    live.wait_output("replay", |o| !o.is_empty());
    common::eventually_clients(&env, "flood", 2);
    stopped.signal(libc::SIGSTOP);
    env.ok(&["send", "flood", "--enter", ""]);
    wait_text(&env, "flood", "FLOOD-DONE");
    live.wait_text("FLOOD-DONE");
    stopped.signal(libc::SIGCONT);
    stopped.wait_screen("current screen after resync", |s| {
        s.contents().contains("FLOOD-DONE")
    });
}

#[test]
fn client_killed_with_sigkill_leaves_the_session_intact() {
    let env = Env::new();
    env.new_sh("k9", "exec sh");
    let term = env.term(&["attach", "k9"], 24, 80);
    term.wait_output("replay", |o| !o.is_empty());
    term.signal(libc::SIGKILL);
    common::eventually_clients(&env, "k9", 0);
    env.ok(&["send", "k9", "--enter", "echo still-$((2*3))"]);
    wait_text(&env, "k9", "still-6");
    assert!(env.ok(&["ls"]).contains("running"));
}

#[test]
fn attaching_to_the_session_you_are_in_is_refused() {
    let env = Env::new();
    env.new_sh("self", "exec sleep 1000");
    let out = env
        .cmd()
        .args(["attach", "self"])
        .env("LINGER_SESSION", "self")
        .env("LINGER_DIR", &env.dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("linger: ") && err.contains("inside itself"),
        "{err}"
    );
}

#[test]
fn queries_are_answered_once_while_detached() {
    let env = Env::new();
    bash_session(
        &env,
        "q",
        r#"stty raw -echo; printf '\nQ\033[c\033[>c\033[5n\033[6n'; IFS= read -r -d Z x; printf '%s' "$x" | od -An -tx1 | tr -d ' \n'; echo; echo END; exec sleep 1000"#,
    );
    // Type only once the app is in raw mode and has asked (its "Q" comes with the queries).
    wait_text(&env, "q", "^Q");
    env.ok(&["send", "q", "Z"]);
    wait_text(&env, "q", "END");
    let screen = env.ok(&["capture", "q"]);
    let hex = answers_hex(&screen);
    // DA1, DA2, DSR and the cursor position (row 2, col 2 after "Q"), exactly once each.
    let expected: String = b"\x1b[?62;22c\x1b[>1;10;0c\x1b[0n\x1b[2;2R"
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, expected, "screen:\n{screen}");
}

#[test]
fn queries_are_answered_once_with_two_clients_and_never_reach_them() {
    let env = Env::new();
    bash_session(
        &env,
        "q2",
        r#"stty raw -echo; echo WAIT; IFS= read -r -d G x; printf '\033[c\033[6nASKED'; IFS= read -r -d Z x; printf '%s' "$x" | od -An -tx1 | tr -d ' \n'; echo; echo END; exec sleep 1000"#,
    );
    wait_text(&env, "q2", "WAIT");
    let a = env.term(&["attach", "q2"], 24, 80);
    let b = env.term(&["attach", "q2"], 24, 80);
    a.wait_text("WAIT");
    b.wait_text("WAIT");
    common::eventually_clients(&env, "q2", 2);
    env.ok(&["send", "q2", "G"]);
    wait_text(&env, "q2", "ASKED");
    env.ok(&["send", "q2", "Z"]);
    a.wait_text("END");
    b.wait_text("END");
    for t in [&a, &b] {
        let out = t.output();
        // The one DA1 is the client's own, ending its probe of the terminal at attach.
        assert_eq!(
            out.windows(3).filter(|w| *w == b"\x1b[c").count(),
            1,
            "the program's DA1 reached a client"
        );
        assert!(
            !out.windows(4).any(|w| w == b"\x1b[6n"),
            "CPR query reached a client"
        );
    }
    let screen = env.ok(&["capture", "q2"]);
    let hex = answers_hex(&screen);
    let expected: String = b"\x1b[?62;22c\x1b[2;5R"
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(hex, expected, "screen:\n{screen}");
}

trait ChildRunning {
    fn child_running(&mut self) -> bool;
}

impl ChildRunning for Term {
    fn child_running(&mut self) -> bool {
        !String::from_utf8_lossy(&self.output()).contains("[detached from")
    }
}

/// A client stopped and continued (`kill -TSTP` and `fg` in a shell): meanwhile the shell ran
/// the terminal in its own cooked mode, and the client must put raw mode back, or keys wait
/// for Enter, echo twice, and Ctrl-C kills the client instead of reaching the program.
#[test]
fn a_continued_client_puts_raw_mode_back() {
    use rustix::termios::LocalModes;
    let env = Env::new();
    env.new_sh("c", "echo READY; exec cat");
    let term = env.term(&["attach", "c"], 24, 80);
    term.wait_text("READY");
    let pts = std::fs::read_link(format!("/proc/{}/fd/0", term.pid())).expect("the pts");
    let terminal = std::fs::File::options()
        .read(true)
        .write(true)
        .open(&pts)
        .expect("open the pts");
    let cooked = LocalModes::ICANON | LocalModes::ECHO | LocalModes::ISIG;
    let raw = |terminal: &std::fs::File| {
        let mode = rustix::termios::tcgetattr(terminal).expect("tcgetattr");
        !mode.local_modes.intersects(cooked)
    };
    assert!(raw(&terminal), "the client runs in raw mode");
    term.signal(libc::SIGSTOP);
    common::eventually("the client to stop", || {
        linger::proc_stat::ProcStat::of(term.pid()).filter(|stat| stat.stopped())
    });
    // What the user's shell does while it has the terminal: its own, cooked mode.
    let mut mode = rustix::termios::tcgetattr(&terminal).expect("tcgetattr");
    mode.local_modes |= cooked;
    rustix::termios::tcsetattr(&terminal, rustix::termios::OptionalActions::Now, &mode)
        .expect("tcsetattr");
    term.signal(libc::SIGCONT);
    common::eventually("raw mode back", || raw(&terminal).then_some(()));
    // Keys reach the program as typed, with no Enter to end a cooked line.
    term.write(b"typed");
    wait_text(&env, "c", "typed");
}
