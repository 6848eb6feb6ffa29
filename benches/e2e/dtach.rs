//! dtach as a baseline: one process per session, raw bytes, no screen model and no replay.

use crate::systems::{System, wait_gone};
use crate::term::Term;
use crate::{COLS, ROWS, clean_env, run_ok};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

pub struct Dtach {
    bin: PathBuf,
    tmp: tempfile::TempDir,
    /// Scripts of sessions not started yet: dtach replays nothing, so a session whose output
    /// the bench watches is created by its attaching client (`dtach -c`), as a dtach user would.
    pending: HashMap<String, String>,
    /// Attached clients, which share the session's command line but are not its keepers.
    clients: Vec<i32>,
}

pub fn dtach_bin() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("dtach"))
        .find(|p| p.is_file())
}

impl Dtach {
    pub fn new(bin: &Path) -> Dtach {
        Dtach {
            bin: bin.to_path_buf(),
            tmp: tempfile::Builder::new()
                .prefix("linger-bench-dtach")
                .tempdir_in("/tmp")
                .expect("cannot create a temporary directory"),
            pending: HashMap::new(),
            clients: Vec::new(),
        }
    }

    fn socket(&self, name: &str) -> PathBuf {
        self.tmp.path().join(format!("{name}.sock"))
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        clean_env(&mut c).stdin(Stdio::null());
        c
    }

    /// `dtach -n` with a ROWSxCOLS pty as stdin when `wide`, so the session has that size.
    pub fn new_detached(&self, name: &str, argv: &[&str], wide: bool) {
        let mut cmd = self.cmd();
        cmd.arg("-n").arg(self.socket(name)).arg("-E").args(argv);
        let _master = if wide {
            let (master, slave) = linger::pty::open_pair(ROWS, COLS).expect("cannot open a pty");
            cmd.stdin(Stdio::from(slave));
            Some(master)
        } else {
            None
        };
        run_ok(&mut cmd, &format!("dtach -n {name}"));
    }
}

/// Processes whose command line names `dir`, found through /proc.
fn processes_naming(dir: &Path) -> Vec<i32> {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let text = String::from_utf8_lossy(&c);
                text.starts_with(&*bin_name()) && text.contains(&needle)
            })
        })
        .collect()
}

fn bin_name() -> String {
    dtach_bin()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl System for Dtach {
    fn label(&self) -> &'static str {
        "dtach"
    }

    fn new_session(&mut self, name: &str, script: &str) {
        self.pending.insert(name.to_string(), script.to_string());
    }

    fn new_idle(&mut self, name: &str, wide: bool) {
        self.new_detached(name, &["sleep", "100000"], wide);
    }

    fn attach(&mut self, name: &str, needle: Option<&str>) -> (Term, Instant) {
        let mut cmd = self.cmd();
        match self.pending.remove(name) {
            Some(script) => cmd
                .arg("-c")
                .arg(self.socket(name))
                .args(["-E", "-r", "none", "sh", "-c", &script]),
            None => cmd
                .arg("-a")
                .arg(self.socket(name))
                .args(["-E", "-r", "none"]),
        };
        let (term, start) = Term::spawn(cmd, &format!("dtach attach {name}"), needle);
        self.clients.push(term.pid());
        (term, start)
    }

    fn server_pid(&self) -> i32 {
        *self
            .server_pids()
            .first()
            .expect("no dtach session process is running")
    }

    fn server_pids(&self) -> Vec<i32> {
        processes_naming(self.tmp.path())
            .into_iter()
            .filter(|pid| !self.clients.contains(pid))
            .collect()
    }

    fn wait_text(&self, _name: &str, _marker: &str) {
        unreachable!("dtach keeps no screen to search; the bench never asks it")
    }

    fn list(&self) -> usize {
        std::fs::read_dir(self.tmp.path())
            .map(|d| d.flatten().count())
            .unwrap_or(0)
    }
}

impl Drop for Dtach {
    fn drop(&mut self) {
        // dtach has no kill-server: its session processes end when their programs do.
        for pid in processes_naming(self.tmp.path()) {
            // SAFETY: kill(2) on a process this bench started.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
            wait_gone(pid);
        }
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self.tmp.path())
            .status();
    }
}
