//! One session actor: owns the pty, the child, the model and the attached clients, and runs
//! the loop that serves them. Output is forwarded to clients first, then fed to the model;
//! nothing a client does can block it.

mod agent;
mod clients;
mod flood;
mod focus;
mod frames;
mod input;
mod lifecycle;
mod persist;
mod program;
mod requests;
mod rules;
mod waiters;
mod watch;

use std::os::fd::{AsFd, OwnedFd};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep_until;

use crate::log;
use crate::model::Model;
use crate::protocol::{Response, SessionSpec, SessionState};
use crate::query_filter::QueryFilter;
use crate::server::Registry;
use crate::server::commands::SessionCmd;
use crate::state::SessionRecord;
use clients::Clients;
use input::Input;
use persist::Persist;
use waiters::Waiters;

/// Variables that describe the terminal the creator (or the server's starter) sat at; a
/// program that saw them would enable features for a terminal it is not talking to.
const OUTER_TERMINAL_VARS: [&str; 16] = [
    "TMUX",
    "TMUX_PANE",
    "STY",
    "KITTY_WINDOW_ID",
    "KITTY_PID",
    "KITTY_PUBLIC_KEY",
    "ITERM_SESSION_ID",
    "WEZTERM_PANE",
    "WEZTERM_EXECUTABLE",
    "GHOSTTY_RESOURCES_DIR",
    "GHOSTTY_BIN_DIR",
    "ALACRITTY_WINDOW_ID",
    "ALACRITTY_SOCKET",
    "VTE_VERSION",
    "KONSOLE_VERSION",
    "WT_SESSION",
];

/// How long after output freed memory is returned to the system (at most once per this).
const TRIM_AFTER_OUTPUT: Duration = Duration::from_secs(1);
/// Bytes read from the pty before forwarding, to batch small reads under load. The buffer is
/// reused once every client has written the previous batch, so reads do not allocate.
const READ_BATCH: usize = 64 * 1024;
/// A pty read shorter than this ends the batch without the read that would find the pty
/// empty. Under a flood the pty hands over about 4 KiB per read, so floods still batch.
const SHORT_READ: usize = 1024;
/// Commands handled after each event at most, besides the one the event may be: enough to
/// empty the queue under any realistic load while still bounding one turn.
const COMMANDS_PER_TURN: usize = 256;
/// How often input waiting for room in the pty is retried besides the readiness wake-up.
const INPUT_RETRY: Duration = Duration::from_millis(10);

pub use lifecycle::new_record;
pub use program::{Output, Program, Wiring, check_spec, spawn_error, spawn_program};

pub struct Session {
    name: String,
    spec: SessionSpec,
    master: AsyncFd<OwnedFd>,
    program: Program,
    pid: u32,
    /// Holds a copy of the master so the program outlives this server; `None` without one.
    keeper: Option<crate::keeper::link::Link>,
    /// `upgrade`: saved and told the clients; end without ending the program. With the
    /// clients that could type then: keys they typed before their attachments ended still
    /// reach the program.
    leaving: Option<Vec<crate::server::commands::ClientId>>,
    model: Model,
    filter: QueryFilter,
    clients: Clients,
    input: Input,
    /// Waits for room in the pty while input is held up.
    input_room: crate::write_room::WriteRoom,
    read_buf: BytesMut,
    state: SessionState,
    child_running: bool,
    output_open: bool,
    exit_deadline: Option<Instant>,
    kill_deadline: Option<Instant>,
    kill_replies: Vec<oneshot::Sender<Response>>,
    /// The server is shutting down: end once the child has.
    ending: bool,
    /// Revive took this session's record and output: end without touching the disk.
    handed_over: bool,
    waiters: Waiters,
    agent: agent::Agent,
    watch: watch::Watch,
    tasks: crate::server::tasks::Tasks,
    last_output_at: u64,
    last_output: Instant,
    /// When to return freed memory to the system; set by output, so it fires once it stops.
    trim_at: Option<Instant>,
    timer: Timer,
    registry: Registry,
    rx: mpsc::Receiver<SessionCmd>,
    record: SessionRecord,
    persist: Persist,
    /// Attaches waiting for the program's synchronized frame to end.
    frames: frames::FrameWait,
}

