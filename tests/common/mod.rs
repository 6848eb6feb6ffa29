//! Test harness: an isolated runtime dir per test, the real `linger` binary, and a real pty to
//! play the user's terminal. Every wait has a deadline; nothing sleeps to synchronise.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub mod screen;
pub use screen::Screen;

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

struct Shared {
    output: Mutex<Output_>,
    changed: Condvar,
    paused: std::sync::atomic::AtomicBool,
    /// Answers the terminal has written so far.
    answered: std::sync::atomic::AtomicUsize,
    /// The reader saw the end of the output (every process let go of the terminal).
    ended: std::sync::atomic::AtomicBool,
}

/// Everything the terminal received, and its screen model kept up to date as it arrives.
struct Output_ {
    bytes: Vec<u8>,
    parser: screen::Emulator,
}

/// A process on a pty, with everything it printed and a screen model of it.
pub struct Term {
    master: Arc<OwnedFd>,
    child: Child,
    shared: Arc<Shared>,
    rows: u16,
    cols: u16,
}

impl Term {
    pub fn spawn(cmd: Command, rows: u16, cols: u16) -> Term {
        Term::spawn_answering_after(cmd, rows, cols, Duration::ZERO)
    }

    /// Like [`Term::spawn`], for a terminal that answers queries `delay` late (a slow link).
    pub fn spawn_answering_after(mut cmd: Command, rows: u16, cols: u16, delay: Duration) -> Term {
        let (master, slave) = linger::pty::open_pair(rows, cols).expect("pty");
        let flags = rustix::fs::fcntl_getfl(&master).expect("getfl");
        rustix::fs::fcntl_setfl(&master, flags - rustix::fs::OFlags::NONBLOCK).expect("setfl");
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(std::io::stdin())?;
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on pty");
        drop(cmd);
        let master = Arc::new(master);
        let shared = Arc::new(Shared {
            output: Mutex::new(Output_ {
                bytes: Vec::new(),
                parser: screen::Emulator::new(rows, cols),
            }),
            changed: Condvar::new(),
            paused: Default::default(),
            answered: Default::default(),
            ended: Default::default(),
        });
        let reader_fd = master.clone();
        let reader_shared = shared.clone();
        std::thread::spawn(move || {
            let mut file = std::fs::File::from(reader_fd.try_clone().expect("dup"));
            let mut buf = [0u8; 65536];
            loop {
                while reader_shared
                    .paused
                    .load(std::sync::atomic::Ordering::SeqCst)
                {
                    let guard = reader_shared
                        .output
                        .lock()
                        .unwrap_or_else(|p| p.into_inner());
                    let _ = reader_shared
                        .changed
                        .wait_timeout(guard, Duration::from_millis(20));
                }
                match file.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut out = reader_shared
                            .output
                            .lock()
                            .unwrap_or_else(|p| p.into_inner());
                        out.bytes.extend_from_slice(&buf[..n]);
                        out.parser.process(&buf[..n]);
                        // Like a real terminal, answer the attach probe's background colour
                        // query and its DA1 sentinel, in that order; the emulator answers
                        // nothing else. (Programs' queries never get here: linger answers them.)
                        let mut answer = Vec::new();
                        if contains(&buf[..n], b"\x1b]11;?") {
                            answer.extend_from_slice(TERMINAL_BACKGROUND_ANSWER);
                        }
                        if contains(&buf[..n], b"\x1b[c") {
                            answer.extend_from_slice(b"\x1b[?62;22c");
                        }
                        if !answer.is_empty() && delay.is_zero() {
                            let _ = (&file).write_all(&answer);
                            reader_shared.answered.fetch_add(1, Ordering::SeqCst);
                        } else if !answer.is_empty() {
                            let mut out = std::fs::File::from(reader_fd.try_clone().expect("dup"));
                            let shared = reader_shared.clone();
                            // A slow terminal's answer is late by its nature, not a wait for
                            // anything: nothing waits on this thread.
                            std::thread::spawn(move || {
                                std::thread::sleep(delay);
                                let _ = out.write_all(&answer);
                                shared.answered.fetch_add(1, Ordering::SeqCst);
                            });
                        }
                        reader_shared.changed.notify_all();
                    }
                }
            }
            reader_shared.ended.store(true, Ordering::SeqCst);
            reader_shared.changed.notify_all();
        });
        Term {
            master,
            child,
            shared,
            rows,
            cols,
        }
    }

    /// How many times the terminal answered queries so far.
    pub fn answers_written(&self) -> usize {
        self.shared.answered.load(Ordering::SeqCst)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether the process on this terminal is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops (or resumes) reading the terminal, like a terminal that takes no output (a
    /// stalled ssh): the program's writes block once the pty's buffer is full.
    pub fn pause_reading(&self, paused: bool) {
        self.shared
            .paused
            .store(paused, std::sync::atomic::Ordering::SeqCst);
        self.shared.changed.notify_all();
    }

    pub fn write(&self, bytes: &[u8]) {
        let mut file = std::fs::File::from(self.master.try_clone().expect("dup"));
        file.write_all(bytes).expect("write to pty");
    }

    pub fn output(&self) -> Vec<u8> {
        self.shared
            .output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bytes
            .clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output()).into_owned()
    }

    /// The screen as the user's terminal would show it.
    pub fn screen(&self) -> Screen {
        self.shared
            .output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .parser
            .screen()
    }

    /// What the user's terminal scrolled into its own scrollback, oldest first.
    pub fn scrollback(&self) -> Vec<String> {
        self.shared
            .output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .parser
            .scrollback()
    }

    pub fn screen_text(&self) -> String {
        self.screen().contents()
    }

    /// Waits until everything printed so far satisfies `pred`.
    pub fn wait_output(&self, what: &str, pred: impl Fn(&[u8]) -> bool) {
        self.wait_until(what, |o| pred(&o.bytes));
    }

    fn wait_until(&self, what: &str, pred: impl Fn(&Output_) -> bool) {
        let start = Instant::now();
        let mut guard = self.shared.output.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if pred(&guard) {
                return;
            }
            let left = DEADLINE.checked_sub(start.elapsed()).unwrap_or_else(|| {
                let tail = &guard.bytes[guard.bytes.len().saturating_sub(4000)..];
                panic!(
                    "timed out waiting for {what}; screen:\n{}\nlast output:\n{}",
                    guard.parser.screen().contents(),
                    String::from_utf8_lossy(tail)
                )
            });
            guard = self
                .shared
                .changed
                .wait_timeout(guard, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub fn wait_text(&self, needle: &str) {
        self.wait_output(&format!("{needle:?}"), |o| {
            String::from_utf8_lossy(o).contains(needle)
        });
    }

    /// Waits until the emulated screen satisfies `pred`.
    pub fn wait_screen(&self, what: &str, pred: impl Fn(&Screen) -> bool) {
        self.wait_until(what, |o| pred(&o.parser.screen()));
    }

    /// Resizes the terminal: its screen first (reflowing as alacritty does), then the pty.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.shared
            .output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .parser
            .resize(rows, cols);
        rustix::termios::tcsetwinsize(&*self.master, linger::pty::winsize(rows, cols))
            .expect("resize");
        self.rows = rows;
        self.cols = cols;
    }

    /// Waits for the process to exit.
    /// Waits until the client exits and its last output was read (what it printed on its way
    /// out is on the screen then).
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.wait_output_end();
                return status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "client did not exit; output:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most a second: a program the client started may hold the terminal too) until
    /// the reader has seen the end of the output.
    fn wait_output_end(&self) {
        let until = Instant::now() + Duration::from_secs(1);
        let mut out = self.shared.output.lock().unwrap_or_else(|p| p.into_inner());
        while !self.shared.ended.load(Ordering::SeqCst) && Instant::now() < until {
            out = self
                .shared
                .changed
                .wait_timeout(out, Duration::from_millis(20))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Whether the terminal's output ended: every process that had the terminal open (the
    /// client, and anything it passed the terminal to) has closed it.
    pub fn output_ended(&self) -> bool {
        self.shared.ended.load(Ordering::SeqCst)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    pub fn master_fd(&self) -> i32 {
        self.master.as_raw_fd()
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
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
