//! What a session's terminal is running in the foreground now (tmux's
//! `pane_current_command`): its process group, command line and directory, from `/proc`.

use std::io::Read;
use std::os::fd::AsFd;

use crate::protocol::Foreground;

/// Most bytes of a command line read from `/proc`; longer ones are cut.
const MAX_CMDLINE: u64 = 64 * 1024;

/// This process's command line as /proc shows it, read once.
fn own_cmdline() -> &'static Vec<u8> {
    static OWN: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    OWN.get_or_init(|| std::fs::read("/proc/self/cmdline").unwrap_or_default())
}

/// The foreground process group's leader of the terminal whose master is `master`.
pub fn of_terminal(master: impl AsFd) -> Option<Foreground> {
    let pgid = rustix::termios::tcgetpgrp(master)
        .ok()?
        .as_raw_nonzero()
        .get() as u32;
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pgid}"));
    let mut raw = Vec::new();
    std::fs::File::open(proc_dir.join("cmdline"))
        .ok()?
        .take(MAX_CMDLINE)
        .read_to_end(&mut raw)
        .ok()?;
    // A child between its clone and its exec shares the server's memory, so /proc shows the
    // server's command line: not its program yet.
    if raw == *own_cmdline() {
        return None;
    }
    let command = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let cwd = std::fs::read_link(proc_dir.join("cwd"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    Some(Foreground {
        pid: pgid,
        command,
        cwd,
    })
}