/// A revived session's past: its earlier output and what its record kept.
pub struct Earlier {
    pub lines: Vec<String>,
    pub notes: String,
    pub created_at: u64,
    /// The terminal profile the session answered queries with.
    pub profile: Option<crate::term::Profile>,
    /// Prompts still queued for its agent.
    pub queue: Vec<String>,
}

pub fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

enum Event {
    Output(Bytes),
    OutputEnded,
    Wrote,
    Command(SessionCmd),
    SendChunk(Option<Vec<u8>>),
    ChildExited(std::io::Result<std::process::ExitStatus>),
    ExitDrained,
    KillEscalation,
    IdleCheck,
    InputCheck,
    Flush,
    Trim,
    FrameWaited,
    Watch,
    CommandsClosed,
}

impl Session {
    pub async fn run(mut self) {
        log::info(&format!("session {} started (pid {})", self.name, self.pid));
        loop {
            let event = self.next_event().await;
            let flooding = matches!(event, Event::Output(_));
            self.on_event(event);
            // Each loop turn handles one event, and under a flood each turn parses a batch of
            // output; commands (attach, input, ls, capture) must not wait for many such turns.
            for _ in 0..COMMANDS_PER_TURN {
                match self.rx.try_recv() {
                    Ok(cmd) => self.on_command(cmd),
                    Err(_) => break,
                }
            }
            if self.should_end() {
                self.persist.send_journal();
                break;
            }
            if self.waiters.has_state() {
                let state = self.agent_state(None).state;
                self.waiters.check_state(state);
            }
            self.watch_turn();
            self.input
                .advance(self.model.bracketed_paste(), || unread_input(&self.master));
            if flooding {
                // A flooding program keeps the pty always readable, so this task would run on
                // and on; tasks it woke (a wait's reply, a client writer) sit in this worker's
                // LIFO slot, which other workers cannot take. Let them run.
                tokio::task::yield_now().await;
            }
            // After the yield, which let the client writers send this turn's output.
            self.persist.send_journal();
        }
        self.end().await;
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Output(chunk) if flood::starts(&chunk) && self.frames_idle() => {
                self.on_flood(chunk)
            }
            Event::Output(chunk) => self.on_output_framed(chunk),
            Event::OutputEnded => self.on_output_ended(),
            Event::Wrote | Event::InputCheck => {}
            Event::Command(cmd) => self.on_command(cmd),
            Event::SendChunk(chunk) => self.input.on_chunk(chunk),
            Event::ChildExited(status) => self.on_child_exit(status),
            Event::ExitDrained => self.finish(),
            Event::KillEscalation => {
                self.kill_deadline = None;
                self.signal_group(libc::SIGKILL);
            }
            Event::IdleCheck => self.waiters.check_idle(self.last_output.elapsed()),
            Event::Flush => self.persist.flush(&mut self.model, false),
            Event::Trim => {
                self.trim_at = None;
                release_freed_memory();
            }
            Event::FrameWaited => self.release_frame_waiters(),
            Event::Watch => self.on_watch(),
            Event::CommandsClosed => self.handed_over = true,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    async fn next_event(&mut self) -> Event {
        // Pending input is written first, whatever else is ready: under a flood the output
        // branch is always ready and the pty's write readiness is not reliably reported.
        if self.output_open && self.input.next_write().is_some() {
            self.write_input();
        }
        let idle_deadline = self.waiters.idle_deadline(self.last_output);
        // A program that gives no signals turns idle after a quiet spell: look again then.
        let idle_deadline = match (idle_deadline, self.waiters.has_state()) {
            (deadline, true) => {
                let quiet_at = self.last_output + agent::QUIET_IDLE;
                let quiet_at = (quiet_at > Instant::now()).then_some(quiet_at);
                deadline.into_iter().chain(quiet_at).min()
            }
            (deadline, false) => deadline,
        };
        // Each deadline with the event it raises when it is the one that came.
        let deadlines: [(Option<Instant>, RaiseEvent); 8] = [
            (self.exit_deadline, || Event::ExitDrained),
            (self.kill_deadline, || Event::KillEscalation),
            (idle_deadline, || Event::IdleCheck),
            (self.input.deadline(), || Event::InputCheck),
            (self.persist.flush_at, || Event::Flush),
            (self.trim_at, || Event::Trim),
            (self.frames.deadline, || Event::FrameWaited),
            (self.watch_deadline(), || Event::Watch),
        ];
        let due = deadlines
            .into_iter()
            .filter_map(|(at, event)| Some((at?, event)))
            .min_by_key(|(at, _)| *at);
        self.timer.arm(due.map(|(at, _)| at));
        let has_input = self.input.next_write().is_some();
        let wants_chunk = self.input.wants_chunk();
        // Every branch is cancellation-safe: readiness guards, channel receives and the timer
        // lose nothing when another branch wins, and reads and writes happen only after a
        // branch won.
        tokio::select! {
            guard = self.master.readable(), if self.output_open => match guard {
                Ok(guard) => read_batch(guard, &mut self.read_buf),
                Err(_) => Event::OutputEnded,
            },
            // Failing to watch for room (out of descriptors) leaves the retry timer below.
            _ = std::future::poll_fn(|cx| match self.input_room.poll_room(self.master.get_ref().as_fd(), cx) {
                Poll::Ready(Err(_)) => Poll::Pending,
                other => other,
            }), if has_input && self.output_open => {
                self.write_input();
                Event::Wrote
            }
            // A pty master does not always report room for input again once its line
            // discipline was stalled by full output (echo needs room too): retry on a timer
            // while input waits, instead of waiting for a wake-up that may not come.
            _ = tokio::time::sleep(INPUT_RETRY), if has_input && self.output_open => {
                self.write_input();
                Event::Wrote
            }
            chunk = self.input.next_chunk(), if wants_chunk => Event::SendChunk(chunk),
            cmd = self.rx.recv() => match cmd {
                Some(cmd) => Event::Command(cmd),
                None => Event::CommandsClosed,
            },
            status = self.program.wait(), if self.child_running => Event::ChildExited(status),
            _ = self.timer.wait(), if due.is_some() => due.map_or(Event::Wrote, |(_, event)| event()),
        }
    }

    fn on_output(&mut self, chunk: Bytes) {
        self.pass_on(&chunk);
        self.model_bytes(&chunk);
        self.after_model();
    }

    /// What output does before the model sees it: journaled, filtered and sent to clients.
    fn pass_on(&mut self, chunk: &Bytes) {
        if self.keeper.is_some() {
            // Sent at the end of this turn (see `run`). Only a kept program can be adopted
            // after a crash; only then does the journal pay.
            self.persist.journal(chunk);
        }
        self.last_output = Instant::now();
        if self.exit_deadline.is_some() {
            // The program has exited but its output is still coming: every client must end
            // on the final screen, so keep reading.
            self.exit_deadline = Some(self.last_output + lifecycle::EXIT_DRAIN);
        }
        self.last_output_at = unix_millis();
        let forwarded = self.filter.filter(chunk.clone());
        let clipboard = self.filter.take_clipboard();
        if !forwarded.is_empty() || clipboard.is_some() {
            self.clients.forward(&forwarded, clipboard.as_ref());
        }
        self.persist.mark_dirty();
        self.watch.screen_changed();
        // Armed by the first output after a trim, not pushed back by later output: a program
        // that prints without pause still gets its freed memory returned every second.
        self.trim_at
            .get_or_insert(self.last_output + TRIM_AFTER_OUTPUT);
    }

    fn model_bytes(&mut self, bytes: &[u8]) {
        model_bytes(&mut self.model, &self.name, bytes);
    }

    /// What the model found in the output it was given: agent signals, answers to queries,
    /// text a `wait` looks for.
    fn after_model(&mut self) {
        let signals = self.model.take_signals();
        self.agent.observe(&signals, self.model.title());
        let answers = self.model.take_answers();
        if !answers.is_empty() && self.child_running && !self.input.push_typed(&answers) {
            log::warn(&format!(
                "session {}: program is not reading its input; dropped answers to its queries",
                self.name
            ));
        }
        if self.waiters.has_text() {
            let (screen, _) = self.numbered_screen(false);
            self.waiters.check_text(self.model.history(), &screen);
        }
    }

    fn on_output_ended(&mut self) {
        self.output_open = false;
        self.release_frame_waiters();
        let rest = self.filter.flush();
        if !rest.is_empty() {
            self.clients.forward(&rest, None);
        }
        if !self.child_running {
            self.finish();
        }
    }

    /// Writes what input is due to the pty without blocking; with no room, it waits for the
    /// next try (see `input_room`).
    fn write_input(&mut self) {
        let Some(bytes) = self.input.next_write() else {
            return;
        };
        match rustix::io::write(self.master.get_ref(), bytes) {
            Ok(n) => {
                self.input.wrote(n);
                self.input_room.wrote();
            }
            Err(rustix::io::Errno::AGAIN) => {}
            Err(e) => {
                self.input
                    .fail_all(&format!("cannot write to the program: {e}"));
                self.input_room.wrote();
            }
        }
    }

    fn apply_size(&mut self, rows: u16, cols: u16) {
        if rows == 0 || cols == 0 {
            return;
        }
        let (rows, cols) = crate::protocol::clamp_size(rows, cols);
        if (rows, cols) == self.model.size() {
            return;
        }
        if let Err(e) = crate::pty::resize(self.master.get_ref(), rows, cols) {
            log::warn(&format!("session {}: resize failed: {e}", self.name));
            return;
        }
        self.model.resize(rows, cols);
    }
}

/// The environment a session's program starts with: linger's own variables, then the spec's
/// (the creator's whole environment when `clear_env`, else `-e` on top of the server's).
fn session_env(
    spec: &SessionSpec,
    runtime_dir: &std::path::Path,
) -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = vec![
        ("TERM".into(), "xterm-256color".into()),
        ("COLORTERM".into(), "truecolor".into()),
    ];
    // Programs talk to linger's terminal, not the one the creator sat at: variables naming
    // that one (and TMUX, which makes Claude Code lower its colours) are never passed on.
    env.extend(
        spec.env
            .iter()
            .filter(|(k, _)| !OUTER_TERMINAL_VARS.contains(&k.as_str()))
            .map(|(k, v)| (k.into(), v.into())),
    );
    env.push(("TERM_PROGRAM".into(), "linger".into()));
    env.push((
        "TERM_PROGRAM_VERSION".into(),
        env!("CARGO_PKG_VERSION").into(),
    ));
    env.push(("LINGER_SESSION".into(), spec.name.clone().into()));
    env.push(("LINGER_DIR".into(), runtime_dir.as_os_str().to_owned()));
    env
}

