//! Faults in what a server saved: revives of a session whose program cannot start again,
//! records that are broken or missing, sizes past their bounds. Each test goes through the
//! real binary.

mod common;

use std::process::Stdio;

use common::{Env, alive, eventually, sessions_dir};

/// `ls --json` entry of one session.
fn session_json(env: &Env, name: &str) -> serde_json::Value {
    common::listed(env, name).unwrap_or_else(|| panic!("no session {name} in `ls --json`"))
}

fn kill9_server(env: &Env) {
    let pid = env.server_pid().expect("server pid");
    // SAFETY: killing our own test server.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    eventually("server gone", || (!alive(pid)).then_some(()));
}

#[test]
fn revive_keeps_the_previous_runs_last_screen() {
    for sigkill in [false, true] {
        let env = Env::new();
        env.ok(&["new", "-d", "a", "--", "sh", "-c", "echo FIRST; exit 0"]);
        env.ok(&["wait", "a", "--exit", "--timeout", "20s"]);
        env.ok(&[
            "revive",
            "a",
            "--",
            "sh",
            "-c",
            "echo second; exec sleep 1000",
        ]);
        env.ok(&["wait", "a", "--text", "^second$", "--timeout", "20s"]);
        let live = env.ok(&["capture", "a", "--all"]);
        assert!(live.contains("FIRST"), "{live}");
        if sigkill {
            kill9_server(&env);
        } else {
            env.ok(&["kill-server"]);
        }
        let all = env.ok(&["capture", "a", "--all"]);
        assert!(all.contains("FIRST"), "sigkill={sigkill}: {all}");
    }
}

/// Edits a dormant session's saved record.
fn edit_record(env: &Env, name: &str, edit: impl Fn(&mut serde_json::Value)) {
    let path = env.state.join("sessions").join(name).join("meta.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut record);
    std::fs::write(&path, serde_json::to_vec(&record).unwrap()).unwrap();
}

#[test]
fn failed_revive_leaves_the_session_as_it_was() {
    let env = Env::new();
    let work = env.home.join("work");
    std::fs::create_dir(&work).unwrap();
    let work_s = common::path_str(&work);
    env.ok(&[
        "new",
        "-d",
        "a",
        "-C",
        work_s,
        "--",
        "sh",
        "-c",
        "echo FIRST; exit 0",
    ]);
    env.ok(&["wait", "a", "--exit", "--timeout", "20s"]);
    let refused = |args: &[&str], reason: &str| {
        let out = env.run(args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(reason) && err.lines().count() == 1,
            "{args:?}: {err}"
        );
        assert_eq!(session_json(&env, "a")["state"], "exited", "{args:?}");
        let screen = env.ok(&["capture", "a"]);
        assert!(screen.contains("FIRST"), "{args:?}: {screen}");
    };
    // A session ended in this server, then the same from its files after a restart.
    refused(&["revive", "a", "--", "/nonexistent/prog"], "not found");
    env.ok(&["kill-server"]);
    refused(&["revive", "a", "--", "/nonexistent/prog"], "not found");
    std::fs::remove_dir(&work).unwrap();
    refused(&["revive", "a"], "-C DIR");
    env.ok(&["kill-server"]);
    edit_record(&env, "a", |r| {
        r["env"] = serde_json::json!([["BAD", "x\u{0}y"]])
    });
    refused(&["revive", "a", "-C", "/"], "environment");
    env.ok(&["kill-server"]);
    edit_record(&env, "a", |r| {
        r["env"] = serde_json::json!([]);
        r["command"] = serde_json::json!([]);
    });
    refused(&["revive", "a", "-C", "/"], "command is empty");
    // And with a command and a directory given, it starts there.
    env.ok(&[
        "revive",
        "a",
        "-C",
        "/",
        "--",
        "sh",
        "-c",
        "echo \"in $(pwd)\"; exec sleep 100",
    ]);
    env.ok(&["wait", "a", "--text", "^in /$", "--timeout", "20s"]);
    let all = env.ok(&["capture", "a", "--all"]);
    assert!(all.contains("FIRST"), "{all}");
}

#[test]
fn bad_records_are_listed_as_broken_and_never_block_or_leak() {
    let env = Env::new();
    let sessions = sessions_dir(&env);
    std::fs::create_dir(sessions.join("bad")).unwrap();
    std::fs::write(sessions.join("bad/meta.json"), "{not json").unwrap();
    std::fs::write(sessions.join("bad/output.log"), "OLD-OUTPUT\n").unwrap();
    std::fs::create_dir(sessions.join("fifo")).unwrap();
    let fifo = std::ffi::CString::new(common::path_str(&sessions.join("fifo/meta.json"))).unwrap();
    // SAFETY: mkfifo(3) with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    std::fs::create_dir(sessions.join("future")).unwrap();
    let record = serde_json::json!({
        "name": "future", "command": ["true"], "cwd": "/", "env": [],
        "created_at": 300_000_000_000_000u64, "state": "exited", "pid": 1,
        "exit_code": 0, "signal": null, "resume_command": null, "notes": "",
        "updated_at": 300_000_000_000_000u64, "scrollback": 100, "log_limit": 65536
    });
    std::fs::write(sessions.join("future/meta.json"), record.to_string()).unwrap();

    let bad = session_json(&env, "bad");
    assert_eq!(bad["state"], "broken", "{bad}");
    assert!(
        bad["broken_reason"]
            .as_str()
            .unwrap()
            .contains("cannot parse"),
        "{bad}"
    );
    let fifo = session_json(&env, "fifo");
    assert_eq!(fifo["state"], "broken", "{fifo}");
    assert!(
        fifo["broken_reason"]
            .as_str()
            .unwrap()
            .contains("not a regular file"),
        "{fifo}"
    );
    let future = session_json(&env, "future");
    assert!(future["created_at"].is_null(), "{future}");
    assert!(env.ok(&["ls"]).contains("broken"));

    let out = env.run(&["revive", "bad"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken"));
    let out = env.run(&["new", "-d", "bad", "--", "true"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a new session must not mix into a broken one"
    );
    env.ok(&["kill", "bad"]);
    env.ok(&[
        "new",
        "-d",
        "bad",
        "--",
        "sh",
        "-c",
        "echo NEW-OUTPUT; exec sleep 100",
    ]);
    env.ok(&["wait", "bad", "--text", "NEW-OUTPUT", "--timeout", "20s"]);
    let all = env.ok(&["capture", "bad", "--all"]);
    assert!(!all.contains("OLD-OUTPUT"), "{all}");
}

#[test]
fn sizes_past_their_bounds_are_refused_in_one_line() {
    let env = Env::new();
    for (args, reason) in [
        (
            vec!["new", "-d", "x", "--scrollback", "10000000", "--", "true"],
            "at most 200000",
        ),
        (
            vec!["new", "-d", "x", "--log-size", "2G", "--", "true"],
            "at most 1G",
        ),
    ] {
        let out = env.run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(reason) && err.lines().count() == 1, "{err}");
    }
    env.ok(&["new", "-d", "n", "--", "sleep", "100"]);
    let mut note = env.cmd();
    note.args(["note", "n", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = note.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&vec![b'n'; 70 * 1024]).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("too long"));
}
