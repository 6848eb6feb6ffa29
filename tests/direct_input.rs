//! Keys that go from the user's terminal to the server without the client: once the attach
//! client has handed over its keyboard, the server reads the keys itself, finds the detach
//! chord in them, and lets go of the keyboard before any attachment ends, so the shell the
//! user returns to gets every key typed after.

mod common;

use common::*;

/// How many of `pid`'s descriptors are open on the terminal `path`.
fn descriptors_on(pid: i32, path: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    entries
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target == path)
        .count()
}

/// The terminal the attach client (a child of the terminal's shell, or the terminal's process
/// itself) runs on.
fn terminal_of(term: &Term) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{}/fd/0", term.pid())).expect("the terminal's pts")
}

/// Waits until the server holds the client's terminal twice: for output (passed at the attach)
/// and for the keyboard (passed once the probe is answered).
fn wait_keyboard_handed_over(env: &Env, term: &Term) {
    let pts = terminal_of(term);
    let server = env.server_pid().expect("server pid");
    eventually("the server to hold the client's keyboard", || {
        (descriptors_on(server, &pts) == 2).then_some(())
    });
}

/// `linger new` of session `s`, running `cat` after a ready line.
const NEW_CAT: &[&str] = &[
    "new",
    "-d",
    "s",
    "--",
    "sh",
    "-c",
    "printf 'READY\\n'; exec cat",
];

/// Session `s` running `cat`, attached from a fresh terminal that has handed the server its
/// keyboard.
fn attached_to_cat(env: &Env) -> Term {
    env.ok(NEW_CAT);
    let client = env.term(&["attach", "s"], 24, 80);
    client.wait_text("READY");
    wait_keyboard_handed_over(env, &client);
    client
}

/// Voluntary context switches of all of `pid`'s threads so far.
fn switches(pid: i32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .sum()
}

/// Bytes typed on the terminal at `pts` that nobody has read yet.
fn unread(pts: &std::path::Path) -> usize {
    use std::os::fd::AsRawFd;
    let flags =
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::NONBLOCK;
    let fd = rustix::fs::open(pts, flags, rustix::fs::Mode::empty()).expect("open the pts");
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(rc, 0, "FIONREAD");
    n as usize
}

/// Once the keyboard is handed over, typing does not wake the client: the server reads the keys
/// and writes their echo to the terminal itself. (Through the client, every key woke it; its
/// watch on the keyboard wakes a few times a second at most.)
#[test]
fn typing_does_not_wake_the_client() {
    let env = Env::new();
    let client = attached_to_cat(&env);
    let before = switches(client.pid());
    for i in 0..40 {
        let key = format!("k{i:02} ");
        client.write(key.as_bytes());
        client.wait_text(&key);
    }
    let woken = switches(client.pid()) - before;
    assert!(woken < 20, "the client was woken {woken} times for 40 keys");
    client.write(b"\x1c");
    client.wait_text("[detached from s]");
}

/// While the client is stopped (its shell may have taken the terminal back), the server reads
/// nothing: what is typed stays in the terminal. Once the client runs again, it finds those
/// keys unread and takes its keyboard back: they reach the session, and later keys after them.
#[test]
fn keys_typed_while_the_client_is_stopped_are_not_taken() {
    let env = Env::new();
    let client = attached_to_cat(&env);
    let pts = terminal_of(&client);
    client.signal(libc::SIGSTOP);
    eventually("the client to stop", || {
        linger::proc_stat::ProcStat::of(client.pid()).filter(|stat| stat.stopped())
    });
    client.write(b"held\r");
    eventually("the typed bytes to wait in the terminal", || {
        (unread(&pts) == 5).then_some(())
    });
    assert!(
        !env.ok(&["capture", "s"]).contains("held"),
        "the server took keys while the client was stopped"
    );
    client.signal(libc::SIGCONT);
    env.wait_capture("s", "the held line", |s| s.contains("held"));
    client.write(b"after\r");
    let screen = env.wait_capture("s", "both lines", |s| s.contains("after"));
    let held = screen
        .find("held")
        .expect("the held line reached the session");
    assert!(held < screen.find("after").expect("after"), "{screen}");
}

