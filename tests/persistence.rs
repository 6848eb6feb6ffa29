//! What survives the server: records, output and notes on disk; lost sessions; revive.

mod common;

use common::Env;

fn wait_text(env: &Env, name: &str, regex: &str) {
    env.ok(&["wait", name, "--text", regex, "--timeout", "20s"]);
}

fn json_ls(env: &Env) -> Vec<serde_json::Value> {
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["ls", "--json"])).unwrap();
    v.as_array().unwrap().clone()
}

fn session<'a>(list: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    list.iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list:?}"))
}

/// The server dies and its programs with it (a reboot, or the keeper gone too): what is left is
/// on disk. (A server killed alone leaves its programs to be adopted: see tests/survive.rs.)
fn kill9_server(env: &Env) {
    env.kill9_server_and_keeper();
}

#[test]
fn sessions_survive_a_killed_server_as_lost_and_revive() {
    let env = Env::new();
    let work = env.home.join("project");
    std::fs::create_dir(&work).unwrap();
    let work_s = work.to_str().unwrap();
    start_one_two_and_done(&env, work_s);
    kill9_server(&env);
    check_lost_and_exited(&env);
    revive_one_in_its_old_place(&env, work_s);

    // Forgetting lost sessions removes their state; the exited one stays until killed.
    let forgot = env.ok(&["kill", "--lost"]);
    assert!(forgot.contains("forgot 1 lost session"), "{forgot}");
    assert!(!env.state.join("sessions/two").exists());
    env.ok(&["kill", "done"]);
    assert!(!env.state.join("sessions/done").exists());
    let names: Vec<_> = json_ls(&env)
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["one"]);
}

/// Sessions `one` (in `work`, with MARK=m1 and a note, 200 lines of output on disk), `two`
/// (running) and `done` (exited with 3).
fn start_one_two_and_done(env: &Env, work: &str) {
    env.ok(&[
        "new",
        "-d",
        "one",
        "-C",
        work,
        "-e",
        "MARK=m1",
        "--",
        "sh",
        "-c",
        "seq 1 200; echo ONE-READY; exec sleep 1000",
    ]);
    env.ok(&[
        "new",
        "-d",
        "two",
        "--",
        "sh",
        "-c",
        "echo TWO-READY; exec sleep 1000",
    ]);
    env.ok(&["new", "-d", "done", "--", "sh", "-c", "echo bye; exit 3"]);
    wait_text(env, "one", "ONE-READY");
    wait_text(env, "two", "TWO-READY");
    assert_eq!(
        env.run(&["wait", "done", "--exit", "--timeout", "20s"])
            .status
            .code(),
        Some(3)
    );
    env.ok(&["note", "one", "task: count to 200; next: revive me"]);
    // The output reaches the disk within about a second.
    common::eventually("output log written", || {
        let log =
            std::fs::read_to_string(env.state.join("sessions/one/output.log")).unwrap_or_default();
        log.contains("150").then_some(())
    });
    common::eventually("screen saved", || {
        let screen =
            std::fs::read_to_string(env.state.join("sessions/one/screen.txt")).unwrap_or_default();
        screen.contains("ONE-READY").then_some(())
    });
}

