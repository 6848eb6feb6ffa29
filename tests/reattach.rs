//! Re-attaching shows what the session shows, through the real binary onto an independent
//! terminal emulator: from a terminal already full of text, during an alternate-screen program
//! (and after it exits), after a narrow client, after shrinking and growing, with a saved
//! cursor, and with every style and mode.

mod common;

use std::process::Command;

use alacritty_terminal::term::TermMode;
use alacritty_terminal::term::cell::Flags;
use common::screen::{Color, Emulator};
use common::{Env, Term, captured};

fn new_session(env: &Env, name: &str, script: &str) {
    env.ok(&["new", "-d", name, "--", "sh", "-c", script]);
}

fn wait_text(env: &Env, name: &str, regex: &str) {
    env.ok(&["wait", name, "--text", regex, "--timeout", "20s"]);
}

/// Waits until the client's terminal shows exactly the session's screen and cursor.
fn wait_matches_capture(env: &Env, name: &str, term: &Term) {
    let mut last = (Vec::new(), (0, 0), Vec::new(), (0, 0));
    let matched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        common::eventually("the client to show the session's screen", || {
            let (want, want_cursor) = captured(env, name);
            let screen = term.screen();
            let (got, got_cursor) = (screen.rows(), screen.cursor_position());
            let same = want == got && want_cursor == got_cursor;
            last = (want, want_cursor, got, got_cursor);
            same.then_some(())
        })
    }));
    if matched.is_err() {
        panic!(
            "capture (cursor {:?}):\n{}\nclient (cursor {:?}):\n{}",
            last.1,
            last.0.join("\n"),
            last.3,
            last.2.join("\n")
        );
    }
}

/// `linger attach NAME` on a terminal that first shows `lines` of the user's own text.
fn attach_from_full_terminal(env: &Env, name: &str, lines: usize) -> Term {
    let linger = env.cmd();
    // Takes `env.cmd()`'s environment: the same sandbox (LINGER_DIR, LINGER_STATE_DIR, HOME).
    let mut cmd = Command::new("sh");
    for (k, v) in linger.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(&env.home).arg("-c").arg(format!(
        "i=1; while [ $i -le {lines} ]; do echo USER-TERMINAL-LINE-$i-xxxx; i=$((i+1)); done; \
         exec '{}' attach {name}",
        common::bin().display()
    ));
    Term::spawn(cmd, 24, 80)
}

#[test]
fn reattach_from_a_terminal_full_of_text_overwrites_none_of_it() {
    let env = Env::new();
    new_session(
        &env,
        "full",
        "i=1; while [ $i -le 60 ]; do echo session-line-$i; i=$((i+1)); done; echo READY; exec sleep 1000",
    );
    wait_text(&env, "full", "READY");
    let term = attach_from_full_terminal(&env, "full", 30);
    term.wait_text("READY");
    wait_matches_capture(&env, "full", &term);
    // The user's rows went whole into the terminal's scrollback, before the session's.
    let back = term.scrollback();
    let user: Vec<&String> = back
        .iter()
        .filter(|l| l.contains("USER-TERMINAL"))
        .collect();
    assert_eq!(user.len(), 30, "the user's rows: {back:#?}");
    for (i, line) in user.iter().enumerate() {
        assert_eq!(**line, format!("USER-TERMINAL-LINE-{}-xxxx", i + 1));
    }
    assert!(
        back.iter()
            .all(|l| !l.contains("USER") || !l.contains("session")),
        "a row mixes the user's text and the session's"
    );
    // A second attach from the same terminal shows the same.
    drop(term);
    let again = attach_from_full_terminal(&env, "full", 5);
    again.wait_text("READY");
    wait_matches_capture(&env, "full", &again);
}

#[test]
fn reattach_during_an_alternate_screen_program_then_its_exit_restores_the_main_screen() {
    let env = Env::new();
    new_session(
        &env,
        "alt",
        r"stty -echo; for i in 1 2 3 4 5; do echo MAIN-$i; done; printf '\033[?1049h\033[2J\033[3;3HALT-SCREEN'; read x; printf '\033[?1049l'; echo BACK; exec sleep 1000",
    );
    wait_text(&env, "alt", "ALT-SCREEN");
    let first = env.term(&["attach", "alt"], 24, 80);
    first.wait_text("ALT-SCREEN");
    drop(first);
    let term = env.term(&["attach", "alt"], 24, 80);
    term.wait_text("ALT-SCREEN");
    wait_matches_capture(&env, "alt", &term);
    assert!(term.screen().alternate_screen());
    term.write(b"\r");
    term.wait_text("BACK");
    wait_matches_capture(&env, "alt", &term);
    let shown = term.screen().contents();
    assert!(
        shown.starts_with("MAIN-1\nMAIN-2\nMAIN-3\nMAIN-4\nMAIN-5\nBACK"),
        "the main screen did not come back:\n{shown}"
    );
}