/// After each way an attachment ends (the chord, `linger detach`, the program's exit), the
/// shell the user returns to reads the next line typed: the server no longer reads the
/// keyboard, and the client does not either.
#[test]
fn the_shell_gets_the_keys_typed_after_an_attachment_ends() {
    let env = Env::new();
    let script = "\"$0\" attach s; echo BACK; read line; echo \"got:$line\"; sleep 100";
    for ending in ["chord", "detach", "exit"] {
        env.ok(NEW_CAT);
        let term = env.term_sh(script, 24, 80);
        term.wait_text("READY");
        let pts = terminal_of(&term);
        wait_keyboard_handed_over(&env, &term);
        match ending {
            "chord" => term.write(b"\x1c"),
            "detach" => {
                env.ok(&["detach", "s"]);
            }
            _ => {
                env.ok(&["kill", "s"]);
            }
        }
        term.wait_text("BACK");
        // (It stops reading before the client hears of the end, and closes the terminal
        // right after.)
        let server = env.server_pid().expect("server pid");
        eventually(
            &format!("{ending}: the server to let go of the terminal"),
            || (descriptors_on(server, &pts) == 0).then_some(()),
        );
        term.write(b"for-the-shell\r");
        term.wait_text("got:for-the-shell");
        if ending != "exit" {
            env.ok(&["kill", "s"]);
        }
        eventually("the session to be gone", || {
            listed(&env, "s").is_none().then_some(())
        });
    }
}

/// A 300 KB paste while the program reads nothing: it waits (in the session, under its 1 MiB
/// bound for typed keys) and reaches the program whole once it reads.
#[test]
fn a_paste_made_while_the_program_reads_nothing_arrives_whole() {
    use std::io::Write;
    let env = Env::new();
    let work = env.home.join("work");
    std::fs::create_dir_all(&work).expect("work dir");
    let script = "stty raw -echo; printf 'READY\\n'; while [ ! -e go ]; do sleep 0.01; done; \
                  head -c 300000 > got; echo DONE; exec sleep 100";
    env.ok(&[
        "new",
        "-d",
        "p",
        "-C",
        path_str(&work),
        "--",
        "sh",
        "-c",
        script,
    ]);
    let client = env.term(&["attach", "p"], 24, 80);
    client.wait_text("READY");
    wait_keyboard_handed_over(&env, &client);
    // SAFETY: dup(2) of the test terminal's own descriptor, owned by the File below.
    let master = unsafe { libc::dup(client.master_fd()) };
    assert!(master >= 0, "dup the terminal");
    // SAFETY: a descriptor just returned by dup(2), owned by nothing else.
    let mut typing = unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(master) };
    let pasted: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let expected = pasted.clone();
    let paste = std::thread::spawn(move || typing.write_all(&pasted));
    std::fs::write(work.join("go"), "").expect("go");
    env.wait_capture("p", "the program to have read the paste", |s| {
        s.contains("DONE")
    });
    paste.join().expect("paste thread").expect("paste written");
    let got = std::fs::read(work.join("got")).expect("what the program read");
    assert_eq!(got.len(), expected.len(), "bytes the program read");
    assert!(got == expected, "the paste arrived changed");
}