/// After the server died: the running sessions are lost with their output, notes and last
/// sighting, the exited one keeps its code, and a lost one takes no input.
fn check_lost_and_exited(env: &Env) {
    let list = json_ls(env);
    assert_eq!(session(&list, "one")["state"], "lost");
    assert_eq!(session(&list, "two")["state"], "lost");
    assert!(session(&list, "one")["last_seen_at"].is_string());
    assert_eq!(session(&list, "done")["state"], "exited");
    assert_eq!(session(&list, "done")["exit_code"], 3);
    assert_eq!(
        session(&list, "one")["notes"],
        "task: count to 200; next: revive me"
    );
    let all = env.ok(&["capture", "one", "--all"]);
    assert!(
        all.lines().any(|l| l == "1")
            && all.lines().any(|l| l == "200")
            && all.contains("ONE-READY"),
        "{all}"
    );
    assert!(env.ok(&["capture", "done"]).contains("bye"));
    let out = env.run(&["send", "one", "x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("revive"));
}

/// `revive one` runs a new program in the old directory and environment, after the old
/// history and a separator line, and keeps the note.
fn revive_one_in_its_old_place(env: &Env, work: &str) {
    env.ok(&[
        "revive",
        "one",
        "--",
        "sh",
        "-c",
        "echo \"cwd=$(pwd) mark=$MARK\"; exec sleep 1000",
    ]);
    wait_text(env, "one", "^cwd=");
    let after = env.ok(&["capture", "one", "--all"]);
    let separator = after
        .lines()
        .position(|l| l.contains("one revived at"))
        .expect("separator line");
    let old = after
        .lines()
        .position(|l| l == "200")
        .expect("old history kept");
    let new = after
        .lines()
        .position(|l| l.starts_with("cwd="))
        .expect("new output");
    assert!(old < separator && separator < new, "{after}");
    assert!(after.contains(&format!("cwd={work} mark=m1")), "{after}");
    let list = json_ls(env);
    assert_eq!(session(&list, "one")["state"], "running");
    assert_eq!(
        env.ok(&["note", "one"]).trim(),
        "task: count to 200; next: revive me"
    );
}

#[test]
fn attach_to_a_lost_session_replays_it_read_only() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "gone",
        "--",
        "sh",
        "-c",
        "echo LAST-WORDS; exec sleep 1000",
    ]);
    wait_text(&env, "gone", "LAST-WORDS");
    env.ok(&["note", "gone", "resume with care"]);
    common::eventually("screen saved", || {
        std::fs::read_to_string(env.state.join("sessions/gone/screen.txt"))
            .ok()?
            .contains("LAST-WORDS")
            .then_some(())
    });
    kill9_server(&env);
    let mut term = env.term(&["attach", "gone"], 24, 80);
    term.wait_text("[gone is not running — linger revive gone]");
    assert!(term.wait_exit().success());
    let text = term.text();
    assert!(
        text.contains("LAST-WORDS") && text.contains("resume with care"),
        "{text}"
    );
}

#[test]
fn kill_server_ends_sessions_cleanly_not_lost() {
    let env = Env::new();
    env.ok(&["new", "-d", "k", "--", "sleep", "1000"]);
    env.ok(&["kill-server"]);
    let list = json_ls(&env);
    assert_eq!(session(&list, "k")["state"], "killed");
    assert_eq!(session(&list, "k")["signal"], "SIGHUP");
}

#[test]
fn records_are_never_half_written() {
    let env = Env::new();
    for i in 0..4 {
        env.ok(&[
            "new",
            "-d",
            &format!("c{i}"),
            "--",
            "sh",
            "-c",
            "while :; do echo churn; sleep 0.01; done",
        ]);
    }
    // Notes change as fast as we can send them while the sessions flood; then the server dies.
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let mut cmd = env.cmd();
            cmd.args(["note", &format!("c{i}"), &"n".repeat(2000 + i * 100)]);
            cmd
        })
        .collect();
    for _ in 0..10 {
        for mut w in writers.iter().map(|c| {
            // A copy of `env.cmd()`: the same sandbox (LINGER_DIR, LINGER_STATE_DIR, HOME).
            let mut n = std::process::Command::new(c.get_program());
            n.args(c.get_args())
                .envs(c.get_envs().filter_map(|(k, v)| Some((k, v?))));
            n
        }) {
            assert!(w.status().unwrap().success());
        }
    }
    kill9_server(&env);
    for i in 0..4 {
        let dir = env.state.join(format!("sessions/c{i}"));
        let bytes = std::fs::read(dir.join("meta.json")).unwrap();
        let record: serde_json::Value = serde_json::from_slice(&bytes).expect("complete JSON");
        assert_eq!(record["name"], format!("c{i}"));
        assert_eq!(record["notes"].as_str().unwrap().len(), 2000 + i * 100);
    }
}

