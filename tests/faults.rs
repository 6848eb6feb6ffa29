//! Faults from issue 10: full or closed log streams, hostile input, ignored signals, two servers
//! on one state dir, bad records, failed revives. Each test goes through the real binary.

mod common;

use std::os::unix::ffi::OsStrExt;
use std::process::{Child, Stdio};

use common::{Env, alive, eventually, sessions_dir};

/// Runs `linger server` in the foreground with the given stdout and stderr.
fn foreground_server(env: &Env, out: Stdio, err: Stdio) -> Child {
    let child = env
        .cmd()
        .arg("server")
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start linger server");
    eventually("server socket", || env.socket().exists().then_some(()));
    child
}

fn log_sizes(env: &Env) -> (u64, u64) {
    let size = |f: &str| {
        std::fs::metadata(env.dir.join(f))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    (size("server.log"), size("server.log.1"))
}

#[test]
fn server_log_rotates_within_its_bound() {
    let env = Env::new();
    let out = env
        .cmd()
        .env("LINGER_TEST_LOG_LIMIT", "4096")
        .args(["new", "-d", "starter", "--", "sleep", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success());
    // Every session logs a start and an end line with its own name: distinct lines, no
    // repeats to fold, so only rotation can keep the log small.
    for i in 0..40 {
        let name = format!("session-with-a-long-name-{i}");
        env.ok(&["new", "-d", &name, "--", "sleep", "100"]);
        env.ok(&["kill", &name, "--signal", "KILL"]);
    }
    env.ok(&["ls"]);
    let (current, old) = log_sizes(&env);
    assert!(current <= 4096 && old <= 4096, "{current} + {old} bytes");
    assert!(old > 0, "the log was never rotated");
}

#[test]
fn repeated_warnings_are_written_once() {
    use std::io::{Read, Write};
    let env = Env::new();
    // `ls` starts no server when there is nothing to list; `new` does.
    env.ok(&["new", "-d", "starter", "--", "sleep", "1000"]);
    // Each connection announces a frame of 4 GiB: the server drops it with a warning.
    for _ in 0..3000 {
        let mut s = std::os::unix::net::UnixStream::connect(env.socket()).unwrap();
        let _ = s.write_all(&u32::MAX.to_be_bytes());
        // Until the server hangs up, so that it reads the frame instead of finding us gone.
        let _ = s.read_to_end(&mut Vec::new());
    }
    env.ok(&["kill-server"]);
    let log = env.log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("dropped a client"))
        .count();
    assert!(
        (1..=2).contains(&warnings),
        "{warnings} warnings:\n{}",
        &log[..log.len().min(2000)]
    );
}

#[test]
fn server_survives_a_full_or_closed_stderr() {
    for how in ["/dev/full", "broken pipe"] {
        let env = Env::new();
        let mut server = if how == "/dev/full" {
            let full = || {
                Stdio::from(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open("/dev/full")
                        .unwrap(),
                )
            };
            foreground_server(&env, full(), full())
        } else {
            let mut child = foreground_server(&env, Stdio::piped(), Stdio::piped());
            drop(child.stdout.take());
            drop(child.stderr.take());
            child
        };
        let pid = server.id() as i32;
        // Each of these logs lines the server cannot write.
        env.ok(&[
            "new",
            "-d",
            "a",
            "--",
            "sh",
            "-c",
            "echo up-and-running; exec sleep 100",
        ]);
        env.ok(&["wait", "a", "--text", "up-and-running", "--timeout", "20s"]);
        env.ok(&["kill", "a"]);
        assert!(alive(pid), "{how}: server died");
        assert_eq!(
            env.server_pid(),
            Some(pid),
            "{how}: another server took over"
        );
        env.ok(&["kill-server"]);
        let status = eventually("server exit", || server.try_wait().unwrap());
        assert!(status.success(), "{how}: server ended with {status}");
    }
}

/// `ls --json` entry of one session.
fn session_json(env: &Env, name: &str) -> serde_json::Value {
    common::listed(env, name).unwrap_or_else(|| panic!("no session {name} in `ls --json`"))
}

#[test]
fn session_programs_start_with_default_signals_and_an_empty_mask() {
    use std::os::unix::process::CommandExt;
    let env = Env::new();
    let mut starter = env.cmd();
    starter.args(["new", "-d", "starter", "--", "sleep", "1000"]);
    // SAFETY: signal(2) and sigprocmask(2) between fork and exec, as `nohup` would do.
    unsafe {
        starter.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            libc::signal(libc::SIGQUIT, libc::SIG_IGN);
            libc::signal(libc::SIGUSR2, libc::SIG_IGN);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    // This `new` starts the server, which inherits the ignored signals and the mask.
    assert!(starter.output().unwrap().status.success());
    env.ok(&[
        "new",
        "-d",
        "sig",
        "--",
        "sh",
        "-c",
        "exec grep -E '^Sig(Ign|Blk)' /proc/self/status",
    ]);
    env.ok(&["wait", "sig", "--exit", "--timeout", "20s"]);
    let screen = env.ok(&["capture", "sig"]);
    for field in ["SigIgn:", "SigBlk:"] {
        let line = screen
            .lines()
            .find(|l| l.starts_with(field))
            .unwrap_or_else(|| panic!("no {field} in {screen}"));
        let mask = line[field.len()..].trim();
        assert!(mask.bytes().all(|b| b == b'0'), "{screen}");
    }
}

#[test]
fn sighup_ends_the_server_cleanly() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "h",
        "--",
        "sh",
        "-c",
        "echo h-up; exec sleep 1000",
    ]);
    env.ok(&["wait", "h", "--text", "h-up", "--timeout", "20s"]);
    let pid = env.server_pid().expect("server pid");
    // SAFETY: signalling our own test server.
    unsafe {
        libc::kill(pid, libc::SIGHUP);
    }
    eventually("server gone", || (!alive(pid)).then_some(()));
    // A clean shutdown records how the session ended; a killed server leaves it `lost`.
    let s = session_json(&env, "h");
    assert_ne!(s["state"], "lost", "{s}");
}

