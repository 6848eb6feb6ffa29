//! Test harness: an isolated runtime dir per test, the real `linger` binary, and a real pty to
//! play the user's terminal. Every wait has a deadline; nothing sleeps to synchronise.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub mod load;
pub mod screen;
pub mod term;
pub use screen::Screen;
pub use term::Term;

pub const DEADLINE: Duration = Duration::from_secs(20);

/// The background colour the test terminal reports when asked (OSC 11).
pub const TERMINAL_BACKGROUND_ANSWER: &[u8] = b"\x1b]11;rgb:2020/3030/4040\x1b\\";

/// A fake agent for tests: acts out commands read on stdin. A title spinner while working
/// (`work`), `✳` when idle (`idle`), OSC 9 for a question (`ask`), a bell (`bell`), a dialog a
/// screen rule knows (`confirm`), a cleared screen (`clear`) and an exit with status 3
/// (`exit`).
pub const FAKE_AGENT: &str = r#"
import sys
def out(s):
    sys.stdout.write(s); sys.stdout.flush()
out("\x1b]0;\u2733 Fake Agent\x07ready\r\n")
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "work":
        out("\x1b]0;\u280b Fake Agent\x07thinking\r\n")
    elif cmd == "idle":
        out("\x1b]0;\u2733 Fake Agent\x07done\r\n")
    elif cmd == "ask":
        out("\x1b]9;Fake Agent needs your permission\x07Allow? (y/n)\r\n")
    elif cmd == "bell":
        out("\x07")
    elif cmd == "confirm":
        out("\x1b]0;\u2733 Fake Agent\x07\x1b[2J\x1b[H PLEASE CONFIRM THIS\r\n")
    elif cmd == "clear":
        out("\x1b[2J\x1b[Hcleared\r\n")
    elif cmd == "exit":
        sys.exit(3)
"#;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_linger"))
}

pub struct Env {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub home: PathBuf,
    pub state: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        let tmp = tempfile::Builder::new()
            .prefix("lgt")
            .tempdir_in("/tmp")
            .expect("tempdir");
        let dir = tmp.path().join("rt");
        let home = tmp.path().join("home");
        std::fs::create_dir(&home).expect("home");
        let state = tmp.path().join("state");
        Env {
            _tmp: tmp,
            dir,
            home,
            state,
        }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(bin());
        c.env("LINGER_DIR", &self.dir)
            .env("SHELL", "/bin/sh")
            .env("HOME", &self.home)
            .env("LINGER_STATE_DIR", &self.state)
            .env("LINGER_TEST_HOOKS", "1")
            .env_remove("LINGER_SESSION")
            .env_remove("LINGER_DETACH_KEY")
            .current_dir(&self.home)
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run linger")
    }

    /// Runs linger and returns stdout, failing the test on a non-zero exit.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "linger {args:?} failed ({}): {}\nserver log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts a detached session running `script` under sh.
    pub fn new_sh(&self, name: &str, script: &str) {
        self.ok(&["new", "-d", name, "--", "sh", "-c", script]);
    }

    pub fn server_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("server.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("server.sock")
    }

    /// Starts `linger ARGS` on a fresh pty of the given size, as a user's terminal would.
    pub fn term(&self, args: &[&str], rows: u16, cols: u16) -> Term {
        let mut cmd = self.cmd();
        cmd.args(args);
        Term::spawn(cmd, rows, cols)
    }

    /// Starts `sh -c SCRIPT` on a fresh pty with this sandbox's environment; `$0` in the
    /// script is the linger binary under test.
    pub fn term_sh(&self, script: &str, rows: u16, cols: u16) -> Term {
        let linger = self.cmd();
        let mut cmd = Command::new("sh");
        for (k, v) in linger.get_envs() {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        cmd.current_dir(&self.home).arg("-c").arg(script).arg(bin());
        Term::spawn(cmd, rows, cols)
    }

    /// Waits (`linger wait --state`, 20 s) until the agent of session `name` is in `state`.
    pub fn wait_state(&self, name: &str, state: &str) {
        self.ok(&["wait", name, "--state", state, "--timeout", "20s"]);
    }

    /// Waits until `capture NAME` (plain screen) satisfies `pred`.
    pub fn wait_capture(&self, name: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let out = self.run(&["capture", name]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if pred(&text) {
                return text;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "timed out waiting for {what}; screen:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Env {
    pub fn keeper_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("keeper.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// SIGKILLs the server and waits until it is gone. Its programs live on: the keeper holds
    /// their terminals and the next command's server adopts them.
    pub fn kill9_server(&self) {
        let pid = self.server_pid().expect("server pid");
        sigkill_and_wait(pid);
    }

    /// What a reboot (or a crash of everything) does: the keeper and then the server are
    /// SIGKILLed, so the programs' terminals close and they die; their sessions are `lost`.
    pub fn kill9_server_and_keeper(&self) {
        if let Some(keeper) = self.keeper_pid() {
            sigkill_and_wait(keeper);
        }
        self.kill9_server();
    }
}

/// SIGKILLs one of this test's processes and waits (bounded) until it is gone.
pub fn sigkill_and_wait(pid: i32) {
    // SAFETY: kill(2) on a process this test started (a server, a keeper or a program).
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    eventually(&format!("pid {pid} gone"), || (!alive(pid)).then_some(()));
}

/// Whether `pid` runs. A zombie does not count (whatever adopted it may never reap it) once
/// all its threads are gone: a SIGKILLed server's main thread is a zombie a moment before the
/// others, which still hold its socket.
pub fn alive(pid: i32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let threads: u32 = field("Threads:").parse().unwrap_or(1);
    !field("State:").starts_with('Z') || threads > 1
}

/// The pids whose parent is `parent`.
pub fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    let rest = s.rsplit_once(')')?.1.to_string();
                    rest.split_whitespace().nth(1)?.parse::<i32>().ok()
                })
                == Some(parent)
        })
        .collect()
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").stderr(Stdio::null()).output();
        if let Some(pid) = self.server_pid().filter(|p| alive(*p)) {
            // kill-server could not reach it.
            sigkill_and_wait(pid);
        }
        // A keeper still running holds programs no server ended (the test killed the
        // server): end them (each leads its own process group), then the keeper.
        if let Some(keeper) = self.keeper_pid().filter(|p| alive(*p)) {
            for child in children_of(keeper) {
                // SAFETY: kill(2) on the process groups of this test's programs.
                unsafe {
                    libc::kill(-child, libc::SIGKILL);
                    libc::kill(child, libc::SIGKILL);
                }
            }
            sigkill_and_wait(keeper);
        }
    }
}

