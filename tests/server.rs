//! The server under bad input, other users, unsafe dirs, races and faults.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use common::Env;

fn start(env: &Env) {
    env.ok(&[
        "new",
        "-d",
        "keep",
        "--",
        "sh",
        "-c",
        "echo ALIVE; exec sleep 1000",
    ]);
    env.ok(&["wait", "keep", "--text", "ALIVE", "--timeout", "20s"]);
}

fn assert_alive(env: &Env) {
    let ls = env.ok(&["ls"]);
    assert!(ls.contains("keep") && ls.contains("running"), "{ls}");
}

/// Reads until the server closes the connection (or 10 s pass).
fn drain(mut s: UnixStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

fn hello_frame() -> Vec<u8> {
    linger::protocol::encode(&linger::protocol::Hello::ours())
}

#[test]
fn garbage_on_the_socket_leaves_the_server_up() {
    let env = Env::new();
    start(&env);
    let mut s = UnixStream::connect(env.socket()).unwrap();
    let mut seed = 0x2545F4914F6CDD1Du64;
    let garbage: Vec<u8> = (0..1 << 20)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect();
    let _ = s.write_all(&garbage);
    drain(s);
    assert_alive(&env);
}

#[test]
fn oversized_length_header_is_refused_without_allocating() {
    let env = Env::new();
    start(&env);
    let mut s = UnixStream::connect(env.socket()).unwrap();
    s.write_all(&[0xff, 0xff, 0xff, 0xff]).unwrap();
    drain(s);
    assert_alive(&env);
    assert!(env.log().contains("exceeds"), "log: {}", env.log());
}

#[test]
fn truncated_body_and_unknown_message_leave_the_server_up() {
    let env = Env::new();
    start(&env);
    let mut s = UnixStream::connect(env.socket()).unwrap();
    s.write_all(&hello_frame()).unwrap();
    s.write_all(&[0, 0, 0, 100, 1, 2, 3]).unwrap();
    drop(s);
    let mut s = UnixStream::connect(env.socket()).unwrap();
    s.write_all(&hello_frame()).unwrap();
    s.write_all(&[0, 0, 0, 2, 250, 7]).unwrap();
    let reply = drain(s);
    assert!(String::from_utf8_lossy(&reply).contains("bad request"));
    assert_alive(&env);
}

#[test]
fn silent_and_idle_connections_do_not_block_others() {
    let env = Env::new();
    start(&env);
    let idle: Vec<UnixStream> = (0..200)
        .map(|_| UnixStream::connect(env.socket()).unwrap())
        .collect();
    assert_alive(&env);
    drop(idle);
    assert_alive(&env);
}

#[test]
fn version_mismatch_names_both_versions() {
    let env = Env::new();
    start(&env);
    let out = env
        .cmd()
        .arg("ls")
        .env("LINGER_TEST_PROTOCOL", "999")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("linger: "), "{err}");
    assert!(
        err.contains("999")
            && err.contains(&format!("protocol {}", linger::protocol::PROTOCOL_VERSION)),
        "{err}"
    );
    assert!(err.contains("kill-server"), "{err}");
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn unsafe_runtime_dir_is_refused() {
    let env = Env::new();
    std::fs::create_dir(&env.dir).unwrap();
    std::fs::set_permissions(&env.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = env.run(&["new", "-d", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("linger: ") && err.contains("chmod 700"),
        "{err}"
    );
    // Never fixed silently.
    let mode = std::fs::metadata(&env.dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
}

#[test]
fn runtime_dir_owned_by_another_user_is_refused() {
    if !common::root_or_skip(
        "runtime_dir_owned_by_another_user_is_refused",
        "needs root to create a dir owned by someone else",
    ) {
        return;
    }
    let env = Env::new();
    std::fs::create_dir(&env.dir).unwrap();
    std::fs::set_permissions(&env.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&env.dir, Some(65534), Some(65534)).unwrap();
    let out = env.run(&["ls"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("owned by uid 65534"));
}

#[test]
fn another_uid_is_refused_by_the_server() {
    if !common::root_or_skip(
        "another_uid_is_refused_by_the_server",
        "only root can act as another uid",
    ) {
        return;
    }
    let env = Env::new();
    start(&env);
    // Open the way on purpose, so only the peer check stands between the other user and us.
    std::fs::set_permissions(&env.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(env.socket(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let as_us = env
        .cmd()
        .arg("debug-connect")
        .arg(env.socket())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&as_us.stdout).contains("hello protocol"));
    let mut other = env.cmd();
    std::os::unix::process::CommandExt::uid(&mut other, 65534);
    std::os::unix::process::CommandExt::gid(&mut other, 65534);
    let out = other
        .arg("debug-connect")
        .arg(env.socket())
        .current_dir("/")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "refused",
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    common::eventually("the refusal in the log", || {
        env.log()
            .contains("refused a connection from uid 65534")
            .then_some(())
    });
    std::fs::set_permissions(&env.dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_alive(&env);
}

#[test]
fn stale_socket_is_cleaned_up() {
    let env = Env::new();
    start(&env);
    let pid = env.server_pid().unwrap();
    // SAFETY: killing our own test server.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    common::eventually("server gone", || {
        (unsafe { libc::kill(pid, 0) } != 0).then_some(())
    });
    assert!(env.socket().exists(), "a dead server leaves its socket");
    env.ok(&["new", "-d", "again", "--", "sleep", "1000"]);
    assert!(env.ok(&["ls"]).contains("again"));
}

#[test]
fn racing_starts_end_with_one_server() {
    let env = Env::new();
    let children: Vec<_> = (0..6)
        .map(|i| {
            env.cmd()
                .args(["new", "-d", &format!("r{i}"), "--", "sleep", "1000"])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let ls = env.ok(&["ls"]);
    assert_eq!(ls.lines().count(), 7, "{ls}");
    // Losers of the start race exit on their own once they see the lock taken.
    common::eventually("a single server", || {
        (count_servers(&env) == 1).then_some(())
    });
}

fn count_servers(env: &Env) -> usize {
    let wanted = format!("LINGER_DIR={}", env.dir.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            let environ = std::fs::read(e.path().join("environ")).unwrap_or_default();
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            cmdline.ends_with(b"server\0")
                && environ.split(|&b| b == 0).any(|kv| kv == wanted.as_bytes())
        })
        .count()
}

#[test]
fn model_panic_is_isolated_to_its_session() {
    let env = Env::new();
    start(&env);
    env.ok(&[
        "new",
        "-d",
        "boom",
        "--",
        "sh",
        "-c",
        "read x; printf 'before\\n\\033]7770;x\\007'; read y; echo after; exec sleep 1000",
    ]);
    env.ok(&["send", "boom", "--enter", ""]);
    common::eventually("panic logged", || {
        env.log().contains("screen model panicked").then_some(())
    });
    // The program kept running and the rebuilt model follows its output.
    env.ok(&["send", "boom", "--enter", ""]);
    env.ok(&["wait", "boom", "--text", "after", "--timeout", "20s"]);
    assert!(env.ok(&["ls"]).contains("boom"));
    env.ok(&["send", "boom", "x"]);
    assert_alive(&env);
}

#[test]
fn kill_escalates_to_sigkill_and_reaches_the_process_group() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "stubborn",
        "--",
        "sh",
        "-c",
        "trap '' TERM; sleep 1000 & echo BG=$!; echo READY; while :; do sleep 1; done",
    ]);
    let line = {
        env.ok(&["wait", "stubborn", "--text", "READY", "--timeout", "20s"]);
        env.ok(&["capture", "stubborn"])
    };
    let bg: i32 = line
        .lines()
        .find_map(|l| l.strip_prefix("BG="))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    env.ok(&["kill", "stubborn"]);
    assert!(!env.ok(&["ls"]).contains("stubborn"));
    common::eventually("background job killed", || {
        let stat = std::fs::read_to_string(format!("/proc/{bg}/stat")).unwrap_or_default();
        (stat.is_empty() || stat.contains(") Z ")).then_some(())
    });
}

#[test]
fn child_that_exits_at_once_and_one_that_closes_its_tty() {
    let env = Env::new();
    env.ok(&["new", "-d", "quick", "--", "true"]);
    let out = env.run(&["wait", "quick", "--exit", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(0));
    env.ok(&[
        "new",
        "-d",
        "closer",
        "--",
        "sh",
        "-c",
        "echo BYE; exec 0<&- 1>&- 2>&-; sleep 1000",
    ]);
    env.ok(&["wait", "closer", "--text", "BYE", "--timeout", "20s"]);
    assert!(env.ok(&["ls"]).contains("running"));
    env.ok(&["kill", "closer"]);
}

#[test]
fn bad_names_and_arguments_get_one_line_errors() {
    let env = Env::new();
    for name in [
        "a/b",
        "..",
        ".x",
        "-x",
        "",
        &"n".repeat(10_000),
        "tab\tname",
    ] {
        let out = env.run(&["new", "-d", name, "--", "true"]);
        assert_eq!(out.status.code(), Some(2), "name {name:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("linger: ") && err.lines().count() == 1,
            "{err}"
        );
    }
    let out = env.run(&["new", "-d", "x", "-e", "NOEQUALS", "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&["kill", "--signal", "NOPE", "x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("linger: "));
    let out = env.run(&["attach", "missing"]);
    assert_eq!(out.status.code(), Some(1));
    env.ok(&["new", "-d", "taken", "--", "sleep", "1000"]);
    let out = env.run(&["new", "-d", "taken", "--", "sleep", "1000"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = env.run(&["new", "-d", "nodir", "-C", "/does/not/exist", "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    let out = env.run(&["new", "-d", "noprog", "--", "/does/not/exist"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot start"));
    // Nothing was created outside the runtime dir.
    let entries: Vec<_> = std::fs::read_dir(&env.home).unwrap().collect();
    assert!(entries.is_empty());
}

#[test]
fn session_environment_and_cwd() {
    let env = Env::new();
    let cwd = env.home.join("work");
    std::fs::create_dir(&cwd).unwrap();
    env.ok(&[
        "new", "-d", "envs", "-C", cwd.to_str().unwrap(), "-e", "FOO=bar baz", "--", "sh", "-c",
        "echo \"[$FOO][$TERM][$COLORTERM][$LINGER_SESSION][${TMUX-unset}][$(pwd)]\"; exec sleep 1000",
    ]);
    env.ok(&["wait", "envs", "--text", "FOO|bar", "--timeout", "20s"]);
    let screen = env.ok(&["capture", "envs"]);
    let expected = format!(
        "[bar baz][xterm-256color][truecolor][envs][unset][{}]",
        cwd.display()
    );
    assert!(screen.contains(&expected), "{screen}");
}

#[test]
fn kill_server_ends_every_session() {
    let env = Env::new();
    start(&env);
    let pid = env.server_pid().unwrap();
    env.ok(&["kill-server"]);
    common::eventually("server exit", || {
        (unsafe { libc::kill(pid, 0) } != 0).then_some(())
    });
    assert!(!env.socket().exists());
    // Ended cleanly: exited or killed, never lost.
    let ls = env.ok(&["ls"]);
    assert!(ls.contains("keep") && ls.contains("killed(SIGHUP)"), "{ls}");
}

/// A name is taken before the program starts (off the server's thread): of creators racing
/// for one name exactly one wins, the others are told it exists, and a program that cannot
/// start gives its name back at once.
#[test]
fn creators_racing_for_a_name_and_a_failed_start() {
    let env = Env::new();
    env.ok(&["new", "-d", "first", "--", "sleep", "1000"]);
    let outcomes: Vec<std::process::Output> = std::thread::scope(|s| {
        let racers: Vec<_> = (0..6)
            .map(|_| s.spawn(|| env.run(&["new", "-d", "contested", "--", "sleep", "1000"])))
            .collect();
        racers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let won = outcomes.iter().filter(|o| o.status.success()).count();
    assert_eq!(won, 1, "{outcomes:?}");
    for lost in outcomes.iter().filter(|o| !o.status.success()) {
        let err = String::from_utf8_lossy(&lost.stderr);
        assert!(
            err.contains("already exists") && err.lines().count() == 1,
            "{err}"
        );
    }
    let listed = common::listed_sessions(&env);
    assert_eq!(listed.len(), 2, "{listed:?}");
    let contested = common::listed(&env, "contested").expect("contested listed");
    assert!(contested["pid"].as_u64().unwrap_or(0) > 0, "{contested}");
    let out = env.run(&["new", "-d", "again", "--", "/does/not/exist"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(common::listed(&env, "again").is_none());
    env.ok(&["new", "-d", "again", "--", "sleep", "1000"]);
    assert!(common::listed(&env, "again").is_some());
}

/// How a session's program is found and started: by name in the session's own PATH (the
/// caller's), a script without `#!` under sh (as `execvp` and shells run one), and a file that
/// cannot be executed, or whose `#!` interpreter is missing, refused by `new` with the reason.
#[test]
fn programs_are_found_in_the_sessions_path_and_scripts_without_a_shebang_run_under_sh() {
    let env = Env::new();
    let bin = env.home.join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    let script = bin.join("greet");
    write_executable(&script, "echo greeting-$1-$((20+1))\n");
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let out = env
        .cmd()
        .env("PATH", &path)
        .args(["new", "-d", "g", "--", "greet", "there"])
        .output()
        .expect("linger new");
    assert!(out.status.success(), "{out:?}");
    env.wait_capture("g", "the script's output", |s| {
        s.contains("greeting-there-21")
    });
    let plain = bin.join("plain");
    std::fs::write(&plain, "not a program").expect("file");
    let out = env.run(&["new", "-d", "p", "--", plain.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot start") && err.contains("Permission denied"),
        "{err}"
    );
    let orphan = bin.join("orphan");
    write_executable(&orphan, "#!/no/such/interpreter -x\necho never\n");
    let out = env.run(&["new", "-d", "o", "--", orphan.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("its #! interpreter \"/no/such/interpreter\" is missing"),
        "{err}"
    );
}

/// Writes `text` to `path` as a file anyone may execute.
fn write_executable(path: &std::path::Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).expect("write the program");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// `new` answers before the program's exec (it does not wait for it). An exec that fails all
/// the same, after every check `new` makes passed, is told on the session's screen, and the
/// program ends with 126, as in a shell. Here the file is busy: a writer holds it open, which
/// `new`'s checks cannot see but the exec refuses (ETXTBSY).
#[test]
fn an_exec_that_fails_after_new_answered_shows_why_on_the_screen() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let script = env.home.join("busy");
    let mut writer = std::fs::File::create(&script).expect("script");
    std::io::Write::write_all(&mut writer, b"#!/bin/sh\necho never\n").expect("write");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let path = script.to_str().expect("utf-8");
    env.ok(&["new", "-d", "busy", "--", path]);
    let out = env.run(&["wait", "busy", "--exit", "--timeout", "20s"]);
    assert_eq!(out.status.code(), Some(126), "{out:?}");
    let screen = env.ok(&["capture", "busy"]);
    assert!(
        screen.contains(&format!("linger: cannot start '{path}': Text file busy")),
        "{screen}"
    );
    drop(writer);
}

/// A command sends its request right behind its hello, before the server has answered. A
/// server that goes away without answering (an upgrade handing over, a crash the keeper
/// restarts) never saw the request: it goes to the server that follows.
#[test]
fn a_request_whose_server_leaves_before_answering_reaches_the_next_server() {
    let env = Env::new();
    // A record on disk, which the next server lists from its start.
    env.ok(&["new", "-d", "saved", "--", "sh", "-c", "exit 0"]);
    env.ok(&["wait", "saved", "--exit", "--timeout", "20s"]);
    env.ok(&["kill-server"]);
    // A server on its way out: it takes one connection and closes it without a word.
    let leaving = std::os::unix::net::UnixListener::bind(env.socket()).unwrap();
    let mut ls = env
        .cmd()
        .args(["ls"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It reads the hello and the request right behind it, then leaves without answering.
    let (mut conn, _) = leaving.accept().unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while got.len() < 4
        || got.len() <= 4 + u32::from_be_bytes(got[..4].try_into().unwrap()) as usize
    {
        let n = conn.read(&mut buf).unwrap();
        assert!(n > 0, "the client closed after {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    drop(conn);
    drop(leaving);
    std::fs::remove_file(env.socket()).unwrap();
    // The next server (started by this command) answers the pending `ls`.
    env.ok(&["new", "-d", "after", "--", "sleep", "1000"]);
    let mut listed = String::new();
    ls.stdout
        .take()
        .unwrap()
        .read_to_string(&mut listed)
        .unwrap();
    assert!(ls.wait().unwrap().success(), "{listed}");
    assert!(listed.contains("saved"), "{listed}");
}