/// A server started by hand in the background of the very terminal the user attaches from
/// (`linger server &` in a job-control shell): reading that terminal would stop the server
/// (SIGTTIN), so the client keeps the keys, and typing works.
#[test]
fn attaching_from_the_terminal_a_server_was_started_in_keeps_the_keys_in_the_client() {
    let env = Env::new();
    let script = "set -m; \"$0\" server >/dev/null 2>&1 & \
                  while [ ! -S \"$LINGER_DIR/server.sock\" ]; do sleep 0.02; done; \
                  \"$0\" new -d s -- sh -c \"printf 'READY\\\\n'; exec cat\" && \"$0\" attach s; \
                  echo BACK; sleep 100";
    let term = env.term_sh(script, 24, 80);
    term.wait_text("READY");
    term.write(b"typed-here\r");
    env.wait_capture("s", "the typed line twice", |s| {
        s.matches("typed-here").count() >= 2
    });
    let server = env.server_pid().expect("server pid");
    let stat = linger::proc_stat::ProcStat::of(server).expect("server stat");
    assert!(!stat.stopped(), "the server was stopped");
    term.write(b"\x1c");
    term.wait_text("BACK");
    env.ok(&["kill-server"]);
}

/// ssh drops (the terminal hangs up) while the server reads the client's keyboard: the server
/// lets go of the terminal and keeps serving, and the session runs on. It used to spin on the
/// hung-up terminal (tokio cannot clear a hang-up's readiness), and no command got an answer.
#[test]
fn a_terminal_that_hangs_up_under_an_attachment_leaves_the_server_serving() {
    let env = Env::new();
    let mut client = attached_to_cat(&env);
    let pts = terminal_of(&client);
    let server = env.server_pid().expect("server pid");
    // The user sits idle for a moment before the line drops: longer than the server trusts
    // its last look at the client (100 ms), so it looks again when the hang-up wakes it. By
    // then the kernel has taken the terminal from the client, which no longer shows in front.
    std::thread::sleep(std::time::Duration::from_millis(300));
    client.hang_up();
    client.wait_exit();
    eventually("the server to let go of the hung-up terminal", || {
        (descriptors_on(server, &pts) == 0).then_some(())
    });
    let s = listed(&env, "s").expect("s is listed");
    assert_eq!(s["state"], "running");
    assert_eq!(s["clients"], 0);
    env.ok(&["send", "s", "--enter", "still-here"]);
    env.wait_capture("s", "the session to echo what was sent", |s| {
        s.matches("still-here").count() >= 2
    });
}

/// A server that stops reading (here: stopped outright) must not trap the user: the client
/// notices keys left unread, takes its keyboard back, and the detach chord works.
#[test]
fn the_detach_chord_works_while_the_server_is_stopped() {
    let env = Env::new();
    let mut client = attached_to_cat(&env);
    let server = env.server_pid().expect("server pid");
    // SAFETY: kill(2) on the test's own server.
    unsafe { libc::kill(server, libc::SIGSTOP) };
    client.write(b"\x1c");
    client.wait_exit();
    // SAFETY: as above.
    unsafe { libc::kill(server, libc::SIGCONT) };
    assert_eq!(listed(&env, "s").expect("s")["state"], "running");
}

/// vim, typed into through the server's keyboard: a lone Esc is held back for a moment (it may
/// start an escape sequence) and must then reach vim by itself, with no further key to push it
/// on; the rest of the edit is saved as typed.
#[test]
fn vim_gets_a_lone_escape_and_saves_what_was_typed() {
    let env = Env::new();
    let file = env.home.join("note.txt");
    let vim = "exec vim -u NONE -i NONE -N note.txt";
    env.ok(&["new", "-d", "v", "--", "sh", "-c", vim]);
    let client = env.term(&["attach", "v"], 24, 80);
    client.wait_text("note.txt");
    wait_keyboard_handed_over(&env, &client);
    client.write(b"i");
    client.wait_text("-- INSERT --");
    client.write(b"typed through the server");
    client.wait_text("typed through the server");
    client.write(b"\x1b");
    client.wait_screen("vim to leave insert mode", |s| {
        !s.contents().contains("-- INSERT --")
    });
    client.write(b":wq\r");
    client.wait_text("[v exited with 0]");
    let saved = std::fs::read_to_string(&file).expect("vim wrote the file");
    assert_eq!(saved, "typed through the server\n");
}