#[test]
fn a_narrow_client_then_a_wide_one_reflows_lines_whole() {
    let env = Env::new();
    let line: String = (0..10).map(|d| format!("{d}abcdefghi")).collect();
    new_session(
        &env,
        "wide",
        &format!(
            "i=1; while [ $i -le 40 ]; do echo $i-{line}; i=$((i+1)); done; echo READY; exec sleep 1000"
        ),
    );
    wait_text(&env, "wide", "READY");
    let mut narrow = env.term(&["attach", "wide"], 24, 40);
    narrow.wait_text("READY");
    wait_matches_capture(&env, "wide", &narrow);
    // The attached terminal widens and rewraps itself; the session does the same.
    narrow.resize(24, 100);
    common::eventually("the session to widen", || {
        (env.ok(&["ls", "--json"]).contains("\"cols\":100")).then_some(())
    });
    wait_matches_capture(&env, "wide", &narrow);
    drop(narrow);
    let wide = env.term(&["attach", "wide"], 24, 120);
    wide.wait_text("READY");
    wait_matches_capture(&env, "wide", &wide);
    let rows = wide.screen().rows();
    assert!(rows.contains(&format!("40-{line}")), "{rows:#?}");
    // History and the log keep the lines whole too.
    let all = env.ok(&["capture", "wide", "--all"]);
    for i in 1..=40 {
        let whole = format!("{i}-{line}");
        assert!(all.lines().any(|l| l == whole), "line {i} cut:\n{all}");
    }
}

#[test]
fn shrinking_then_growing_pulls_rows_back_from_history() {
    let env = Env::new();
    new_session(
        &env,
        "grow",
        "i=1; while [ $i -le 100 ]; do echo row-$i; i=$((i+1)); done; printf READY; exec sleep 1000",
    );
    wait_text(&env, "grow", "READY");
    let mut term = env.term(&["attach", "grow"], 24, 80);
    term.wait_text("READY");
    term.resize(10, 80);
    common::eventually("the session to shrink", || {
        (captured(&env, "grow").0.len() == 10).then_some(())
    });
    wait_matches_capture(&env, "grow", &term);
    term.resize(24, 80);
    common::eventually("the session to grow", || {
        (captured(&env, "grow").0.len() == 24).then_some(())
    });
    wait_matches_capture(&env, "grow", &term);
    let (rows, _) = captured(&env, "grow");
    assert_eq!(rows[0], "row-78", "rows came back from history: {rows:#?}");
    assert_eq!(rows[23], "READY");
    drop(term);
    let again = env.term(&["attach", "grow"], 24, 80);
    again.wait_text("READY");
    wait_matches_capture(&env, "grow", &again);
}

#[test]
fn a_saved_cursor_survives_a_reattach() {
    let env = Env::new();
    new_session(
        &env,
        "decsc",
        r"stty -echo; printf 'top\033[5;10H\033[1;31m\0337\033[m\033[20;1Hbottom'; read x; printf '\0338SAVED'; exec sleep 1000",
    );
    wait_text(&env, "decsc", "bottom");
    let first = env.term(&["attach", "decsc"], 24, 80);
    first.wait_text("bottom");
    drop(first);
    let term = env.term(&["attach", "decsc"], 24, 80);
    term.wait_text("bottom");
    term.write(b"\r");
    term.wait_screen("SAVED where the cursor was saved", |s| {
        s.rows()[4] == format!("{}SAVED", " ".repeat(9))
    });
    wait_matches_capture(&env, "decsc", &term);
    let cell = term.screen().cell(4, 9).cloned().expect("a cell");
    assert!(cell.has(Flags::BOLD), "the saved pen is bold");
    assert_eq!(cell.fgcolor(), Color::Idx(1), "the saved pen is red");
}

/// Styled words, one per column range, then modes a program leaves on.
const STYLED: &str = r"printf '\033[1mBOLD\033[m \033[3mITAL\033[m \033[4:3mCURL\033[m \033[9mSTRK\033[m \033[2mDIMM\033[m \033[38;2;10;20;30mRGBF\033[m \033[48;5;100mBGCL\033[m \033[7mREVS\033[m \033[4:2mDBLU\033[m\n'; printf '\033[?2004h\033[?1h\033[?1000h\033[?1006h\033[?25lREADY'; exec sleep 1000";

