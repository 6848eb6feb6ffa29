//! The systems under test: linger, tmux, dtach and the program alone on a pty.

use crate::procfs::proc_status;
use crate::term::Term;
use crate::{COLS, DEADLINE, ROWS, clean_env, run_ok};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub trait System {
    fn label(&self) -> &'static str;
    /// Starts `script` (run by `sh -c`) in a new session of ROWSxCOLS.
    fn new_session(&mut self, name: &str, script: &str);
    /// Starts `sleep 100000` in a new session: ROWSxCOLS when `wide`, else the size a session
    /// gets without a terminal (80x24 for both linger and tmux).
    fn new_idle(&mut self, name: &str, wide: bool);
    /// Starts a client of `name` on a pty, watching for `needle`.
    fn attach(&mut self, name: &str, needle: Option<&str>) -> (Term, Instant);
    /// The process that keeps the sessions (for dtach, the first session's).
    fn server_pid(&self) -> i32;
    /// Every process that keeps sessions: one server, or one per session for dtach.
    fn server_pids(&self) -> Vec<i32> {
        vec![self.server_pid()]
    }
    /// Waits until the session's screen or history shows `marker`.
    fn wait_text(&self, name: &str, marker: &str);
    fn list(&self) -> usize;
}

pub struct Linger {
    bin: PathBuf,
    /// Extra arguments to `attach` (`--history all`).
    attach_args: Vec<String>,
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    work: PathBuf,
}

impl Linger {
    pub fn new(bin: &Path) -> Linger {
        let tmp = tempfile::Builder::new()
            .prefix("linger-bench")
            .tempdir_in("/tmp")
            .expect("cannot create a temporary directory");
        let dir = tmp.path().join("rt");
        let work = tmp.path().join("work");
        std::fs::create_dir(&work).expect("cannot create the work directory");
        Linger {
            bin: bin.to_path_buf(),
            attach_args: Vec::new(),
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

    pub fn new_plain(&self, name: &str, argv: &[&str]) {
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

    fn attach(&mut self, name: &str, needle: Option<&str>) -> (Term, Instant) {
        let mut cmd = self.cmd();
        cmd.args(["attach", name]).args(&self.attach_args);
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
pub fn wait_gone(pid: i32) {
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

pub struct Tmux {
    bin: PathBuf,
    socket: String,
    started: bool,
}

impl Tmux {
    pub fn new(bin: &Path, tag: &str) -> Tmux {
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

    pub fn new_argv(&mut self, name: &str, argv: &[&str], wide: bool) {
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

    fn attach(&mut self, name: &str, needle: Option<&str>) -> (Term, Instant) {
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
pub fn raw(script: &str, what: &str, needle: Option<&str>) -> (Term, Instant) {
    let mut cmd = Command::new("sh");
    clean_env(&mut cmd).args(["-c", script]);
    Term::spawn(cmd, what, needle)
}

/// The binaries in this run: linger always, dtach and tmux when installed.
pub struct Peers {
    pub linger: PathBuf,
    pub dtach: Option<PathBuf>,
    pub tmux: Option<PathBuf>,
}

impl Peers {
    pub fn linger(&self, _tag: &str) -> Box<dyn System> {
        Box::new(Linger::new(&self.linger))
    }

    /// linger whose attaches replay the whole history (`--history all`), not the default.
    pub fn linger_all_history(&self) -> Box<dyn System> {
        let mut linger = Linger::new(&self.linger);
        linger.attach_args = vec!["--history".into(), "all".into()];
        Box::new(linger)
    }

    pub fn dtach(&self, _tag: &str) -> Option<Box<dyn System>> {
        let bin = self.dtach.as_deref()?;
        Some(Box::new(crate::dtach::Dtach::new(bin)))
    }

    pub fn tmux(&self, tag: &str) -> Option<Box<dyn System>> {
        let bin = self.tmux.as_deref()?;
        Some(Box::new(Tmux::new(bin, tag)))
    }

    /// linger first, then dtach and tmux where installed; `tag` keeps their servers apart.
    pub fn systems(&self, tag: &str) -> Vec<Box<dyn System>> {
        let mut all = vec![self.linger(tag)];
        all.extend(self.dtach(tag));
        all.extend(self.tmux(tag));
        all
    }

    /// Figures in [`Peers::systems`] order, placed in the results' baseline columns (the raw
    /// pty column is left empty: it is not a system).
    pub fn by_baseline(&self, values: &[f64]) -> [Option<f64>; 3] {
        let mut rest = values.iter().skip(1).copied();
        let dtach = self.dtach.as_ref().and_then(|_| rest.next());
        let tmux = self.tmux.as_ref().and_then(|_| rest.next());
        [None, dtach, tmux]
    }
}
