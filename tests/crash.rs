//! A crashed server (issue 15): the keeper starts another at once, attached clients follow
//! their session to it, and a program whose record the dead server never wrote is adopted all
//! the same.

mod common;

use common::{Env, alive, eventually, listed};

/// A server other than `old` that answers (its pid file is written once it listens).
fn new_server(env: &Env, old: i32) -> i32 {
    eventually("a new server", || {
        env.server_pid().filter(|p| *p != old && alive(*p))
    })
}

/// Freezes the server so it writes nothing more, lets `edit` change its files, then SIGKILLs
/// it: what the files say is exactly what a crash at that moment would leave.
fn crash_after(env: &Env, edit: impl FnOnce()) -> i32 {
    let pid = env.server_pid().expect("server pid");
    // SAFETY: signals to this test's own server.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    edit();
    common::sigkill_and_wait(pid);
    pid
}

#[test]
fn the_keeper_restarts_a_crashed_server_and_an_attached_client_stays() {
    let env = Env::new();
    env.ok(&["new", "-d", "sh", "-e", "PS1=$ ", "--", "sh"]);
    let mut term = env.term(&["attach", "sh"], 24, 80);
    term.write(b"echo before-$((6*7))\r");
    term.wait_text("before-42");
    // Output the dead server had saved (its screen) or journaled is what survives it; the
    // last read can reach the terminal before the journal (docs/RELIABILITY.md, bounds).
    let session = env.state.join("sessions/sh");
    eventually("the output saved or journaled", || {
        ["journal.raw", "screen.txt"]
            .iter()
            .filter_map(|file| std::fs::read(session.join(file)).ok())
            .any(|bytes| common::contains(&bytes, b"before-42"))
            .then_some(())
    });
    let old = env.server_pid().expect("server pid");
    env.kill9_server();
    // No linger command runs in between: the keeper started this one by itself.
    new_server(&env, old);
    term.write(b"echo after-$((6*7))\r");
    term.wait_text("after-42");
    assert!(term.running(), "the attached client ended");
    let screen = env.ok(&["capture", "sh"]);
    assert!(
        screen.contains("before-42") && screen.contains("after-42"),
        "{screen}"
    );
    assert!(env.log().contains("restarting the crashed server"));
}

#[test]
fn a_server_crashing_in_a_loop_is_restarted_three_times_then_by_the_next_command() {
    let env = Env::new();
    env.ok(&["new", "-d", "idle", "--", "cat"]);
    let program = listed(&env, "idle").expect("idle")["pid"]
        .as_i64()
        .expect("pid") as i32;
    let mut server = env.server_pid().expect("server pid");
    for _ in 0..3 {
        env.kill9_server();
        server = new_server(&env, server);
    }
    env.kill9_server();
    eventually("the keeper gives up", || {
        env.log().contains("not restarting it").then_some(())
    });
    assert!(alive(program), "the program died with the servers");
    // The next command starts one, which adopts the program.
    let idle = listed(&env, "idle").expect("idle");
    assert_eq!(idle["state"], "running", "{idle}");
    assert_eq!(idle["pid"].as_i64(), Some(program as i64));
}

#[test]
fn a_program_whose_record_never_reached_the_disk_is_adopted() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "fresh",
        "--",
        "sh",
        "-c",
        "echo made-it; exec sleep 1000",
    ]);
    env.ok(&["wait", "fresh", "--text", "made-it", "--timeout", "20s"]);
    let pid = listed(&env, "fresh").expect("fresh")["pid"]
        .as_i64()
        .expect("pid");
    let dir = env.state.join("sessions/fresh");
    eventually("the record written", || {
        dir.join("meta.json").exists().then_some(())
    });
    let old = crash_after(&env, || {
        std::fs::remove_file(dir.join("meta.json")).expect("remove the record");
    });
    new_server(&env, old);
    let fresh = listed(&env, "fresh").expect("fresh is adopted");
    assert_eq!(fresh["state"], "running", "{fresh}");
    assert_eq!(fresh["pid"].as_i64(), Some(pid), "{fresh}");
    // Rebuilt from the process: what runs now.
    assert_eq!(
        fresh["command"],
        serde_json::json!(["sleep", "1000"]),
        "{fresh}"
    );
    env.ok(&["kill", "fresh"]);
    eventually("the program ended", || (!alive(pid as i32)).then_some(()));
}

#[test]
fn a_revived_program_whose_new_record_never_reached_the_disk_is_adopted() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "again",
        "--",
        "sh",
        "-c",
        "echo first-run; exit 3",
    ]);
    let ended = env.run(&["wait", "again", "--exit", "--timeout", "20s"]);
    assert_eq!(ended.status.code(), Some(3), "{ended:?}");
    let record = env.state.join("sessions/again/meta.json");
    let exited = eventually("the exit recorded", || {
        let text = std::fs::read_to_string(&record).ok()?;
        text.contains("\"exited\"").then_some(text)
    });
    env.ok(&[
        "revive",
        "again",
        "--",
        "sh",
        "-c",
        "echo second-run; exec sleep 1000",
    ]);
    env.ok(&["wait", "again", "--text", "second-run", "--timeout", "20s"]);
    let pid = listed(&env, "again").expect("again")["pid"]
        .as_i64()
        .expect("pid");
    let old = crash_after(&env, || {
        std::fs::write(&record, &exited).expect("put the old record back");
    });
    new_server(&env, old);
    let again = listed(&env, "again").expect("again");
    assert_eq!(again["state"], "running", "{again}");
    assert_eq!(again["pid"].as_i64(), Some(pid), "{again}");
    let all = env.ok(&["capture", "again", "--all"]);
    assert!(
        all.contains("first-run") && all.contains("second-run"),
        "{all}"
    );
    env.ok(&["kill", "again"]);
}