/// Reads what the pty has, up to one batch, into the reused buffer.
fn read_batch(
    mut guard: tokio::io::unix::AsyncFdReadyGuard<'_, OwnedFd>,
    buf: &mut BytesMut,
) -> Event {
    let read = |buf: &mut BytesMut, limit| {
        match guard.try_io(|fd| read_once(fd.get_ref(), buf, limit)) {
            Ok(read) => read,
            // Nothing there after all: `try_io` cleared the readiness.
            Err(_would_block) => Err(std::io::ErrorKind::WouldBlock.into()),
        }
    };
    match fill_batch(buf, read, || {}) {
        // Linux reports hang-up as EIO: the output is over.
        (0, Some(e)) if e.kind() != std::io::ErrorKind::WouldBlock => Event::OutputEnded,
        (0, _) => Event::Wrote,
        _ => Event::Output(buf.split().freeze()),
    }
}

/// Reads one batch into `buf`: until it is full, a read comes up short or `read` fails, with
/// `after_full_read` run after each read that was not short. Returns the bytes read and the
/// error that ended the batch, if one did.
fn fill_batch(
    buf: &mut BytesMut,
    mut read: impl FnMut(&mut BytesMut, usize) -> std::io::Result<usize>,
    mut after_full_read: impl FnMut(),
) -> (usize, Option<std::io::Error>) {
    // Reclaims the previous batch's allocation once every client has written it.
    buf.reserve(READ_BATCH);
    let mut filled = 0;
    while !batch_full(filled) {
        match read(buf, READ_BATCH - filled) {
            Ok(n) => {
                filled += n;
                if n < SHORT_READ {
                    // The pty is likely empty, and a read that finds it so waits for the tty's
                    // flush worker before saying so: keep the readiness and make that read
                    // next turn, after this output (a keystroke's echo) has been handed on.
                    break;
                }
            }
            Err(e) => return (filled, Some(e)),
        }
        after_full_read();
    }
    (filled, None)
}

