//! Adoption: a server started by the keeper takes over the programs the keeper held for the
//! server before it (crashed, killed or upgraded), instead of listing them `lost`.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;

use super::{SESSION_COMMANDS, Server, session};
use crate::keeper::link::{Held, Link};
use crate::log;
use crate::state::SessionRecord;

/// A held program matched to its saved session, with the output saved for it.
pub struct Adoption {
    pub held: Held,
    pub history: Vec<String>,
    /// The saved screen and the output after it.
    pub output: session::Output,
}

/// Connects to the keeper that started this server (see `crate::keeper::ENV`); without one,
/// says that programs will not outlive this server.
pub fn keeper_link(dir: &Path) -> (Option<Link>, Vec<Held>) {
    if std::env::var_os(crate::keeper::ENV).is_none() {
        log::info("no keeper started this server: its programs will not survive it");
        return (None, Vec::new());
    }
    match crate::keeper::link::connect(dir) {
        Ok((link, held)) => {
            log::info(&format!("keeper holds {} program(s)", held.len()));
            (Some(link), held)
        }
        Err(e) => {
            log::warn(&format!(
                "cannot reach the keeper ({e}): programs will not survive this server"
            ));
            (None, Vec::new())
        }
    }
}

/// Takes the held program of session `record` from `held`, with its saved output, when it is
/// that session's program still (or ended while no server ran). A running program on its own
/// terminal under the session's name wins over a record naming another pid or state: the
/// server was killed after starting it (`new`, `revive`) and before its record reached the
/// disk. Blocking.
pub fn take_held(dir: &Path, record: &mut SessionRecord, held: &mut Vec<Held>) -> Option<Adoption> {
    // An ended program of the same name may still be held (its `release` never reached the
    // keeper): the one running on its terminal is the session's now.
    let named = |h: &Held| h.name == record.name;
    let running = held
        .iter()
        .position(|h| named(h) && h.ended.is_none() && on_its_terminal(h));
    // No held program of that name runs on its terminal when the search fell back.
    let runs_here = running.is_some();
    let i = running.or_else(|| held.iter().position(named))?;
    let entry = held.swap_remove(i);
    let recorded = entry.pid as u32 == record.pid && record.state == "running";
    if !(runs_here || recorded && entry.ended.is_some()) {
        if recorded {
            log::warn(&format!(
                "session {}: pid {} is no longer its program",
                record.name, entry.pid
            ));
        }
        held.push(entry);
        return None;
    }
    if !recorded {
        log::info(&format!(
            "session {}: its record (pid {}, {}) predates its program (pid {}), which is adopted",
            record.name, record.pid, record.state, entry.pid
        ));
        record.pid = entry.pid as u32;
        record.state = "running".into();
        record.exit_code = None;
        record.signal = None;
    }
    let (history, screen) = crate::state::read_output(dir);
    Some(Adoption {
        held: entry,
        history,
        output: session::Output {
            screen,
            redraw: super::screen_state::read(dir),
            journal: super::journal::read(dir),
        },
    })
}

/// The held programs that have no session on disk at all (the server was killed before the
/// first record of a new session was written), each with a record rebuilt from what the system
/// says of the process: its command line, directory and environment now. Blocking.
pub fn unrecorded(store: &Path, held: &mut Vec<Held>) -> Vec<(PathBuf, SessionRecord, Adoption)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < held.len() {
        let entry = &held[i];
        let dir = crate::state::session_dir(store, &entry.name);
        let rebuilt = (entry.ended.is_none()
            && crate::paths::validate_session_name(&entry.name).is_ok()
            && !dir.join(crate::state::RECORD_FILE).exists()
            && on_its_terminal(entry))
        .then(|| record_from_proc(&entry.name, entry.pid))
        .flatten();
        let Some(record) = rebuilt else {
            i += 1;
            continue;
        };
        log::info(&format!(
            "session {}: no record was saved for pid {}; rebuilt from the process",
            record.name, record.pid
        ));
        found.push((
            dir,
            record,
            Adoption {
                held: held.swap_remove(i),
                history: Vec::new(),
                output: session::Output::default(),
            },
        ));
    }
    found
}