/// Checks the styled words on row 0 of a screen.
fn check_styles(screen: &common::Screen, what: &str) {
    let at = |col: u16| screen.cell(0, col).cloned().expect("a cell");
    let flagged = [
        (0, Flags::BOLD),
        (5, Flags::ITALIC),
        (10, Flags::UNDERCURL),
        (15, Flags::STRIKEOUT),
        (20, Flags::DIM),
        (35, Flags::INVERSE),
        (40, Flags::DOUBLE_UNDERLINE),
    ];
    for (col, flag) in flagged {
        assert!(
            at(col).has(flag),
            "{what}: column {col} lost {flag:?}: {:?}",
            at(col)
        );
    }
    assert!(!at(4).has(Flags::BOLD), "{what}: the style ran on");
    assert_eq!(at(25).fgcolor(), Color::Rgb(10, 20, 30), "{what}: RGB");
    assert_eq!(
        at(30).bgcolor(),
        Color::Idx(100),
        "{what}: 256-colour background"
    );
}

#[test]
fn styles_and_modes_survive_capture_ansi_and_a_reattach() {
    let env = Env::new();
    new_session(&env, "sty", STYLED);
    wait_text(&env, "sty", "READY");
    let ansi = env.ok(&["capture", "sty", "--ansi"]);
    let mut emulator = Emulator::new(24, 80);
    emulator.process(ansi.trim_end().replace('\n', "\r\n").as_bytes());
    check_styles(&emulator.screen(), "capture --ansi");
    for round in ["first attach", "re-attach"] {
        let term = env.term(&["attach", "sty"], 24, 80);
        term.wait_text("READY");
        wait_matches_capture(&env, "sty", &term);
        let screen = term.screen();
        check_styles(&screen, round);
        assert!(screen.bracketed_paste(), "{round}: bracketed paste");
        assert!(screen.hide_cursor(), "{round}: hidden cursor");
        assert!(
            screen.mode_has(
                TermMode::APP_CURSOR | TermMode::MOUSE_REPORT_CLICK | TermMode::SGR_MOUSE
            ),
            "{round}: cursor keys and mouse modes"
        );
    }
}

#[test]
fn the_alternate_screens_saved_cursor_survives_a_reattach() {
    let env = Env::new();
    new_session(
        &env,
        "altsc",
        r"stty -echo; printf 'main\033[?1049h\033[2J\033[7;20H\033[1;32m\0337\033[m\033[1;1Hin-alt'; read x; printf '\0338ALTSAVED'; exec sleep 1000",
    );
    wait_text(&env, "altsc", "in-alt");
    let first = env.term(&["attach", "altsc"], 24, 80);
    first.wait_text("in-alt");
    drop(first);
    let term = env.term(&["attach", "altsc"], 24, 80);
    term.wait_text("in-alt");
    term.write(b"\r");
    term.wait_text("ALTSAVED");
    wait_matches_capture(&env, "altsc", &term);
    let cell = term.screen().cell(6, 19).cloned().expect("a cell");
    assert_eq!(cell.contents(), "A");
    assert!(cell.has(Flags::BOLD), "the saved pen is bold");
    assert_eq!(cell.fgcolor(), Color::Idx(2), "the saved pen is green");
}

#[test]
fn a_saved_cursor_with_a_pending_wrap_survives_a_reattach() {
    let env = Env::new();
    new_session(
        &env,
        "wrapsc",
        r"stty -echo; printf '\033[3;75Hxxxxxx\0337\033[10;1Hmoved'; read x; printf '\0338AFTER'; exec sleep 1000",
    );
    wait_text(&env, "wrapsc", "moved");
    let first = env.term(&["attach", "wrapsc"], 24, 80);
    first.wait_text("moved");
    drop(first);
    let term = env.term(&["attach", "wrapsc"], 24, 80);
    term.wait_text("moved");
    term.write(b"\r");
    term.wait_text("AFTER");
    wait_matches_capture(&env, "wrapsc", &term);
}

#[test]
fn resizing_during_an_alternate_screen_program_reflows_the_main_screen_under_it() {
    let env = Env::new();
    let line: String = (0..6).map(|d| format!("{d}abcdefghi")).collect();
    new_session(
        &env,
        "altrf",
        &format!(
            r"stty -echo; for i in 1 2 3; do echo $i-{line}; done; printf '\033[?1049h\033[2JALT'; read x; printf '\033[?1049l'; echo BACK; exec sleep 1000"
        ),
    );
    wait_text(&env, "altrf", "ALT");
    let mut term = env.term(&["attach", "altrf"], 24, 80);
    term.wait_text("ALT");
    term.resize(24, 30);
    common::eventually("the session to narrow", || {
        (env.ok(&["ls", "--json"]).contains("\"cols\":30")).then_some(())
    });
    drop(term);
    let term = env.term(&["attach", "altrf"], 24, 30);
    term.wait_text("ALT");
    term.write(b"\r");
    term.wait_text("BACK");
    wait_matches_capture(&env, "altrf", &term);
    // The main screen's lines were rewrapped at 30 columns while the alternate screen showed.
    let rows = term.screen().rows();
    let whole = format!("1-{line}");
    assert_eq!(rows[..3], [&whole[..30], &whole[30..60], &whole[60..]]);
}

