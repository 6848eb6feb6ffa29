//! A session's program, spawned by this server or adopted from the keeper, and building the
//! session actor around either.

use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;

use super::{
    Clients, Earlier, Input, OUTER_TERMINAL_VARS, Persist, Session, Waiters, agent, lifecycle,
    session_env, unix_millis,
};
use crate::keeper::link::{Held, Link};
use crate::model::Model;
use crate::protocol::{SessionSpec, SessionState};
use crate::query_filter::QueryFilter;
use crate::server::Registry;
use crate::server::commands::SessionCmd;

/// How often, and how many times, an adopted program that has ended is asked about before
/// the keeper has reaped it (it does so on SIGCHLD, right after the exit the pidfd reported).
const STATUS_RETRY: Duration = Duration::from_millis(10);
const STATUS_TRIES: usize = 200;

pub enum Program {
    /// Started by this server: its child.
    Spawned(crate::spawn::Child),
    /// Started by an earlier server and held by the keeper: the keeper is its reaper, so its
    /// end is seen through a pidfd and its status asked from the keeper.
    Adopted {
        pid: u32,
        pidfd: AsyncFd<OwnedFd>,
        keeper: Link,
    },
    /// Ended while no server ran; the keeper kept its status.
    Ended(ExitStatus),
}

impl Program {
    /// Resolves when the program has ended. Cancellation-safe: the pidfd's readiness is not
    /// consumed and asking the keeper is idempotent, so a cancelled wait loses nothing.
    pub async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            Program::Spawned(child) => child.wait().await,
            Program::Ended(status) => Ok(*status),
            Program::Adopted { pid, pidfd, keeper } => {
                let _ready = pidfd.readable().await?;
                for _ in 0..STATUS_TRIES {
                    match keeper.status(*pid).await {
                        Some(Some(ended)) => return Ok(ExitStatus::from_raw(ended.raw())),
                        Some(None) => tokio::time::sleep(STATUS_RETRY).await,
                        None => break,
                    }
                }
                Err(std::io::Error::other(
                    "the keeper cannot say how the program ended",
                ))
            }
        }
    }
}

/// Starts `spec`'s program on a new pty of the spec's size. Blocking: the program is looked up
/// (so a missing one is an error here), and the [`crate::spawn::Launch`] must be finished on a
/// thread that may block.
pub fn spawn_program(
    spec: &SessionSpec,
    runtime_dir: &std::path::Path,
) -> std::io::Result<(crate::spawn::Spawned, crate::spawn::Launch)> {
    let mut env_remove = OUTER_TERMINAL_VARS.to_vec();
    env_remove.push(crate::keeper::ENV);
    crate::spawn::spawn(crate::spawn::SpawnOptions {
        command: &spec.command,
        cwd: &spec.cwd,
        env: session_env(spec, runtime_dir),
        env_remove,
        clear_env: spec.clear_env,
        rows: spec.rows,
        cols: spec.cols,
    })
}

/// What a session spec must satisfy before anything is started for it.
pub fn check_spec(spec: &SessionSpec) -> Result<(), String> {
    crate::paths::validate_session_name(&spec.name)?;
    crate::state::check_bounds(spec.scrollback, spec.log_limit)?;
    if spec.command.is_empty() {
        return Err("no command to run".into());
    }
    let env_bytes: usize = spec.env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    if env_bytes > crate::protocol::MAX_ENV_BYTES {
        return Err(format!(
            "the environment is {} KiB; a session takes at most {} KiB",
            env_bytes / 1024,
            crate::protocol::MAX_ENV_BYTES / 1024
        ));
    }
    Ok(())
}

/// Why a session's program did not start, in the user's terms.
pub fn spawn_error(spec: &SessionSpec, e: &std::io::Error) -> String {
    let (name, cwd) = (&spec.name, &spec.cwd);
    if e.kind() == std::io::ErrorKind::NotFound && !std::path::Path::new(cwd).is_dir() {
        format!("cannot start session '{name}': directory {cwd} does not exist")
    } else {
        let program = spec.command.first().map_or("", String::as_str);
        format!("cannot start '{program}' in session '{name}': {e}")
    }
}

/// What an adopted session's earlier server saved besides its history.
#[derive(Default)]
pub struct Output {
    /// The last saved screen's rows.
    pub screen: Vec<String>,
    /// The bytes that redraw it exactly and the output offset they cover (a server older
    /// than this saved only the rows).
    pub redraw: Option<(u64, Vec<u8>)>,
    /// Raw output read around and after that screen was saved.
    pub journal: crate::server::journal::Journaled,
}

/// What a session is connected to besides its program.
pub struct Wiring<'a> {
    pub registry: Registry,
    pub rx: mpsc::Receiver<SessionCmd>,
    pub runtime_dir: &'a std::path::Path,
    pub save_to: Option<(&'a std::path::Path, &'a crate::server::disk::Disk)>,
    pub keeper: Option<Link>,
}

impl Session {
    /// Builds the actor around a program just started by [`spawn_program`], ready to `run`.
    pub fn spawned(
        spec: SessionSpec,
        spawned: crate::spawn::Spawned,
        wiring: Wiring<'_>,
        earlier: Option<Earlier>,
    ) -> std::io::Result<Session> {
        // The keeper was given the master as soon as the program started (`Server::start`).
        let pid = spawned.child.id();
        let program = Program::Spawned(spawned.child);
        let mut session =
            Session::assemble(spec, program, spawned.master, pid, wiring, earlier.as_ref())?;
        if earlier.is_some() {
            let when = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            session.model.push_history_line(format!(
                "\x1b[7m── {} revived at {when} ──\x1b[m",
                session.name
            ));
            session.persist.mark_dirty();
        }
        Ok(session)
    }