/// Gives `bytes` to session `name`'s model; a panic in it is logged (the model rebuilt itself).
fn model_bytes(model: &mut Model, name: &str, bytes: &[u8]) {
    if let Err(panic) = model.process(bytes) {
        log::warn(&format!(
            "session {name}: screen model panicked ({panic}); rebuilt it, the program keeps running"
        ));
    }
}

/// Whether a batch of `filled` bytes takes no more reads: a read smaller than [`SHORT_READ`]
/// would leave the pty's buffer part-read, and the batch ends on a short read anyway.
fn batch_full(filled: usize) -> bool {
    READ_BATCH - filled < SHORT_READ
}

/// One read of at most `limit` bytes from the pty, appended to `buf` (which has room).
fn read_once(fd: &OwnedFd, buf: &mut BytesMut, limit: usize) -> std::io::Result<usize> {
    let spare = buf.spare_capacity_mut();
    let room = spare.len().min(limit);
    // SAFETY: read(2) only writes into the spare capacity; `set_len` below covers only what
    // it reported as written.
    let spare: &mut [u8] =
        unsafe { std::slice::from_raw_parts_mut(spare.as_mut_ptr().cast::<u8>(), room) };
    let n = rustix::io::read(fd, spare)?;
    // SAFETY: the kernel initialised these n bytes.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Hands memory freed by a burst of output (parsed rows, evicted history, drained client
/// queues) back to the system; glibc keeps it otherwise.
///
/// Off the server's one async thread: walking a large heap takes tens of milliseconds, during
/// which no session could read or write. Trims already under way make another one pointless.
pub(super) fn release_freed_memory() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static TRIMMING: AtomicBool = AtomicBool::new(false);
    if TRIMMING.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::task::spawn_blocking(|| {
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only releases free heap pages.
        unsafe {
            libc::malloc_trim(0);
        }
        TRIMMING.store(false, Ordering::Release);
    });
}