#[test]
fn deeply_nested_key_name_is_refused_and_the_server_lives() {
    let env = Env::new();
    env.ok(&["new", "-d", "k", "--", "sleep", "1000"]);
    let pid = env.server_pid().expect("server pid");
    let key = format!("{}x", "M-".repeat(60_000));
    let out = env.run(&["send", "k", "--keys", &key]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("at most 32"), "{err}");
    assert!(alive(pid), "the server died");
    assert_eq!(session_json(&env, "k")["state"], "running");
}

#[test]
fn a_second_server_for_the_same_state_dir_refuses_and_names_the_first() {
    let a = Env::new();
    a.ok(&[
        "new",
        "-d",
        "live",
        "--",
        "sh",
        "-c",
        "echo live-up; exec sleep 1000",
    ]);
    a.ok(&["wait", "live", "--text", "live-up", "--timeout", "20s"]);
    let pid = a.server_pid().expect("server pid");
    // Another login: another runtime dir, the same state dir.
    let b = Env::new();
    let out = b
        .cmd()
        .env("LINGER_STATE_DIR", &a.state)
        .args(["ls", "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("pid {pid}")) && err.contains(common::path_str(&a.dir)),
        "{err}"
    );
    // The first server's session is untouched, in memory and on disk.
    assert_eq!(session_json(&a, "live")["state"], "running");
    let record = std::fs::read_to_string(a.state.join("sessions/live/meta.json")).unwrap();
    assert!(record.contains("\"running\""), "{record}");
}

fn running_server_is_reached_again(remove: impl Fn(&Env)) {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "s",
        "--",
        "sh",
        "-c",
        "echo s-up; exec sleep 1000",
    ]);
    env.ok(&["wait", "s", "--text", "s-up", "--timeout", "20s"]);
    let pid = env.server_pid().expect("server pid");
    remove(&env);
    // The next command finds no socket, starts a server that finds the first one alive, which
    // is asked to listen again; the command then reaches it.
    assert_eq!(session_json(&env, "s")["state"], "running");
    assert_eq!(env.server_pid(), Some(pid));
    assert!(alive(pid));
}

#[test]
fn deleted_socket_does_not_leave_the_server_unreachable() {
    running_server_is_reached_again(|env| std::fs::remove_file(env.socket()).unwrap());
}

#[test]
fn deleted_runtime_dir_does_not_leave_the_server_unreachable() {
    running_server_is_reached_again(|env| std::fs::remove_dir_all(&env.dir).unwrap());
}