#[test]
fn an_alternate_screen_resized_without_a_redraw_reattaches_as_captured() {
    let env = Env::new();
    let line: String = (0..6).map(|d| format!("{d}abcdefghi")).collect();
    new_session(
        &env,
        "altsz",
        &format!(
            r"stty -echo; printf '\033[?1049h\033[2J\033[1;1H{line}\033[3;5Hxy'; exec sleep 1000"
        ),
    );
    wait_text(&env, "altsz", "xy");
    let mut term = env.term(&["attach", "altsz"], 24, 80);
    term.wait_text("xy");
    term.resize(20, 30);
    common::eventually("the session to narrow", || {
        (captured(&env, "altsz").0.len() == 20).then_some(())
    });
    term.resize(24, 80);
    common::eventually("the session to widen", || {
        (captured(&env, "altsz").0.len() == 24).then_some(())
    });
    drop(term);
    let again = env.term(&["attach", "altsz"], 24, 80);
    again.wait_text("xy");
    wait_matches_capture(&env, "altsz", &again);
}

/// The numbers of the `L<n>` lines the terminal shows, in its scrollback and on its screen.
fn shown_numbers(term: &Term) -> Vec<u32> {
    let mut rows = term.scrollback();
    rows.extend(term.screen().rows());
    rows.iter()
        .filter_map(|l| l.trim().strip_prefix('L')?.parse().ok())
        .collect()
}

#[test]
fn an_attach_replays_the_newest_history_up_to_its_bound() {
    let env = Env::new();
    new_session(
        &env,
        "long",
        "i=1; while [ $i -le 2500 ]; do echo L$i; i=$((i+1)); done; echo READY; exec sleep 1000",
    );
    wait_text(&env, "long", "^READY$");
    let attach = |extra: &[&str]| {
        let mut args = vec!["attach", "long"];
        args.extend_from_slice(extra);
        let term = env.term(&args, 24, 80);
        term.wait_text("READY");
        let shown = shown_numbers(&term);
        (shown.first().copied(), shown.last().copied(), shown.len())
    };
    // By default the newest 2000 history lines, then the screen's.
    let screen = env.ok(&["capture", "long"]);
    let screen_lines = screen.lines().filter(|l| l.starts_with('L')).count();
    let first_default = (2500 - 2000 - screen_lines + 1) as u32;
    assert_eq!(
        attach(&[]),
        (Some(first_default), Some(2500), 2000 + screen_lines)
    );
    assert_eq!(attach(&["--history", "all"]), (Some(1), Some(2500), 2500));
    assert_eq!(attach(&["--history", "0"]).2, screen_lines);
    // The config file sets the default.
    let dir = env.home.join(".config/linger");
    std::fs::create_dir_all(&dir).expect("config dir");
    std::fs::write(dir.join("config.toml"), "attach_history = 10\n").expect("config");
    assert_eq!(attach(&[]).2, 10 + screen_lines);
    let bad = env.run(&["attach", "long", "--history", "lots"]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("give a number of lines or `all`"),
        "{bad:?}"
    );
}

#[test]
fn a_replay_of_a_megabyte_arrives_whole_and_in_order() {
    // 8000 lines of 150 columns: a replay of about 1.2 MB, several times the socket buffer.
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "big",
        "--scrollback",
        "9000",
        "--",
        "sh",
        "-c",
        "awk 'BEGIN { for (i = 1; i <= 8000; i++) printf \"L%d %0145d\\n\", i, i }'; \
         echo READY; exec sleep 1000",
    ]);
    wait_text(&env, "big", "^READY$");
    let term = env.term(&["attach", "big", "--history", "all"], 50, 200);
    term.wait_text("READY");
    let mut rows = term.scrollback();
    rows.extend(term.screen().rows());
    let lines: Vec<&String> = rows.iter().filter(|row| row.starts_with('L')).collect();
    assert_eq!(lines.len(), 8000, "first {:?}", lines.first());
    for (i, line) in (1..=8000).zip(lines) {
        assert_eq!(*line, format!("L{i} {i:0145}"), "line {i}");
    }
}