/// Every session as `ls --json` lists it.
pub fn listed_sessions(env: &Env) -> Vec<serde_json::Value> {
    let out = env.ok(&["ls", "--json"]);
    match serde_json::from_str::<serde_json::Value>(&out) {
        Ok(serde_json::Value::Array(sessions)) => sessions,
        _ => panic!("ls --json printed no array: {out}"),
    }
}

/// One session as `ls --json` lists it.
pub fn listed(env: &Env, name: &str) -> Option<serde_json::Value> {
    listed_sessions(env).into_iter().find(|s| s["name"] == name)
}

/// A process's resident memory in KiB (0 once it is gone).
pub fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Polls `check` until it returns Some, failing after the deadline.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until session `name` has `n` attached clients.
pub fn eventually_clients(env: &Env, name: &str, n: u64) {
    eventually(&format!("{n} clients on {name}"), || {
        let s = listed(env, name)?;
        (s["clients"].as_u64()? == n).then_some(())
    });
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub fn nz(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).expect("non-zero size")
}

/// True when running as root. Otherwise prints why the calling test is skipped, so a skipped
/// root-only test shows up in the output instead of passing silently.
pub fn root_or_skip(test: &str, why: &str) -> bool {
    if rustix::process::getuid().as_raw() == 0 {
        return true;
    }
    eprintln!("SKIPPED {test}: {why} (run the tests as root to include it)");
    false
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The session's screen as `capture --json` reports it: rows (trailing blanks trimmed) and
/// the cursor (row, column).
pub fn captured(env: &Env, name: &str) -> (Vec<String>, (u16, u16)) {
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["capture", name, "--json"])).expect("capture --json");
    let rows = v["screen"]
        .as_array()
        .expect("screen")
        .iter()
        .map(|r| r.as_str().unwrap_or_default().to_string())
        .collect();
    let cursor = (
        v["cursor"]["row"].as_u64().unwrap_or(0) as u16,
        v["cursor"]["col"].as_u64().unwrap_or(0) as u16,
    );
    (rows, cursor)
}

/// A state dir with a `sessions/` dir, as the server makes it (0700).
pub fn sessions_dir(env: &Env) -> std::path::PathBuf {
    use std::os::unix::fs::DirBuilderExt;
    let sessions = env.state.join("sessions");
    std::fs::DirBuilder::new()
        .mode(0o700)
        .recursive(true)
        .create(&sessions)
        .unwrap();
    sessions
}