/// Makes the event a timer deadline raises.
type RaiseEvent = fn() -> Event;

/// The session's one timer, set to its earliest deadline. It is moved only when that deadline
/// changes: a tokio timer registered anew on every event woke the runtime through its eventfd
/// twice per keystroke.
struct Timer {
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    armed: Option<Instant>,
}

impl Timer {
    fn new() -> Timer {
        Timer {
            sleep: Box::pin(sleep_until(tokio::time::Instant::now())),
            armed: None,
        }
    }

    fn arm(&mut self, at: Option<Instant>) {
        if at != self.armed {
            if let Some(at) = at {
                self.sleep.as_mut().reset(at.into());
            }
            self.armed = at;
        }
    }

    /// Cancellation-safe: the timer lives in the session, not in the select.
    fn wait(&mut self) -> &mut std::pin::Pin<Box<tokio::time::Sleep>> {
        &mut self.sleep
    }
}

/// Bytes written to the terminal that the app has not read yet, from the slave side.
fn unread_input(master: &AsyncFd<OwnedFd>) -> Option<usize> {
    let path = rustix::pty::ptsname(master.get_ref(), Vec::new()).ok()?;
    let slave = rustix::fs::open(
        path.as_c_str(),
        rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::NOCTTY
            | rustix::fs::OFlags::NONBLOCK
            | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    rustix::io::ioctl_fionread(&slave).ok().map(|n| n as usize)
}