    /// Takes over a program the keeper held for an earlier server: its history is `earlier`,
    /// its screen the saved one until the program redraws (it is made to: its terminal
    /// narrows by a column and widens back, which sends it SIGWINCH). Output it wrote
    /// meanwhile is still in the pty and is read as usual.
    pub fn adopt(
        mut spec: SessionSpec,
        held: Held,
        output: Output,
        wiring: Wiring<'_>,
        earlier: Earlier,
    ) -> std::io::Result<Session> {
        let pid = held.pid as u32;
        let size = rustix::termios::tcgetwinsize(&held.master)?;
        (spec.rows, spec.cols) = crate::protocol::clamp_size(size.ws_row, size.ws_col);
        crate::pty::set_nonblocking(&held.master)?;
        let keeper = wiring.keeper.clone();
        let program = match (held.ended, keeper) {
            (Some(ended), _) => Program::Ended(ExitStatus::from_raw(ended.raw())),
            (None, Some(keeper)) => {
                let raw = rustix::process::Pid::from_raw(held.pid)
                    .ok_or_else(|| std::io::Error::other("pid 0"))?;
                let pidfd = rustix::process::pidfd_open(raw, rustix::process::PidfdFlags::empty())?;
                Program::Adopted {
                    pid,
                    // SAFETY: a fresh pidfd that only this AsyncFd will own.
                    pidfd: unsafe { AsyncFd::register(pidfd) }.map_err(|e| e.into_parts().1)?,
                    keeper,
                }
            }
            (None, None) => return Err(std::io::Error::other("no keeper to adopt from")),
        };
        let ended = matches!(program, Program::Ended(_));
        let mut session =
            Session::assemble(spec, program, held.master, pid, wiring, Some(&earlier))?;
        session.replay(output);
        if !ended {
            let (rows, cols) = (session.spec.rows, session.spec.cols);
            let master = session.master.get_ref();
            let _ = crate::pty::resize(master, rows, cols.saturating_sub(1).max(1));
            let _ = crate::pty::resize(master, rows, cols);
        }
        session.persist.mark_dirty();
        Ok(session)
    }

    /// Puts the saved screen back, then the journal's output after it; answers to queries
    /// in it went to the program long ago and are dropped. The exact redraw restores the
    /// cursor, modes and both screens; an older server's rows are put back without their
    /// blank bottom rows (so the cursor ends where the output did).
    fn replay(&mut self, output: Output) {
        let after = match &output.redraw {
            Some((mark, redraw)) => {
                let _ = self.model.process(redraw);
                output.journal.after(*mark)
            }
            None => {
                let rows = crate::server::transcript::without_trailing_blanks(output.screen);
                let mut text = rows.join("\r\n");
                if !output.journal.bytes.is_empty() && !text.is_empty() {
                    // Journaled output started after the screen's last line was ended.
                    text.push_str("\r\n");
                }
                let _ = self.model.process(text.as_bytes());
                &output.journal.bytes
            }
        };
        let _ = self.model.process(after);
        let _ = self.model.take_answers();
        let _ = self.model.take_signals();
        self.persist.keep_journal(output.journal.end());
    }

    fn assemble(
        spec: SessionSpec,
        program: Program,
        master: OwnedFd,
        pid: u32,
        wiring: Wiring<'_>,
        earlier: Option<&Earlier>,
    ) -> std::io::Result<Session> {
        // Watched for output only: the master reports room for input each time the program
        // reads some, a wake-up per key for nothing; input waits for room on its own (see
        // write_room.rs).
        // SAFETY: the fd is a pty master that only this AsyncFd will own.
        let master = unsafe { AsyncFd::register_with_interest(master, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        let mut model = match earlier {
            Some(e) => {
                Model::with_earlier_lines(spec.rows, spec.cols, spec.scrollback, e.lines.clone())
            }
            None => Model::new(spec.rows, spec.cols, spec.scrollback),
        };
        let record = lifecycle::new_record(&spec, pid, earlier);
        if let Some(profile) = &record.profile {
            model.set_profile(profile.clone());
        }
        let save_to = wiring.save_to;
        let persist = Persist::new(
            save_to.map(|(s, disk)| (crate::state::session_dir(s, &spec.name), disk.clone())),
            &record,
        );
        if persist.saves() {
            model.collect_fresh_lines();
        }
        Ok(Session {
            watch: super::watch::Watch::new(earlier.is_some()),
            tasks: crate::server::tasks::Tasks::new(record.queue.clone()),
            timer: super::Timer::new(),
            frames: super::frames::FrameWait::default(),
            name: spec.name.clone(),
            model,
            record,
            persist,
            spec,
            master,
            program,
            pid,
            keeper: wiring.keeper,
            leaving: None,
            filter: QueryFilter::default(),
            clients: Clients::default(),
            input: Input::default(),
            input_room: Default::default(),
            read_buf: BytesMut::new(),
            state: SessionState::Running,
            child_running: true,
            output_open: true,
            exit_deadline: None,
            kill_deadline: None,
            kill_replies: Vec::new(),
            ending: false,
            handed_over: false,
            waiters: Waiters::default(),
            agent: agent::Agent::default(),
            last_output_at: unix_millis(),
            last_output: Instant::now(),
            trim_at: None,
            registry: wiring.registry,
            rx: wiring.rx,
        })
    }
}