/// A running session's record from `/proc/PID`: what `new` would have saved, as far as the
/// process still shows it.
fn record_from_proc(name: &str, pid: i32) -> Option<SessionRecord> {
    let proc = PathBuf::from(format!("/proc/{pid}"));
    let split = |bytes: Vec<u8>| -> Vec<String> {
        bytes
            .split(|b| *b == 0)
            .filter(|part| !part.is_empty())
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect()
    };
    let command = split(std::fs::read(proc.join("cmdline")).ok()?);
    let cwd = std::fs::read_link(proc.join("cwd")).ok()?;
    let mut env: Vec<(String, String)> =
        split(std::fs::read(proc.join("environ")).unwrap_or_default())
            .iter()
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let env_bytes: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    if env_bytes > crate::protocol::MAX_ENV_BYTES {
        env.clear();
    }
    let spec = crate::protocol::SessionSpec {
        name: name.to_string(),
        command,
        cwd: cwd.to_string_lossy().into_owned(),
        clear_env: !env.is_empty(),
        env,
        scrollback: 10_000,
        rows: 24,
        cols: 80,
        resume_command: None,
        log_limit: 0,
    };
    (!spec.command.is_empty()).then(|| session::new_record(&spec, pid as u32, None))
}

/// Whether `held.pid` still runs with the held pty as its controlling terminal: a pid reused by
/// an unrelated process must never be adopted (nor signalled by `kill`).
fn on_its_terminal(held: &Held) -> bool {
    let Ok(pts) = rustix::pty::ptsname(&held.master, Vec::new()) else {
        return false;
    };
    let Ok(pts) = rustix::fs::stat(pts.as_c_str()) else {
        return false;
    };
    // Both use the kernel's encoding of a device number.
    crate::proc_stat::ProcStat::of(held.pid).is_some_and(|stat| stat.tty_nr == pts.st_rdev)
}

impl Server {
    /// Starts the actor of an adopted session; on failure the session is `lost` as before.
    pub(super) fn adopt(&self, dir: PathBuf, mut record: SessionRecord, adoption: Adoption) {
        let name = record.name.clone();
        let pid = adoption.held.pid as u32;
        let spec = super::revive::spec_for(
            &name,
            &record,
            super::revive::ReviveRequest {
                command: Some(record.command.clone()),
                cwd: None,
                rows: 24,
                cols: 80,
            },
        );
        // The model keeps `scrollback` lines; the log may hold far more (read from disk on
        // demand by capture), and parsing them all would hold up the server's start.
        let mut history = adoption.history;
        history.drain(..history.len().saturating_sub(spec.scrollback));
        let earlier = session::Earlier {
            lines: history,
            notes: record.notes.clone(),
            created_at: record.created_at,
            profile: record.profile.clone(),
            queue: record.queue.clone(),
        };
        let (tx, rx) = mpsc::channel(SESSION_COMMANDS);
        let wiring = self.wiring(rx);
        match session::Session::adopt(spec, adoption.held, adoption.output, wiring, earlier) {
            Ok(session) => {
                log::info(&format!("session {name}: adopted its program (pid {pid})"));
                self.register(name, tx, pid);
                tokio::spawn(session.run());
            }
            Err(e) => {
                log::warn(&format!(
                    "session {name}: cannot adopt pid {pid}: {e}; lost"
                ));
                if let Some(keeper) = &self.keeper {
                    keeper.release(pid);
                }
                record.state = "lost".into();
                let (lost_dir, lost) = (dir.clone(), record.clone());
                tokio::task::spawn_blocking(move || crate::state::write_record(&lost_dir, &lost));
                self.add_dormant(dir, record, session::unix_millis());
            }
        }
    }
}