#[test]
fn an_adopted_full_screen_program_keeps_its_alternate_screen_and_the_text_under_it() {
    let env = Env::new();
    let script = "printf 'main-text\\n'; printf '\\033[?1049h\\033[?2004h\\033[5;3Halt-text'; \
                  read x; printf '\\033[?1049l'; case $x in *200~*) echo pasted;; esac; \
                  echo left; exec sleep 1000";
    env.ok(&["new", "-d", "tui", "--", "sh", "-c", script]);
    env.ok(&["wait", "tui", "--text", "alt-text", "--timeout", "20s"]);
    let redraw = env.state.join("sessions/tui/redraw.vt");
    eventually("the exact screen saved", || {
        let bytes = std::fs::read(&redraw).ok()?;
        common::contains(&bytes, b"alt-text").then_some(())
    });
    let before = common::captured(&env, "tui");
    env.kill9_server();
    let json: serde_json::Value =
        serde_json::from_str(&env.ok(&["capture", "tui", "--json"])).expect("json");
    assert_eq!(json["alternate_screen"], true, "{json}");
    assert_eq!(
        common::captured(&env, "tui"),
        before,
        "screen and cursor after adoption"
    );
    // Bracketed paste is still on: `send` wraps lines of text in paste marks, as it did for
    // the program before.
    env.ok(&["send", "tui", "--enter", "yes\nmore"]);
    env.ok(&["wait", "tui", "--text", "^left$", "--timeout", "20s"]);
    let screen = env.ok(&["capture", "tui"]);
    assert!(
        screen.contains("main-text"),
        "the main screen under it: {screen}"
    );
    assert!(!screen.contains("alt-text"), "{screen}");
    assert!(
        screen.contains("pasted"),
        "bracketed paste was lost: {screen}"
    );
}

/// `new` answers once the program's terminal is in the keeper's socket: a server SIGKILLed the
/// moment `new` has answered leaves the program to the keeper, whose next server adopts it.
#[test]
fn a_program_started_right_before_a_crash_is_adopted() {
    let env = Env::new();
    env.ok(&["new", "-d", "first", "--", "sleep", "1000"]);
    let old = env.server_pid().expect("server pid");
    env.ok(&["new", "-d", "late", "--", "sleep", "1000"]);
    common::sigkill_and_wait(old);
    new_server(&env, old);
    let late = listed(&env, "late").expect("late is adopted");
    assert_eq!(late["state"], "running", "{late}");
    let pid = late["pid"].as_i64().expect("pid");
    assert!(alive(pid as i32), "the program died with the server");
    env.ok(&["kill", "late"]);
    env.ok(&["kill", "first"]);
}

/// A keeper that does not answer (stopped here) delays no `new`: each program's terminal goes
/// into the keeper's socket without waiting for the answer about the one before, so no `new`
/// waits out its bound (and warns that its program may not survive), and once the keeper runs
/// again every program is its to hand to the next server.
#[test]
fn a_stopped_keeper_delays_no_new_and_still_gets_every_program() {
    let env = Env::new();
    env.ok(&["new", "-d", "first", "--", "sleep", "1000"]);
    let keeper = env.keeper_pid().expect("keeper pid");
    // SAFETY: signals to this test's own keeper.
    unsafe { libc::kill(keeper, libc::SIGSTOP) };
    for name in ["a", "b", "c"] {
        env.ok(&["new", "-d", name, "--", "sleep", "1000"]);
    }
    // SAFETY: as above.
    unsafe { libc::kill(keeper, libc::SIGCONT) };
    let log = env.log();
    assert!(
        !log.contains("did not take its terminal"),
        "a new waited for the keeper:\n{log}"
    );
    crash_and_see_adopted(&env, &["first", "a", "b", "c"]);
}

/// The keeper link outlives quiet spells longer than any timeout on its socket: a server that
/// said nothing to the keeper for 6 s still hands it the next program, which then survives a
/// crash. (The link's answers thread once inherited the 5 s receive timeout of the greeting and
/// gave up on the keeper after five quiet seconds.)
#[test]
#[ignore = "soak: 6 s of quiet between two sessions"]
fn a_program_started_after_a_long_quiet_spell_survives_a_crash() {
    let env = Env::new();
    env.ok(&["new", "-d", "first", "--", "sleep", "1000"]);
    // The quiet spell itself is the scenario, not a wait for something.
    std::thread::sleep(std::time::Duration::from_secs(6));
    env.ok(&["new", "-d", "after", "--", "sleep", "1000"]);
    let log = env.log();
    assert!(!log.contains("lost the keeper"), "{log}");
    crash_and_see_adopted(&env, &["first", "after"]);
}

/// SIGKILLs the server; the next one has adopted every session in `names`, still running
/// (each is killed after).
fn crash_and_see_adopted(env: &Env, names: &[&str]) {
    let old = env.server_pid().expect("server pid");
    common::sigkill_and_wait(old);
    new_server(env, old);
    for name in names {
        let s = listed(env, name).unwrap_or_else(|| panic!("{name} is adopted"));
        assert_eq!(s["state"], "running", "{s}");
        env.ok(&["kill", name]);
    }
}
