//! End-to-end benchmarks on real processes and real ptys: the release `linger` binary against
//! the same program read straight from a pty ("raw pty") and against tmux when it is installed.
//!
//! Run: `cargo build --release && cargo bench --bench e2e`. Every scenario uses its own
//! `LINGER_DIR` (and tmux socket) and kills its server at the end. Waits are for a marker in
//! the output, with deadlines; the only deliberate sleep is the 10 s idle window.

#[path = "common/corpus.rs"]
mod corpus;

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const ROWS: u16 = 50;
const COLS: u16 = 200;
const DEADLINE: Duration = Duration::from_secs(60);
const FLOOD_BYTES: usize = 50_000_000;
const FLOOD_RUNS: usize = 3;
const ECHO_WARMUP: usize = 20;
const ECHO_KEYS: usize = 500;
const ATTACH_RUNS: usize = 15;
const IDLE_WINDOW: Duration = Duration::from_secs(10);

// Markers avoid doubled letters so a terminal's repeat-character optimisation (tmux may use
// REP) cannot split them.
const READY: &str = "RDY-7Q2";
const FLOOD_END: &str = "FLD-END-9K4";
const ATTACH_MARK: &str = "ATC-MRK-5W8";
const LINES_DONE: &str = "LNS-DNE-3P6";

// ---------------------------------------------------------------------------------------------
// Binaries

/// The release `linger`: cargo names it for benches; otherwise it sits next to `deps/`, where
/// this bench executable lives.
fn linger_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("LINGER_BIN") {
        return PathBuf::from(path);
    }
    let path = match option_env!("CARGO_BIN_EXE_linger") {
        Some(p) => PathBuf::from(p),
        None => {
            let exe = std::env::current_exe().expect("cannot find the bench executable's path");
            exe.parent()
                .and_then(Path::parent)
                .expect("bench executable is not under target/<profile>/deps")
                .join("linger")
        }
    };
    if !path.is_file() {
        eprintln!(
            "e2e bench: {} not found; build it first with `cargo build --release`",
            path.display()
        );
        std::process::exit(1);
    }
    path
}

fn tmux_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("tmux"))
        .find(|p| p.is_file())
}

/// Environment shared by every process the bench starts.
fn clean_env(cmd: &mut Command) -> &mut Command {
    cmd.env("TERM", "xterm-256color")
        .env("SHELL", "/bin/sh")
        .env_remove("TMUX")
        .env_remove("TMUX_PANE")
        .env_remove("LINGER_SESSION")
        .env_remove("LINGER_DETACH_KEY")
}

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

// ---------------------------------------------------------------------------------------------
// A process on a pty, read by a thread that watches for one marker at a time

struct Watch {
    needle: Vec<u8>,
    armed: bool,
    found: Option<Instant>,
    /// The last `needle.len() - 1` bytes, for a marker split across reads.
    carry: Vec<u8>,
    received: u64,
    tail: Vec<u8>,
    closed: bool,
}

struct Shared {
    watch: Mutex<Watch>,
    changed: Condvar,
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut i = 0;
    while let Some(off) = haystack[i..].iter().position(|&b| b == first) {
        let at = i + off;
        if haystack[at + 1..].starts_with(rest) {
            return true;
        }
        i = at + 1;
    }
    false
}

impl Watch {
    fn take(&mut self, chunk: &[u8], at: Instant) -> bool {
        self.received += chunk.len() as u64;
        if self.tail.len() + chunk.len() > 8192 {
            let keep = 4096usize.saturating_sub(chunk.len());
            let drop = self.tail.len().saturating_sub(keep);
            self.tail.drain(..drop);
        }
        self.tail
            .extend_from_slice(&chunk[chunk.len().saturating_sub(4096)..]);
        if !self.armed || self.found.is_some() {
            return false;
        }
        let keep = self.needle.len().saturating_sub(1);
        let head = &chunk[..chunk.len().min(keep)];
        let mut joint = std::mem::take(&mut self.carry);
        joint.extend_from_slice(head);
        let hit = find(&joint, &self.needle) || find(chunk, &self.needle);
        if chunk.len() >= keep {
            joint.clear();
            joint.extend_from_slice(&chunk[chunk.len() - keep..]);
        } else {
            let excess = joint.len().saturating_sub(keep);
            joint.drain(..excess);
        }
        self.carry = joint;
        if hit {
            self.found = Some(at);
        }
        hit
    }
}