#[test]
fn unusable_state_dir_leaves_sessions_working_with_a_warning() {
    let env = Env::new();
    std::fs::create_dir(&env.state).unwrap();
    std::fs::set_permissions(
        &env.state,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    // A file where the sessions folder should be: nothing can be saved.
    std::fs::write(env.state.join("sessions"), b"not a dir").unwrap();
    env.ok(&[
        "new",
        "-d",
        "mem",
        "--",
        "sh",
        "-c",
        "echo IN-MEMORY; exec sleep 1000",
    ]);
    wait_text(&env, "mem", "IN-MEMORY");
    let list = json_ls(&env);
    let s = session(&list, "mem");
    assert_eq!(s["state"], "running");
    assert!(s["persist_error"].is_string(), "{s}");
    // The log has a writer thread of its own: the line lands shortly after.
    common::eventually("a warning in the log", || {
        env.log().contains("WARN").then_some(())
    });
}

/// Floods `bytes` of output into a session with a `limit` log and checks the log on disk stays
/// under it while keeping recent output.
fn flood_log(bytes: u64, limit: &str, limit_bytes: u64) {
    let env = Env::new();
    let script = format!(
        "yes 'a line of output that keeps coming' | head -c {bytes}; echo BIG-DONE; exec sleep 1000"
    );
    env.ok(&[
        "new",
        "-d",
        "big",
        "--log-size",
        limit,
        "--",
        "sh",
        "-c",
        &script,
    ]);
    env.ok(&["wait", "big", "--text", "BIG-DONE", "--timeout", "240s"]);
    common::eventually("log flushed", || {
        let log = std::fs::read_to_string(env.state.join("sessions/big/screen.txt")).ok()?;
        log.contains("BIG-DONE").then_some(())
    });
    let total: u64 = ["output.log", "output.log.1"]
        .iter()
        .map(|f| {
            std::fs::metadata(env.state.join("sessions/big").join(f))
                .map(|m| m.len())
                .unwrap_or(0)
        })
        .sum();
    assert!(total <= limit_bytes, "log is {total} bytes");
    assert!(
        total > limit_bytes / 4,
        "log kept recent output: {total} bytes"
    );
}

#[test]
fn output_log_stays_under_its_bound() {
    flood_log(1_000_000, "64K", 64 * 1024);
}

#[test]
#[ignore = "50 MB flood, 60-70 s in a debug build: run with `cargo test -- --ignored` (CI does)"]
fn output_log_stays_under_its_bound_in_a_50mb_flood() {
    flood_log(50_000_000, "1M", 1 << 20);
}

#[test]
fn resume_presets_and_custom_resume_command() {
    let env = Env::new();
    let bin = env.home.join("bin");
    std::fs::create_dir(&bin).unwrap();
    let fake = bin.join("claude");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho \"claude args: $*\"\nexec sleep 1000\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let fake_s = fake.to_str().unwrap();
    env.ok(&["new", "-d", "agent", "--", fake_s]);
    wait_text(&env, "agent", "claude args:");
    let list = json_ls(&env);
    assert_eq!(
        session(&list, "agent")["resume_command"],
        serde_json::json!([fake_s, "--continue"])
    );
    kill9_server(&env);
    env.ok(&["revive", "agent"]);
    wait_text(&env, "agent", "claude args: --continue");

    env.ok(&[
        "new",
        "-d",
        "custom",
        "--resume-cmd",
        "echo resumed-$((1+1)); exec sleep 1000",
        "--",
        "sh",
        "-c",
        "exit 0",
    ]);
    env.ok(&["wait", "custom", "--exit", "--timeout", "20s"]);
    env.ok(&["revive", "custom"]);
    wait_text(&env, "custom", "^resumed-2$");
    let out = env.run(&["revive", "custom"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "cannot revive a running session"
    );
}

/// A session that has printed nothing has its record on disk but no output log: `new` costs
/// one file less, and the writer holds no descriptor for it. Its first output creates the log.
#[test]
fn a_quiet_session_gets_its_output_log_with_its_first_output() {
    let env = Env::new();
    env.ok(&[
        "new",
        "-d",
        "quiet",
        "--",
        "sh",
        "-c",
        "stty -echo; read line; echo \"got $line\"; exec sleep 1000",
    ]);
    // `note` answers once the record is written, in the same pass that would open the log.
    env.ok(&["note", "quiet", "saved"]);
    let dir = env.state.join("sessions/quiet");
    assert!(dir.join("meta.json").is_file(), "no record in {dir:?}");
    assert!(
        !dir.join("output.log").exists(),
        "a session that printed nothing has an output log"
    );
    env.ok(&["send", "quiet", "--enter", "hello"]);
    common::eventually("first output saved", || {
        let screen = std::fs::read_to_string(dir.join("screen.txt")).unwrap_or_default();
        (screen.contains("got hello") && dir.join("output.log").is_file()).then_some(())
    });
}