#[test]
fn a_lost_sessions_capture_reads_a_bounded_tail_of_its_log() {
    use std::io::Write;
    let env = Env::new();
    let dir = sessions_dir(&env).join("big");
    std::fs::create_dir(&dir).unwrap();
    let record = serde_json::json!({
        "name": "big", "command": ["true"], "cwd": "/", "env": [],
        "created_at": 1_700_000_000_000u64, "state": "lost", "pid": 1,
        "exit_code": null, "signal": null, "resume_command": null, "notes": "",
        "updated_at": 1_700_000_000_000u64, "scrollback": 100, "log_limit": 1u64 << 30
    });
    std::fs::write(dir.join("meta.json"), record.to_string()).unwrap();
    // 40 MB of log: far more than is ever read back.
    let mut log = std::io::BufWriter::new(std::fs::File::create(dir.join("output.log")).unwrap());
    for i in 0..1_000_000 {
        writeln!(log, "line {i:07} of a long saved history....").unwrap();
    }
    log.flush().unwrap();
    drop(log);
    let all = env.ok(&["capture", "big", "--all"]);
    assert!(all.len() <= 16 << 20, "{} bytes read back", all.len());
    assert!(all.contains("line 0999999 "), "the newest line is missing");
    assert!(!all.contains("line 0000000 "), "the oldest line was read");
}

/// Runs linger and returns (exit code, stderr), for errors.
fn failing(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    let out = env.run(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn errors_say_what_happened() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    // -C to a file.
    let (code, err) = failing(&env, &["new", "-d", "a", "-C", "/etc/passwd", "--", "true"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("is not a directory"), "{err}");
    // A regex mistake, with its reason.
    env.ok(&["new", "-d", "w", "--", "sleep", "100"]);
    let (code, err) = failing(&env, &["wait", "w", "--text", "(", "--timeout", "1s"]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains("unclosed group") && err.lines().count() == 1,
        "{err}"
    );
    // A duration that would wrap.
    let start = std::time::Instant::now();
    let (code, err) = failing(
        &env,
        &["wait", "w", "--text", "never", "--timeout", "584000000y"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("too long"), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    // Output that cannot be written.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = env
        .cmd()
        .args(["capture", "w"])
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write"));
    // A current directory that is not UTF-8.
    let odd = env.home.join(std::ffi::OsStr::from_bytes(b"odd-\xff"));
    std::fs::create_dir(&odd).unwrap();
    let out = env
        .cmd()
        .args(["new", "-d", "u", "--", "true"])
        .current_dir(&odd)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("UTF-8"));
    // A symlinked runtime dir.
    let real = env.home.join("real-rt");
    std::fs::create_dir(&real).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = env.home.join("link-rt");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = env
        .cmd()
        .env("LINGER_DIR", &link)
        .arg("ls")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("symbolic link"));
}

#[test]
fn a_refused_state_dir_says_why() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    std::fs::create_dir(&env.state).unwrap();
    std::fs::set_permissions(&env.state, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.ok(&["new", "-d", "a", "--", "sleep", "100"]);
    let a = session_json(&env, "a");
    let reason = a["persist_error"].as_str().unwrap_or_default();
    assert!(reason.contains("open to other users"), "{a}");
}

#[test]
fn kill_reports_files_it_could_not_delete() {
    let env = Env::new();
    env.ok(&["new", "-d", "a", "--", "sleep", "100"]);
    let dir = env.state.join("sessions/a");
    // Records are written behind the request, by the state dir's writer thread.
    common::eventually("the record on disk", || {
        dir.join("meta.json").exists().then_some(())
    });
    let pinned = dir.join("pinned");
    std::fs::write(&pinned, "x").unwrap();
    let root = rustix::process::getuid().as_raw() == 0;
    // Root deletes anything but an immutable file; anyone else cannot delete from a read-only dir.
    let pin = |on: bool| {
        if root {
            let flag = if on { "+i" } else { "-i" };
            std::process::Command::new("chattr")
                .arg(flag)
                .arg(&pinned)
                .status()
                .is_ok_and(|s| s.success())
        } else {
            use std::os::unix::fs::PermissionsExt;
            let mode = if on { 0o500 } else { 0o700 };
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).is_ok()
        }
    };
    if !pin(true) {
        eprintln!(
            "SKIPPED kill_reports_files_it_could_not_delete: as root it needs `chattr +i`, which \
             failed here (no chattr, or a filesystem without immutable files)"
        );
        return;
    }
    let (code, err) = failing(&env, &["kill", "a"]);
    pin(false);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("could not delete"), "{err}");
}