struct Term {
    writer: File,
    child: Child,
    shared: Arc<Shared>,
    what: String,
}

impl Term {
    /// Starts `cmd` on a fresh ROWSxCOLS pty, watching for `needle` from the first byte.
    /// Returns the terminal and the instant just before the spawn.
    fn spawn(mut cmd: Command, what: &str, needle: Option<&str>) -> (Term, Instant) {
        let (master, slave) = linger::pty::open_pair(ROWS, COLS).expect("cannot open a pty");
        let flags = rustix::fs::fcntl_getfl(&master).expect("fcntl(F_GETFL) on the pty");
        rustix::fs::fcntl_setfl(&master, flags - rustix::fs::OFlags::NONBLOCK)
            .expect("fcntl(F_SETFL) on the pty");
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup pty slave")))
            .stdout(Stdio::from(slave.try_clone().expect("dup pty slave")))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(std::io::stdin())?;
                Ok(())
            });
        }
        let shared = Arc::new(Shared {
            watch: Mutex::new(Watch {
                needle: needle.map(|n| n.as_bytes().to_vec()).unwrap_or_default(),
                armed: needle.is_some(),
                found: None,
                carry: Vec::new(),
                received: 0,
                tail: Vec::new(),
                closed: false,
            }),
            changed: Condvar::new(),
        });
        let master: OwnedFd = master;
        let writer = File::from(master.try_clone().expect("dup pty master"));
        let reader_shared = shared.clone();
        let mut reader = File::from(master);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let at = Instant::now();
                let mut watch = reader_shared
                    .watch
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if watch.take(&buf[..n], at) {
                    reader_shared.changed.notify_all();
                }
            }
            let mut watch = reader_shared
                .watch
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            watch.closed = true;
            reader_shared.changed.notify_all();
        });
        let start = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        drop(cmd);
        (
            Term {
                writer,
                child,
                shared,
                what: what.to_string(),
            },
            start,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watch> {
        self.shared.watch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches for `needle` in output that arrives from now on.
    fn arm(&self, needle: &[u8]) {
        let mut w = self.lock();
        w.needle = needle.to_vec();
        w.armed = true;
        w.found = None;
        w.carry.clear();
    }

    /// Waits for the armed needle; returns when the reader saw it.
    fn wait(&self) -> Instant {
        let start = Instant::now();
        let mut w = self.lock();
        loop {
            if let Some(at) = w.found {
                w.armed = false;
                return at;
            }
            let left = DEADLINE.checked_sub(start.elapsed());
            if w.closed || left.is_none() {
                panic!(
                    "{}: {} waiting for {:?}; last output:\n{}",
                    self.what,
                    if w.closed {
                        "output ended"
                    } else {
                        "timed out"
                    },
                    String::from_utf8_lossy(&w.needle),
                    String::from_utf8_lossy(&w.tail)
                );
            }
            w = self
                .shared
                .changed
                .wait_timeout(w, left.unwrap_or_default())
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn received(&self) -> u64 {
        self.lock().received
    }

    fn type_bytes(&self, bytes: &[u8]) {
        (&self.writer)
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("{}: cannot type into the pty: {e}", self.what));
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The three systems

trait System {
    fn label(&self) -> &'static str;
    /// Starts `script` (run by `sh -c`) in a new session of ROWSxCOLS.
    fn new_session(&mut self, name: &str, script: &str);
    /// Starts `sleep 100000` in a new session: ROWSxCOLS when `wide`, else the size a session
    /// gets without a terminal (80x24 for both linger and tmux).
    fn new_idle(&mut self, name: &str, wide: bool);
    /// Starts a client of `name` on a pty, watching for `needle`.
    fn attach(&self, name: &str, needle: Option<&str>) -> (Term, Instant);
    fn server_pid(&self) -> i32;
    /// Waits until the session's screen or history shows `marker`.
    fn wait_text(&self, name: &str, marker: &str);
    fn list(&self) -> usize;
}

struct Linger {
    bin: PathBuf,
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    work: PathBuf,
}

impl Linger {
    fn new(bin: &Path) -> Linger {
        let tmp = tempfile::Builder::new()
            .prefix("linger-bench")
            .tempdir_in("/tmp")
            .expect("cannot create a temporary directory");
        let dir = tmp.path().join("rt");
        let work = tmp.path().join("work");
        std::fs::create_dir(&work).expect("cannot create the work directory");
        Linger {
            bin: bin.to_path_buf(),
            dir,
            work,
            _tmp: tmp,
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        clean_env(&mut c)
            .env("LINGER_DIR", &self.dir)
            // Session records and output logs stay inside this run's temporary directory.
            .env("LINGER_STATE_DIR", self.dir.with_file_name("state"))
            .env("HOME", &self.work)
            .env_remove("XDG_STATE_HOME")
            .current_dir(&self.work)
            .stdin(Stdio::null());
        c
    }

    /// `linger new -d NAME -- ARGV` with a ROWSxCOLS pty as stdin, so the session has that size.
    fn new_sized(&self, name: &str, argv: &[&str]) {
        let (_master, slave) = linger::pty::open_pair(ROWS, COLS).expect("cannot open a pty");
        let mut cmd = self.cmd();
        cmd.args(["new", "-d", name, "--"])
            .args(argv)
            .stdin(Stdio::from(slave));
        run_ok(&mut cmd, &format!("linger new -d {name}"));
    }

    fn new_plain(&self, name: &str, argv: &[&str]) {
        let mut cmd = self.cmd();
        cmd.args(["new", "-d", name, "--"]).args(argv);
        run_ok(&mut cmd, &format!("linger new -d {name}"));
    }

    fn ls(&self) -> String {
        run_ok(self.cmd().arg("ls"), "linger ls")
    }
}

impl System for Linger {
    fn label(&self) -> &'static str {
        "linger"
    }

    fn new_session(&mut self, name: &str, script: &str) {
        self.new_sized(name, &["sh", "-c", script]);
    }

    fn new_idle(&mut self, name: &str, wide: bool) {
        if wide {
            self.new_sized(name, &["sleep", "100000"]);
        } else {
            self.new_plain(name, &["sleep", "100000"]);
        }
    }

    fn attach(&self, name: &str, needle: Option<&str>) -> (Term, Instant) {
        let mut cmd = self.cmd();
        cmd.args(["attach", name]);
        Term::spawn(cmd, &format!("linger attach {name}"), needle)
    }

    fn server_pid(&self) -> i32 {
        let text = std::fs::read_to_string(self.dir.join("server.pid"))
            .expect("cannot read $LINGER_DIR/server.pid");
        text.trim().parse().expect("server.pid holds no pid")
    }

    fn wait_text(&self, name: &str, marker: &str) {
        run_ok(
            self.cmd()
                .args(["wait", name, "--text", marker, "--timeout", "60s"]),
            &format!("linger wait {name} --text {marker}"),
        );
    }

    /// Sessions in `linger ls` (a header line, then one per session).
    fn list(&self) -> usize {
        self.ls().lines().skip(1).count()
    }
}

impl Drop for Linger {
    fn drop(&mut self) {
        let pid = std::fs::read_to_string(self.dir.join("server.pid")).ok();
        let _ = self
            .cmd()
            .arg("kill-server")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(pid) = pid.and_then(|p| p.trim().parse::<i32>().ok()) {
            wait_gone(pid);
        }
    }
}

/// Waits (bounded) for a process to exit, then SIGKILLs it if it is still there.
fn wait_gone(pid: i32) {
    let start = Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && start.elapsed() < Duration::from_secs(5) {
        // A zombie still has /proc/PID; State: Z means it is gone for our purposes.
        if proc_status(pid, "State:").is_some_and(|s| s.starts_with('Z')) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        // SAFETY: kill(2) on the server this bench started.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

struct Tmux {
    bin: PathBuf,
    socket: String,
    started: bool,
}

impl Tmux {
    fn new(bin: &Path, tag: &str) -> Tmux {
        Tmux {
            bin: bin.to_path_buf(),
            socket: format!("linger-bench-{}-{tag}", std::process::id()),
            started: false,
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        clean_env(&mut c)
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .stdin(Stdio::null());
        c
    }

    fn new_argv(&mut self, name: &str, argv: &[&str], wide: bool) {
        let mut cmd = self.cmd();
        if !self.started {
            // Same history as linger's default; no status line to redraw.
            cmd.args(["set", "-g", "history-limit", "10000", ";"]);
        }
        cmd.args(["new-session", "-d", "-s", name]);
        if wide {
            cmd.args(["-x", &COLS.to_string(), "-y", &ROWS.to_string()]);
        }
        cmd.args(argv);
        if !self.started {
            cmd.args([";", "set", "-g", "status", "off"]);
        }
        run_ok(&mut cmd, &format!("tmux new-session {name}"));
        self.started = true;
    }
}

impl System for Tmux {
    fn label(&self) -> &'static str {
        "tmux"
    }

    fn new_session(&mut self, name: &str, script: &str) {
        self.new_argv(name, &["sh", "-c", script], true);
    }

    fn new_idle(&mut self, name: &str, wide: bool) {
        self.new_argv(name, &["sleep", "100000"], wide);
    }

    fn attach(&self, name: &str, needle: Option<&str>) -> (Term, Instant) {
        let mut cmd = self.cmd();
        cmd.args(["attach", "-t", name]);
        Term::spawn(cmd, &format!("tmux attach -t {name}"), needle)
    }

    fn server_pid(&self) -> i32 {
        run_ok(
            self.cmd().args(["display-message", "-p", "#{pid}"]),
            "tmux display-message",
        )
        .trim()
        .parse()
        .expect("tmux printed no pid")
    }

    fn wait_text(&self, name: &str, marker: &str) {
        let start = Instant::now();
        loop {
            let screen = run_ok(
                self.cmd().args(["capture-pane", "-p", "-t", name]),
                "tmux capture-pane",
            );
            if screen.contains(marker) {
                return;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "tmux session {name} never showed {marker}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn list(&self) -> usize {
        run_ok(self.cmd().arg("ls"), "tmux ls").lines().count()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        if self.started {
            let pid = self
                .cmd()
                .args(["display-message", "-p", "#{pid}"])
                .output()
                .ok()
                .and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .trim()
                        .parse::<i32>()
                        .ok()
                });
            let _ = self
                .cmd()
                .arg("kill-server")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            if let Some(pid) = pid {
                wait_gone(pid);
            }
        }
    }
}

/// The program alone on a pty, read directly.
fn raw(script: &str, what: &str, needle: Option<&str>) -> (Term, Instant) {
    let mut cmd = Command::new("sh");
    clean_env(&mut cmd).args(["-c", script]);
    Term::spawn(cmd, what, needle)
}

// ---------------------------------------------------------------------------------------------
// /proc

fn proc_status(pid: i32, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
}

fn rss_mib(pid: i32) -> f64 {
    let kb: f64 = proc_status(pid, "VmRSS:")
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("cannot read VmRSS from /proc/PID/status");
    kb / 1024.0
}

/// utime + stime of the whole process, in seconds.
fn cpu_secs(pid: i32) -> f64 {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("cannot read /proc/PID/stat");
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')').expect("malformed /proc/PID/stat") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields[11].parse().expect("utime");
    let stime: f64 = fields[12].parse().expect("stime");
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (utime + stime) / hz
}

/// Voluntary + involuntary context switches summed over every thread.
fn ctx_switches(pid: i32) -> u64 {
    let mut total = 0;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("cannot list /proc/PID/task");
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("status")) else {
            continue;
        };
        for line in text.lines() {
            if let Some(v) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                total += v.trim().parse::<u64>().unwrap_or(0);
            }
        }
    }
    total
}

// ---------------------------------------------------------------------------------------------
// Results

struct Row {
    scenario: String,
    linger: f64,
    raw: Option<f64>,
    tmux: Option<f64>,
    digits: usize,
}

fn row(scenario: &str, linger: f64, raw: Option<f64>, tmux: Option<f64>, digits: usize) -> Row {
    println!(
        "  {scenario}: linger {linger:.digits$}{}{}",
        raw.map(|r| format!(", raw pty {r:.digits$}"))
            .unwrap_or_default(),
        tmux.map(|t| format!(", tmux {t:.digits$}"))
            .unwrap_or_default()
    );
    Row {
        scenario: scenario.to_string(),
        linger,
        raw,
        tmux,
        digits,
    }
}

fn ratio(a: f64, b: Option<f64>) -> String {
    match b {
        Some(b) if b > 0.0 => format!("{:.2}", a / b),
        Some(_) => "n/a (÷0)".into(),
        None => "—".into(),
    }
}

fn print_table(rows: &[Row]) {
    println!();
    println!(
        "| scenario | linger | raw pty | tmux | linger ÷ raw | linger ÷ tmux |\n|---|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let d = r.digits;
        let fmt = |v: Option<f64>| v.map(|v| format!("{v:.d$}")).unwrap_or("—".into());
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.scenario,
            fmt(Some(r.linger)),
            fmt(r.raw),
            fmt(r.tmux),
            ratio(r.linger, r.raw),
            ratio(r.linger, r.tmux)
        );
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let i = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[i]
}

// ---------------------------------------------------------------------------------------------
// Scenarios

/// a. ~50 MB of mixed output while one client is attached; time until the client sees the end.
fn flood(bin: &Path, tmux: Option<&Path>, work: &Path, rows: &mut Vec<Row>) {
    println!(
        "flood: {} MB, {FLOOD_RUNS} runs each",
        FLOOD_BYTES / 1_000_000
    );
    let mut data = corpus::mixed(FLOOD_BYTES, ROWS, COLS, 11);
    data.extend_from_slice(format!("\x1b[m\r\n{FLOOD_END}\r\n").as_bytes());
    let file = work.join("flood.bin");
    std::fs::write(&file, &data).expect("cannot write the flood corpus");
    let mb = data.len() as f64 / 1e6;

    // Each run: the program prints READY, blocks on a fifo, then cats the corpus. The clock
    // starts when the fifo is released and stops when the reader sees the end marker.
    let fifo_n = std::cell::Cell::new(0);
    let script = |fifo: &Path| {
        format!(
            "printf '{READY}\\n'; cat {} >/dev/null; cat {}; exec sleep 100000",
            sh_quote(&fifo.to_string_lossy()),
            sh_quote(&file.to_string_lossy())
        )
    };
    let new_fifo = || {
        fifo_n.set(fifo_n.get() + 1);
        let path = work.join(format!("go{}", fifo_n.get()));
        let c = std::ffi::CString::new(path.to_string_lossy().as_bytes()).expect("fifo path");
        // SAFETY: mkfifo with a valid NUL-terminated path.
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(rc, 0, "mkfifo {}", path.display());
        path
    };
    // Every client is spawned watching for READY, so it cannot slip past before the wait.
    let go = |term: &Term, fifo: &Path| -> (f64, u64) {
        term.wait();
        term.arm(FLOOD_END.as_bytes());
        let before = term.received();
        let writer = File::options()
            .write(true)
            .open(fifo)
            .expect("cannot open the fifo");
        let start = Instant::now();
        drop(writer);
        let end = term.wait();
        (
            end.duration_since(start).as_secs_f64(),
            term.received() - before,
        )
    };

    let mut linger_sys = Linger::new(bin);
    let mut tmux_sys = tmux.map(|t| Tmux::new(t, "flood"));
    let (mut t_raw, mut t_linger, mut t_tmux) = (Vec::new(), Vec::new(), Vec::new());
    let mut server_cpu = Vec::new();
    for run in 0..FLOOD_RUNS {
        let fifo = new_fifo();
        let (term, _) = raw(&script(&fifo), "raw flood", Some(READY));
        let (t, bytes) = go(&term, &fifo);
        println!("  run {run}: raw pty {t:.3} s ({bytes} bytes read)");
        t_raw.push(t);
        drop(term);

        let fifo = new_fifo();
        let name = format!("flood{run}");
        linger_sys.new_session(&name, &script(&fifo));
        let (term, _) = linger_sys.attach(&name, Some(READY));
        let pid = linger_sys.server_pid();
        let cpu0 = cpu_secs(pid);
        let (t, bytes) = go(&term, &fifo);
        let cpu = cpu_secs(pid) - cpu0;
        println!(
            "  run {run}: linger {t:.3} s ({bytes} bytes to the client, server CPU {cpu:.2} s)"
        );
        t_linger.push(t);
        server_cpu.push(cpu / t);
        drop(term);

        if let Some(sys) = tmux_sys.as_mut() {
            let fifo = new_fifo();
            sys.new_session(&name, &script(&fifo));
            let (term, _) = sys.attach(&name, Some(READY));
            let (t, bytes) = go(&term, &fifo);
            println!("  run {run}: tmux {t:.3} s ({bytes} bytes to the client)");
            t_tmux.push(t);
        }
    }
    let (l, r) = (median(&mut t_linger), median(&mut t_raw));
    let t = (!t_tmux.is_empty()).then(|| median(&mut t_tmux));
    println!(
        "  linger server CPU during flood: {:.0}% of one core (median)",
        median(&mut server_cpu) * 100.0
    );
    rows.push(row(
        "flood 50 MB, throughput (MB/s)",
        mb / l,
        Some(mb / r),
        t.map(|t| mb / t),
        1,
    ));
    rows.push(row("flood 50 MB, time (s)", l, Some(r), t, 3));
}

/// b. Keystroke-to-echo latency through an attached client, on a raw-mode `cat`.
fn echo(bin: &Path, tmux: Option<&Path>, rows: &mut Vec<Row>) {
    println!("echo: {ECHO_KEYS} keystrokes each (after {ECHO_WARMUP} warm-up)");
    let script = format!("stty raw -echo; printf '{READY}'; exec cat");
    // Letters that are not final bytes of the escape sequences a multiplexer writes.
    let keys = b"wxyz";
    // Clients are spawned watching for READY.
    let measure = |term: &Term| -> Vec<f64> {
        term.wait();
        let mut lat = Vec::with_capacity(ECHO_KEYS);
        for i in 0..ECHO_WARMUP + ECHO_KEYS {
            let k = keys[i % keys.len()];
            term.arm(&[k]);
            let start = Instant::now();
            term.type_bytes(&[k]);
            let at = term.wait();
            if i >= ECHO_WARMUP {
                lat.push(at.duration_since(start).as_secs_f64() * 1e3);
            }
        }
        lat
    };
    let (term, _) = raw(&script, "raw echo", Some(READY));
    let mut raw_lat = measure(&term);
    drop(term);

    let mut linger_sys = Linger::new(bin);
    linger_sys.new_session("echo", &script);
    let (term, _) = linger_sys.attach("echo", Some(READY));
    let mut linger_lat = measure(&term);
    drop(term);
    drop(linger_sys);

    let mut tmux_lat = tmux.map(|t| {
        let mut sys = Tmux::new(t, "echo");
        sys.new_session("echo", &script);
        let (term, _) = sys.attach("echo", Some(READY));
        measure(&term)
    });
    for (label, p) in [("p50", 0.5), ("p99", 0.99)] {
        rows.push(row(
            &format!("echo latency {label} (ms)"),
            percentile(&mut linger_lat, p),
            Some(percentile(&mut raw_lat, p)),
            tmux_lat.as_mut().map(|v| percentile(v, p)),
            3,
        ));
    }
}

/// c. Attach to a session with 10,000 lines of history and a full screen; time to the screen.
fn attach(bin: &Path, tmux: Option<&Path>, work: &Path, rows: &mut Vec<Row>) {
    println!("attach: {ATTACH_RUNS} attaches each");
    let data = corpus::history_then_screen(10_000 + ROWS as usize, ROWS, COLS, ATTACH_MARK);
    let file = work.join("attach.bin");
    std::fs::write(&file, &data).expect("cannot write the attach corpus");
    let file_q = sh_quote(&file.to_string_lossy());
    let script = format!("cat {file_q}; exec sleep 100000");

    let times = |sys: &dyn System| -> (Vec<f64>, u64) {
        sys.wait_text("att", ATTACH_MARK);
        let mut t = Vec::new();
        let mut bytes = 0;
        for _ in 0..ATTACH_RUNS {
            let (term, start) = sys.attach("att", Some(ATTACH_MARK));
            let at = term.wait();
            t.push(at.duration_since(start).as_secs_f64() * 1e3);
            bytes = term.received();
        }
        (t, bytes)
    };

    let mut raw_t = Vec::new();
    for _ in 0..ATTACH_RUNS {
        let (term, start) = raw(&format!("exec cat {file_q}"), "raw cat", Some(ATTACH_MARK));
        raw_t.push(term.wait().duration_since(start).as_secs_f64() * 1e3);
    }

    let mut linger_sys = Linger::new(bin);
    linger_sys.new_session("att", &script);
    let (mut linger_t, bytes) = times(&linger_sys);
    println!("  linger client received {bytes} bytes per attach (history replay included)");
    drop(linger_sys);

    let tmux_t = tmux.map(|t| {
        let mut sys = Tmux::new(t, "attach");
        sys.new_session("att", &script);
        let (mut v, bytes) = times(&sys);
        println!("  tmux client received {bytes} bytes per attach (screen only)");
        median(&mut v)
    });
    rows.push(row(
        "attach, 10k history + full screen (ms, median; raw = cat of the same bytes)",
        median(&mut linger_t),
        Some(median(&mut raw_t)),
        tmux_t,
        1,
    ));
}

/// d. Server RSS with 1 and 50 idle sessions, and after one session printed 100,000 lines.
fn memory(bin: &Path, tmux: Option<&Path>, work: &Path, rows: &mut Vec<Row>) {
    println!("memory");
    let idle = |sys: &mut dyn System, wide: bool| -> (f64, f64) {
        sys.new_idle("s0", wide);
        let one = rss_mib(sys.server_pid());
        for i in 1..50 {
            sys.new_idle(&format!("s{i}"), wide);
        }
        assert_eq!(sys.list(), 50, "{}: expected 50 sessions", sys.label());
        (one, rss_mib(sys.server_pid()))
    };
    let mut lines = Vec::new();
    let mut rng = corpus::Rng::new(5);
    for n in 0..100_000u64 {
        let line = if n % 2 == 0 {
            corpus::plain_line(&mut rng, n)
        } else {
            corpus::sgr_line(&mut rng, n)
        };
        lines.extend_from_slice(line.as_bytes());
        lines.extend_from_slice(b"\r\n");
    }
    lines.extend_from_slice(format!("{LINES_DONE}\r\n").as_bytes());
    let file = work.join("lines.bin");
    std::fs::write(&file, &lines).expect("cannot write the lines corpus");
    println!(
        "  100,000 lines: {:.1} MB (plain and SGR log lines)",
        lines.len() as f64 / 1e6
    );
    let script = format!(
        "cat {}; exec sleep 100000",
        sh_quote(&file.to_string_lossy())
    );
    let big = |sys: &mut dyn System| -> f64 {
        sys.new_session("big", &script);
        sys.wait_text("big", LINES_DONE);
        // Measured once the server is quiet again: deferred work after a burst (log flushes,
        // returning freed memory) is part of the steady state.
        let pid = sys.server_pid();
        settle(pid);
        rss_mib(pid)
    };

    for (wide, size) in [(false, "80x24"), (true, "200x50")] {
        let (l1, l50) = idle(&mut Linger::new(bin), wide);
        let (t1, t50) = match tmux {
            Some(t) => {
                let (a, b) = idle(&mut Tmux::new(t, &format!("mem{size}")), wide);
                (Some(a), Some(b))
            }
            None => (None, None),
        };
        rows.push(row(
            &format!("server RSS, 1 idle session {size} (MiB)"),
            l1,
            None,
            t1,
            1,
        ));
        rows.push(row(
            &format!("server RSS, 50 idle sessions {size} (MiB)"),
            l50,
            None,
            t50,
            1,
        ));
    }
    let lbig = big(&mut Linger::new(bin));
    let tbig = tmux.map(|t| big(&mut Tmux::new(t, "big")));
    rows.push(row(
        "server RSS, 1 session 200x50 after 100k lines (MiB; 10k history)",
        lbig,
        None,
        tbig,
        1,
    ));
}

/// Polls until `pid` has not switched context for 1.5 s: the startup burst and any deferred
/// work after the last output (linger flushes its output logs 0.5 s after output) are over.
fn settle(pid: i32) {
    let start = Instant::now();
    let mut last = ctx_switches(pid);
    let mut quiet = 0;
    while quiet < 15 && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
        let now = ctx_switches(pid);
        quiet = if now == last { quiet + 1 } else { 0 };
        last = now;
    }
}

/// e. CPU time and context switches over 10 s with 10 idle sessions and one attached client.
fn idle(bin: &Path, tmux: Option<&Path>, rows: &mut Vec<Row>) {
    println!("idle: {} s window per system", IDLE_WINDOW.as_secs());
    let window = |sys: &mut dyn System| -> [f64; 4] {
        for i in 0..10 {
            sys.new_session(
                &format!("s{i}"),
                &format!("printf '{READY}'; exec sleep 100000"),
            );
        }
        let (term, _) = sys.attach("s0", Some(READY));
        term.wait();
        let server = sys.server_pid();
        let client = term.pid();
        settle(server);
        let (c0, s0) = (cpu_secs(server), ctx_switches(server));
        let (cc0, cs0) = (cpu_secs(client), ctx_switches(client));
        std::thread::sleep(IDLE_WINDOW);
        [
            (cpu_secs(server) - c0) * 1e3,
            (ctx_switches(server) - s0) as f64,
            (cpu_secs(client) - cc0) * 1e3,
            (ctx_switches(client) - cs0) as f64,
        ]
    };
    let l = window(&mut Linger::new(bin));
    let t = tmux.map(|t| window(&mut Tmux::new(t, "idle")));
    let labels = [
        "idle 10 s: server CPU (ms)",
        "idle 10 s: server context switches",
        "idle 10 s: client CPU (ms)",
        "idle 10 s: client context switches",
    ];
    for (i, label) in labels.iter().enumerate() {
        rows.push(row(label, l[i], None, t.map(|t| t[i]), 0));
    }
}

/// f. Create 100 detached sessions one command at a time, then list them.
fn scale(bin: &Path, tmux: Option<&Path>, rows: &mut Vec<Row>) {
    println!("scale: 100 sessions");
    let lsys = Linger::new(bin);
    let start = Instant::now();
    for i in 0..100 {
        lsys.new_plain(&format!("s{i}"), &["sleep", "100000"]);
    }
    let created = start.elapsed().as_secs_f64();
    let ls_start = Instant::now();
    let n = lsys.list();
    let ls = ls_start.elapsed().as_secs_f64();
    assert_eq!(n, 100, "linger ls listed {n} sessions, expected 100");
    drop(lsys);
    // The floor for 100 CLI invocations: starting the binary and exiting, no server involved.
    let start = Instant::now();
    for _ in 0..100 {
        run_ok(Command::new(bin).arg("--version"), "linger --version");
    }
    println!(
        "  100 x `linger --version` (process start only): {:.3} s",
        start.elapsed().as_secs_f64()
    );

    let t = tmux.map(|t| {
        let mut sys = Tmux::new(t, "scale");
        let start = Instant::now();
        for i in 0..100 {
            sys.new_argv(&format!("s{i}"), &["sleep", "100000"], false);
        }
        let created = start.elapsed().as_secs_f64();
        let ls_start = Instant::now();
        let n = sys.list();
        let ls = ls_start.elapsed().as_secs_f64();
        assert_eq!(n, 100, "tmux ls listed {n} sessions, expected 100");
        (created, ls)
    });
    rows.push(row(
        "create 100 sessions (s)",
        created,
        None,
        t.map(|t| t.0),
        3,
    ));
    rows.push(row(
        "ls with 100 sessions (ms)",
        ls * 1e3,
        None,
        t.map(|t| t.1 * 1e3),
        1,
    ));
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and a minute of real
    // processes has no place in a test run.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("e2e: skipped outside `cargo bench` (run `cargo bench --bench e2e`)");
        return;
    }
    // A name filter picks scenarios (e.g. `cargo bench --bench e2e -- echo idle`).
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let wanted =
        |name: &str| filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()));
    let bin = linger_bin();
    let tmux = tmux_bin();
    println!(
        "linger: {}\ntmux: {}",
        bin.display(),
        tmux.as_ref()
            .map(|t| t.display().to_string())
            .unwrap_or_else(|| "not on PATH (tmux columns empty)".into())
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average: {}", load.trim());
    if load
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .is_some_and(|l| l > 0.5)
    {
        println!("warning: the machine is busy; timings will be noisy");
    }
    let tmux = tmux.as_deref();
    let work = tempfile::Builder::new()
        .prefix("linger-bench-data")
        .tempdir_in("/tmp")
        .expect("cannot create a temporary directory");
    let total = Instant::now();
    let mut rows = Vec::new();
    if wanted("flood") {
        flood(&bin, tmux, work.path(), &mut rows);
    }
    if wanted("echo") {
        echo(&bin, tmux, &mut rows);
    }
    if wanted("attach") {
        attach(&bin, tmux, work.path(), &mut rows);
    }
    if wanted("memory") {
        memory(&bin, tmux, work.path(), &mut rows);
    }
    if wanted("idle") {
        idle(&bin, tmux, &mut rows);
    }
    if wanted("scale") {
        scale(&bin, tmux, &mut rows);
    }
    print_table(&rows);
    println!("\ntotal {:.0} s", total.elapsed().as_secs_f64());
}
