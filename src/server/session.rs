//! One session actor: owns the pty, the child, the model and the attached clients. Output is
//! forwarded to clients first, then fed to the model; nothing a client does can block it.

use std::collections::{HashMap, VecDeque};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot};
use tokio::time::sleep_until;

use crate::model::Model;
use crate::protocol::{
    Capture, CaptureLine, Response, SessionInfo, SessionSpec, SessionState, WaitCondition,
};
use crate::query_filter::QueryFilter;
use crate::server::Registry;
use crate::state::SessionRecord;

/// Output chunks (each at most one read batch) a client may have queued before it counts as
/// lagging and is resynced: at most 4 MiB per client.
pub const CLIENT_QUEUE: usize = 64;
/// Quiet time after output before freed memory is returned to the system: once per burst.
const TRIM_AFTER_OUTPUT: Duration = Duration::from_secs(1);
/// After SIGTERM (or another signal) from `kill`, how long before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// After the child exits, how long to wait for the rest of its output (EOF on the master).
const EXIT_DRAIN: Duration = Duration::from_millis(500);
/// Unwritten input kept for a child that does not read; beyond this, input is dropped.
const MAX_PENDING_INPUT: usize = 1 << 20;
/// Bytes read from the pty before forwarding, to batch small reads under load.
const READ_BATCH: usize = 64 * 1024;
/// How often `send --enter` checks that the app has read the text before sending Enter.
const DELIVERY_POLL: Duration = Duration::from_millis(5);
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(2);

pub type ClientId = u64;

/// What the session tells a client besides output; it is sent once, after queued output.
#[derive(Debug)]
pub enum Control {
    Exited(String),
    Detached,
}

pub struct ClientLink {
    pub output: mpsc::Receiver<Bytes>,
    pub control: oneshot::Receiver<Control>,
    pub lagging: Arc<AtomicBool>,
    pub id: ClientId,
}

pub enum SessionCmd {
    Attach {
        read_only: bool,
        rows: u16,
        cols: u16,
        reply: oneshot::Sender<ClientLink>,
    },
    Input {
        client: ClientId,
        data: Vec<u8>,
    },
    Resize {
        client: ClientId,
        rows: u16,
        cols: u16,
    },
    Leave {
        client: ClientId,
    },
    Resync {
        client: ClientId,
    },
    DetachAll,
    Kill {
        signal: Option<i32>,
        reply: oneshot::Sender<Response>,
    },
    Info(oneshot::Sender<SessionInfo>),
    Send {
        data: Vec<u8>,
        paste: bool,
        enter: bool,
        reply: oneshot::Sender<Response>,
    },
    SendKeys {
        keys: Vec<String>,
        reply: oneshot::Sender<Response>,
    },
    Capture {
        history: Option<usize>,
        from_line: Option<u64>,
        ansi: bool,
        reply: oneshot::Sender<Response>,
    },
    Wait {
        condition: WaitCondition,
        reply: oneshot::Sender<Response>,
    },
    Note {
        text: Option<String>,
        reply: oneshot::Sender<Response>,
    },
    /// For `revive`: an ended session hands over its record and output, then goes away.
    TakeForRevive {
        reply: oneshot::Sender<Result<(SessionRecord, Vec<String>), String>>,
    },
    /// `kill --lost`: forget this session if it is lost; answers whether it was.
    ForgetIfLost {
        reply: oneshot::Sender<bool>,
    },
    /// Server shutdown: end the child like a closing terminal would.
    Shutdown,
}

struct Client {
    output: mpsc::Sender<Bytes>,
    control: Option<oneshot::Sender<Control>>,
    lagging: Arc<AtomicBool>,
    read_only: bool,
    size: (u16, u16),
}

enum Waiter {
    Text {
        regex: regex::Regex,
        from_line: u64,
        reply: oneshot::Sender<Response>,
    },
    Idle {
        idle: Duration,
        reply: oneshot::Sender<Response>,
    },
    Exit {
        reply: oneshot::Sender<Response>,
    },
}

/// Enter queued by `send --enter`, written once the app has read the text.
struct PendingEnter {
    deadline: Instant,
    reply: oneshot::Sender<Response>,
}

pub struct Session {
    name: String,
    spec: SessionSpec,
    master: AsyncFd<OwnedFd>,
    child: tokio::process::Child,
    pid: u32,
    model: Model,
    filter: QueryFilter,
    clients: HashMap<ClientId, Client>,
    next_client: ClientId,
    pending_input: VecDeque<u8>,
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
    waiters: Vec<Waiter>,
    pending_enter: Option<PendingEnter>,
    last_output_at: u64,
    last_output: Instant,
    /// When to return freed memory to the system; set by output, so it fires once it stops.
    trim_at: Option<Instant>,
    registry: Registry,
    rx: mpsc::Receiver<SessionCmd>,
    record: SessionRecord,
    persist: Persist,
}

/// A revived session's past: its earlier output and what its record kept.
pub struct Earlier {
    pub lines: Vec<String>,
    pub notes: String,
    pub created_at: u64,
}

/// How often, at most, output reaches the disk; a SIGKILLed server loses at most this much.
const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// The session's record and output log on disk. Any failure is logged once and reported in
/// `ls --json`; the session carries on in memory.
pub struct Persist {
    dir: Option<std::path::PathBuf>,
    log: Option<crate::state::OutputLog>,
    error: Option<String>,
    flush_at: Option<Instant>,
    screen_dirty: bool,
}

impl Persist {
    fn new(dir: Option<std::path::PathBuf>, record: &SessionRecord) -> Persist {
        let mut persist = Persist {
            dir,
            log: None,
            error: None,
            flush_at: None,
            screen_dirty: false,
        };
        let Some(dir) = persist.dir.clone() else {
            persist.error = Some(crate::state::unsaved_reason());
            return persist;
        };
        let opened = crate::state::write_record(&dir, record)
            .and_then(|()| crate::state::OutputLog::open(&dir, record.log_limit));
        match opened {
            Ok(log) => persist.log = Some(log),
            Err(e) => persist.fail(&record.name, &e),
        }
        persist
    }

    fn fail(&mut self, name: &str, e: &std::io::Error) {
        if self.error.is_none() {
            let dir = self
                .dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            log::warn(&format!(
                "session {name}: cannot save state in {dir} ({e}); keeping it in memory only"
            ));
            self.error = Some(format!("cannot save state in {dir}: {e}"));
        }
        self.log = None;
        self.flush_at = None;
    }

    fn mark_dirty(&mut self) {
        if self.log.is_some() {
            self.screen_dirty = true;
            self.flush_at
                .get_or_insert_with(|| Instant::now() + FLUSH_INTERVAL);
        }
    }

    fn write_record(&mut self, record: &SessionRecord) {
        if self.error.is_some() {
            return;
        }
        if let Some(dir) = self.dir.clone()
            && let Err(e) = crate::state::write_record(&dir, record)
        {
            self.fail(&record.name, &e);
        }
    }

    fn flush(&mut self, name: &str, model: &mut Model) {
        self.flush_at = None;
        let Some(log) = self.log.as_mut() else { return };
        log.push_lines(&model.take_fresh_lines());
        let screen = self.screen_dirty.then(|| model.screen_lines(true));
        self.screen_dirty = false;
        if let Err(e) = log.flush(screen.as_deref()) {
            self.fail(name, &e);
        }
    }

    /// Forgets the session on disk (after `kill`); an error tells `kill` it will be back.
    fn remove(&mut self, name: &str) -> Response {
        self.log = None;
        match self
            .dir
            .take()
            .map(|d| crate::state::remove_session_dir(name, &d))
        {
            Some(Err(e)) => Response::Error(e),
            _ => Response::Ok,
        }
    }
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
    Writable,
    Command(SessionCmd),
    ChildExited(std::io::Result<std::process::ExitStatus>),
    ExitDrained,
    KillEscalation,
    IdleCheck,
    DeliveryCheck,
    Flush,
    Trim,
    CommandsClosed,
}

impl Session {
    /// Spawns the child and returns the actor, ready to `run`.
    pub fn spawn(
        spec: SessionSpec,
        registry: Registry,
        rx: mpsc::Receiver<SessionCmd>,
        runtime_dir: &std::path::Path,
        store: Option<&std::path::Path>,
        earlier: Option<Earlier>,
    ) -> std::io::Result<Session> {
        let mut spec = spec;
        (spec.rows, spec.cols) = crate::protocol::clamp_size(spec.rows, spec.cols);
        let mut env: Vec<(std::ffi::OsString, std::ffi::OsString)> = vec![
            ("TERM".into(), "xterm-256color".into()),
            ("COLORTERM".into(), "truecolor".into()),
        ];
        env.extend(spec.env.iter().map(|(k, v)| (k.into(), v.into())));
        env.push(("LINGER_SESSION".into(), spec.name.clone().into()));
        env.push(("LINGER_DIR".into(), runtime_dir.as_os_str().to_owned()));
        let spawned = crate::pty::spawn(crate::pty::SpawnOptions {
            command: &spec.command,
            cwd: &spec.cwd,
            env,
            env_remove: vec!["TMUX", "TMUX_PANE"],
            rows: spec.rows,
            cols: spec.cols,
        })?;
        let pid = spawned.child.id().unwrap_or(0);
        // SAFETY: the fd is a freshly opened pty master that only this AsyncFd will own.
        let master = unsafe { AsyncFd::register(spawned.master) }.map_err(|e| e.into_parts().1)?;
        let now = unix_millis();
        let mut model = match &earlier {
            Some(e) => {
                Model::with_earlier_lines(spec.rows, spec.cols, spec.scrollback, e.lines.clone())
            }
            None => Model::new(spec.rows, spec.cols, spec.scrollback),
        };
        let resume_command = spec
            .resume_command
            .clone()
            .or_else(|| crate::state::preset_resume_command(&spec.command));
        let record = SessionRecord {
            name: spec.name.clone(),
            command: spec.command.clone(),
            cwd: spec.cwd.clone(),
            env: spec.env.clone(),
            created_at: earlier.as_ref().map_or(now, |e| e.created_at),
            state: "running".into(),
            pid,
            exit_code: None,
            signal: None,
            resume_command,
            notes: earlier
                .as_ref()
                .map(|e| e.notes.clone())
                .unwrap_or_default(),
            updated_at: now,
            scrollback: spec.scrollback,
            log_limit: if spec.log_limit == 0 {
                crate::state::DEFAULT_LOG_LIMIT
            } else {
                spec.log_limit
            },
        };
        let mut persist = Persist::new(
            store.map(|s| crate::state::session_dir(s, &spec.name)),
            &record,
        );
        if persist.log.is_some() {
            model.collect_fresh_lines();
        }
        if earlier.is_some() {
            let when = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            model.push_history_line(format!(
                "\x1b[7m── {} revived at {when} ──\x1b[m",
                spec.name
            ));
            persist.mark_dirty();
        }
        Ok(Session {
            name: spec.name.clone(),
            model,
            record,
            persist,
            spec,
            master,
            child: spawned.child,
            pid,
            filter: QueryFilter::default(),
            clients: HashMap::new(),
            next_client: 1,
            pending_input: VecDeque::new(),
            state: SessionState::Running,
            child_running: true,
            output_open: true,
            exit_deadline: None,
            kill_deadline: None,
            kill_replies: Vec::new(),
            ending: false,
            handed_over: false,
            waiters: Vec::new(),
            pending_enter: None,
            last_output_at: now,
            last_output: Instant::now(),
            trim_at: None,
            registry,
            rx,
        })
    }

    pub async fn run(mut self) {
        log::info(&format!("session {} started (pid {})", self.name, self.pid));
        loop {
            let event = self.next_event().await;
            match event {
                Event::Output(chunk) => {
                    self.on_output(chunk);
                    // A flooding program keeps the pty always readable, so this task would
                    // run on and on; tasks it woke (a wait's reply, a client writer) sit in
                    // this worker's LIFO slot, which other workers cannot take. Let them run.
                    tokio::task::yield_now().await;
                }
                Event::OutputEnded => {
                    self.output_open = false;
                    let rest = self.filter.flush();
                    if !rest.is_empty() {
                        self.forward(rest);
                    }
                    if !self.child_running {
                        self.finish();
                    }
                }
                Event::Writable => {}
                Event::Command(cmd) => self.on_command(cmd),
                Event::ChildExited(status) => self.on_child_exit(status),
                Event::ExitDrained => self.finish(),
                Event::KillEscalation => {
                    self.kill_deadline = None;
                    self.signal_group(libc::SIGKILL);
                }
                Event::IdleCheck => self.check_idle_waiters(),
                Event::DeliveryCheck => self.check_delivery(),
                Event::Flush => self.persist.flush(&self.name, &mut self.model),
                Event::Trim => {
                    self.trim_at = None;
                    release_freed_memory();
                }
                Event::CommandsClosed => return,
            }
            if self.should_end() {
                break;
            }
        }
        let mut answer = Response::Ok;
        if self.handed_over {
            // The revived session owns the files now.
        } else if self.kill_replies.is_empty() {
            self.persist.flush(&self.name, &mut self.model);
        } else {
            answer = self.persist.remove(&self.name);
        }
        self.registry.remove(&self.name, self.pid);
        for reply in self.kill_replies.drain(..) {
            let _ = reply.send(answer.clone());
        }
        log::info(&format!("session {} forgotten", self.name));
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn should_end(&self) -> bool {
        self.handed_over
            || (self.ending || !self.kill_replies.is_empty())
                && !self.child_running
                && self.exit_deadline.is_none()
    }

    async fn next_event(&mut self) -> Event {
        let idle_deadline = self.idle_deadline();
        let delivery_deadline = self
            .pending_enter
            .as_ref()
            .map(|_| Instant::now() + DELIVERY_POLL);
        tokio::select! {
            guard = self.master.readable(), if self.output_open => {
                let mut guard = match guard {
                    Ok(g) => g,
                    Err(_) => return Event::OutputEnded,
                };
                let mut buf = vec![0u8; READ_BATCH];
                let mut filled = 0;
                loop {
                    match guard.try_io(|fd| rustix::io::read(fd.get_ref(), &mut buf[filled..]).map_err(std::io::Error::from)) {
                        Ok(Ok(0)) => break,
                        Ok(Ok(n)) => {
                            filled += n;
                            if filled == buf.len() {
                                break;
                            }
                        }
                        // Linux reports hang-up as EIO: the output is over.
                        Ok(Err(_)) => {
                            if filled == 0 {
                                return Event::OutputEnded;
                            }
                            break;
                        }
                        Err(_would_block) => break,
                    }
                }
                if filled == 0 {
                    return Event::Writable;
                }
                buf.truncate(filled);
                Event::Output(Bytes::from(buf))
            }
            guard = self.master.writable(), if !self.pending_input.is_empty() && self.output_open => {
                if let Ok(mut guard) = guard {
                    let (front, _) = self.pending_input.as_slices();
                    match guard.try_io(|fd| rustix::io::write(fd.get_ref(), front).map_err(std::io::Error::from)) {
                        Ok(Ok(n)) => { self.pending_input.drain(..n); }
                        Ok(Err(_)) => self.pending_input.clear(),
                        Err(_would_block) => {}
                    }
                }
                Event::Writable
            }
            cmd = self.rx.recv() => match cmd {
                Some(cmd) => Event::Command(cmd),
                None => Event::CommandsClosed,
            },
            status = self.child.wait(), if self.child_running => Event::ChildExited(status),
            _ = sleep_until_opt(self.exit_deadline), if self.exit_deadline.is_some() => Event::ExitDrained,
            _ = sleep_until_opt(self.kill_deadline), if self.kill_deadline.is_some() => Event::KillEscalation,
            _ = sleep_until_opt(idle_deadline), if idle_deadline.is_some() => Event::IdleCheck,
            _ = sleep_until_opt(delivery_deadline), if delivery_deadline.is_some() => Event::DeliveryCheck,
            _ = sleep_until_opt(self.persist.flush_at), if self.persist.flush_at.is_some() => Event::Flush,
            _ = sleep_until_opt(self.trim_at), if self.trim_at.is_some() => Event::Trim,
        }
    }

    fn on_output(&mut self, chunk: Bytes) {
        self.last_output = Instant::now();
        self.last_output_at = unix_millis();
        let forwarded = self.filter.filter(chunk.clone());
        if !forwarded.is_empty() {
            self.forward(forwarded);
        }
        if let Err(panic) = self.model.process(&chunk) {
            log::warn(&format!(
                "session {}: screen model panicked ({panic}); rebuilt it, the program keeps running",
                self.name
            ));
        }
        self.persist.mark_dirty();
        self.trim_at = Some(self.last_output + TRIM_AFTER_OUTPUT);
        let answers = self.model.take_answers();
        if !answers.is_empty() {
            self.queue_input(&answers);
        }
        if !self.waiters.is_empty() {
            self.check_text_waiters();
        }
    }

    /// Hands output to every client's queue without waiting; a full queue marks the client as
    /// lagging, and it is resynced from the model once it has drained.
    fn forward(&mut self, data: Bytes) {
        let mut gone = Vec::new();
        for (id, client) in &self.clients {
            if client.lagging.load(Ordering::Acquire) {
                continue;
            }
            match client.output.try_send(data.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    client.lagging.store(true, Ordering::Release);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => gone.push(*id),
            }
        }
        for id in gone {
            self.clients.remove(&id);
        }
    }

    fn queue_input(&mut self, data: &[u8]) {
        if !self.output_open || !self.child_running {
            return;
        }
        if self.pending_input.len() + data.len() > MAX_PENDING_INPUT {
            log::warn(&format!(
                "session {}: program is not reading its input; dropped {} bytes",
                self.name,
                data.len()
            ));
            return;
        }
        self.pending_input.extend(data);
    }

    fn on_command(&mut self, cmd: SessionCmd) {
        match cmd {
            SessionCmd::Attach {
                read_only,
                rows,
                cols,
                reply,
            } => {
                let id = self.next_client;
                self.next_client += 1;
                if !read_only && self.state == SessionState::Running {
                    self.apply_size(rows, cols);
                }
                let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
                let (control_tx, control_rx) = oneshot::channel();
                let lagging = Arc::new(AtomicBool::new(false));
                // Built between two pty reads, so no output is lost or repeated around it.
                let mut replay = self.model.replay(true);
                if !self.record.notes.is_empty() {
                    let notes = super::dormant::notes_block(&self.record.notes);
                    replay.extend_from_slice(notes.as_bytes());
                }
                let _ = tx.try_send(Bytes::from(replay));
                let mut client = Client {
                    output: tx,
                    control: Some(control_tx),
                    lagging: lagging.clone(),
                    read_only,
                    size: (rows, cols),
                };
                if self.state != SessionState::Running
                    && let Some(control) = client.control.take()
                {
                    let _ = control.send(Control::Exited(self.exit_message()));
                }
                let link = ClientLink {
                    output: rx,
                    control: control_rx,
                    lagging,
                    id,
                };
                if reply.send(link).is_ok() {
                    self.clients.insert(id, client);
                }
            }
            SessionCmd::Input { client, data } => {
                let Some(c) = self.clients.get(&client) else {
                    return;
                };
                if c.read_only {
                    return;
                }
                let size = c.size;
                self.apply_size(size.0, size.1);
                self.queue_input(&data);
            }
            SessionCmd::Resize { client, rows, cols } => {
                let Some(c) = self.clients.get_mut(&client) else {
                    return;
                };
                if c.read_only {
                    return;
                }
                c.size = (rows, cols);
                self.apply_size(rows, cols);
            }
            SessionCmd::Leave { client } => {
                self.clients.remove(&client);
            }
            SessionCmd::Resync { client } => {
                let replay = Bytes::from(self.model.replay(false));
                if let Some(c) = self.clients.get(&client)
                    && c.output.try_send(replay).is_ok()
                {
                    c.lagging.store(false, Ordering::Release);
                }
            }
            SessionCmd::DetachAll => {
                for (_, mut client) in self.clients.drain() {
                    if let Some(control) = client.control.take() {
                        let _ = control.send(Control::Detached);
                    }
                }
            }
            SessionCmd::Kill { signal, reply } => {
                self.kill_replies.push(reply);
                if self.child_running {
                    let sig = signal.unwrap_or(libc::SIGTERM);
                    self.signal_group(sig);
                    if sig != libc::SIGKILL {
                        self.kill_deadline = Some(Instant::now() + KILL_GRACE);
                    }
                }
            }
            SessionCmd::Shutdown => {
                self.ending = true;
                if self.child_running {
                    self.signal_group(libc::SIGHUP);
                    self.signal_group(libc::SIGCONT);
                    self.kill_deadline = Some(Instant::now() + KILL_GRACE);
                }
            }
            SessionCmd::Info(reply) => {
                let _ = reply.send(self.info());
            }
            SessionCmd::Send {
                data,
                paste,
                enter,
                reply,
            } => self.send_text(data, paste, enter, reply),
            SessionCmd::SendKeys { keys, reply } => {
                let app_cursor = self.model.application_cursor();
                match crate::keys::encode_all(&keys, app_cursor) {
                    Ok(bytes) => {
                        self.queue_input(&bytes);
                        let _ = reply.send(self.running_or_error());
                    }
                    Err(e) => {
                        let _ = reply.send(Response::Error(e));
                    }
                }
            }
            SessionCmd::Capture {
                history,
                from_line,
                ansi,
                reply,
            } => {
                let _ = reply.send(Response::Capture(self.capture(history, from_line, ansi)));
            }
            SessionCmd::Wait { condition, reply } => self.add_waiter(condition, reply),
            SessionCmd::Note { text, reply } => {
                if let Some(text) = text {
                    self.record.notes = text;
                    self.record.updated_at = unix_millis();
                    let record = self.record.clone();
                    self.persist.write_record(&record);
                }
                let _ = reply.send(Response::Notes(self.record.notes.clone()));
            }
            SessionCmd::TakeForRevive { reply } => {
                if self.state == SessionState::Running {
                    let _ = reply.send(Err(format!(
                        "session '{}' is running; nothing to revive",
                        self.name
                    )));
                    return;
                }
                self.persist.flush(&self.name, &mut self.model);
                let mut lines: Vec<String> = self
                    .model
                    .history()
                    .since(0)
                    .map(|(_, l)| l.to_string())
                    .collect();
                lines.extend(super::dormant::without_trailing_blanks(
                    self.model.screen_lines(true),
                ));
                if reply.send(Ok((self.record.clone(), lines))).is_ok() {
                    self.handed_over = true;
                }
            }
            SessionCmd::ForgetIfLost { reply } => {
                let _ = reply.send(false);
            }
        }
    }

    fn running_or_error(&self) -> Response {
        if self.state == SessionState::Running {
            Response::Ok
        } else {
            Response::Error(format!(
                "session {} is not running ({})",
                self.name,
                self.state.label()
            ))
        }
    }

    fn send_text(
        &mut self,
        data: Vec<u8>,
        paste: bool,
        enter: bool,
        reply: oneshot::Sender<Response>,
    ) {
        if self.state != SessionState::Running {
            let _ = reply.send(self.running_or_error());
            return;
        }
        if paste && self.model.bracketed_paste() {
            // Strip any paste terminator inside the text so it cannot end the paste early.
            let cleaned = strip_paste_end(&data);
            self.queue_input(b"\x1b[200~");
            self.queue_input(&cleaned);
            self.queue_input(b"\x1b[201~");
        } else {
            self.queue_input(&data);
        }
        if enter {
            self.pending_enter = Some(PendingEnter {
                deadline: Instant::now() + DELIVERY_TIMEOUT,
                reply,
            });
        } else {
            let _ = reply.send(Response::Ok);
        }
    }

    /// Sends the queued Enter once the app has read everything before it, so it arrives as its
    /// own read and is never taken as part of a paste.
    fn check_delivery(&mut self) {
        let Some(pending) = &self.pending_enter else {
            return;
        };
        let delivered = self.pending_input.is_empty() && unread_input(&self.master) == Some(0);
        if (delivered || Instant::now() >= pending.deadline)
            && let Some(pending) = self.pending_enter.take()
        {
            self.queue_input(b"\r");
            let _ = pending.reply.send(Response::Ok);
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

    fn signal_group(&self, sig: i32) {
        if self.pid > 0 {
            // SAFETY: plain kill(2) on the child's process group (it is a session leader).
            unsafe {
                libc::kill(-(self.pid as i32), sig);
            }
        }
    }

    fn on_child_exit(&mut self, status: std::io::Result<std::process::ExitStatus>) {
        use std::os::unix::process::ExitStatusExt;
        self.child_running = false;
        self.kill_deadline = None;
        self.state = match status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(code), _) => SessionState::Exited(code),
                (None, Some(sig)) => SessionState::Killed(sig),
                _ => SessionState::Exited(-1),
            },
            Err(_) => SessionState::Exited(-1),
        };
        self.pending_input.clear();
        if self.output_open {
            self.exit_deadline = Some(Instant::now() + EXIT_DRAIN);
        } else {
            self.finish();
        }
    }

    fn exit_message(&self) -> String {
        match &self.state {
            SessionState::Killed(sig) => {
                format!("[{} killed by {}]", self.name, crate::signals::name(*sig))
            }
            SessionState::Exited(code) => format!("[{} exited with {code}]", self.name),
            SessionState::Running | SessionState::Lost | SessionState::Broken => {
                format!("[{} is running]", self.name)
            }
        }
    }

    /// The child is gone and its output read (or the drain timed out): tell everyone.
    fn finish(&mut self) {
        self.exit_deadline = None;
        log::info(&format!(
            "session {} ended: {}",
            self.name,
            self.state.label()
        ));
        self.save_ended_state();
        let message = self.exit_message();
        for client in self.clients.values_mut() {
            if let Some(control) = client.control.take() {
                let _ = control.send(Control::Exited(message.clone()));
            }
        }
        self.clients.clear();
        if let Some(pending) = self.pending_enter.take() {
            let _ = pending.reply.send(self.running_or_error());
        }
        let exit_code = self.state.exit_status();
        for waiter in std::mem::take(&mut self.waiters) {
            match waiter {
                Waiter::Exit { reply } => {
                    let _ = reply.send(Response::WaitDone {
                        line: message.clone(),
                        exit_code,
                    });
                }
                Waiter::Idle { reply, .. } => {
                    let _ = reply.send(Response::WaitDone {
                        line: String::new(),
                        exit_code,
                    });
                }
                Waiter::Text { reply, .. } => {
                    let _ = reply.send(Response::Error(format!(
                        "session {} ended ({}) before the text appeared",
                        self.name,
                        self.state.label()
                    )));
                }
            }
        }
    }

    /// Records how the program ended, with its final output and screen, on disk.
    fn save_ended_state(&mut self) {
        let (state, code, signal) = match self.state {
            SessionState::Killed(sig) => ("killed", None, Some(sig)),
            SessionState::Exited(code) => ("exited", Some(code), None),
            SessionState::Running | SessionState::Lost | SessionState::Broken => {
                ("running", None, None)
            }
        };
        self.record.state = state.into();
        self.record.exit_code = code;
        self.record.signal = signal;
        self.record.updated_at = unix_millis();
        self.persist.mark_dirty();
        self.persist.flush(&self.name, &mut self.model);
        let record = self.record.clone();
        self.persist.write_record(&record);
    }

    fn info(&self) -> SessionInfo {
        let (rows, cols) = self.model.size();
        SessionInfo {
            name: self.name.clone(),
            state: self.state.clone(),
            pid: self.pid,
            command: self.spec.command.clone(),
            cwd: self.spec.cwd.clone(),
            clients: self.clients.len() as u32,
            created_at: self.record.created_at,
            last_output_at: self.last_output_at,
            rows,
            cols,
            notes: self.record.notes.clone(),
            resume_command: self.record.resume_command.clone(),
            persist_error: self.persist.error.clone(),
        }
    }

    fn capture(&self, history: Option<usize>, from_line: Option<u64>, ansi: bool) -> Capture {
        let (rows, cols) = self.model.size();
        let (cursor_row, cursor_col) = self.model.cursor_position();
        let hist = self.model.history();
        let lines = select_history(
            hist.since(hist.first_line()),
            hist.next_line(),
            history,
            from_line,
            ansi,
        );
        Capture {
            name: self.name.clone(),
            rows,
            cols,
            cursor_row,
            cursor_col,
            cursor_visible: self.model.cursor_visible(),
            title: self.model.title().to_string(),
            alternate_screen: self.model.alternate_screen(),
            history: lines,
            screen: self.model.screen_lines(ansi),
            next_line: hist.next_line(),
        }
    }

    fn add_waiter(&mut self, condition: WaitCondition, reply: oneshot::Sender<Response>) {
        if self.state != SessionState::Running
            && let WaitCondition::Exit = condition
        {
            let exit_code = self.state.exit_status();
            let _ = reply.send(Response::WaitDone {
                line: self.exit_message(),
                exit_code,
            });
            return;
        }
        match condition {
            WaitCondition::Exit => self.waiters.push(Waiter::Exit { reply }),
            WaitCondition::Idle { millis } => {
                self.waiters.push(Waiter::Idle {
                    idle: Duration::from_millis(millis),
                    reply,
                });
                self.check_idle_waiters();
            }
            WaitCondition::Text { regex, from_line } => {
                let regex = match regex::Regex::new(&regex) {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = reply.send(Response::Error(format!("invalid regex: {e}")));
                        return;
                    }
                };
                let from_line = from_line.unwrap_or_else(|| self.model.history().next_line());
                self.waiters.push(Waiter::Text {
                    regex,
                    from_line,
                    reply,
                });
                self.check_text_waiters();
                if self.state != SessionState::Running {
                    // Nothing more will be printed: a text not there now never will be.
                    let ended = format!("session {} has ended ({})", self.name, self.state.label());
                    for waiter in std::mem::take(&mut self.waiters) {
                        if let Waiter::Text { reply, .. } = waiter {
                            let _ = reply.send(Response::Error(ended.clone()));
                        }
                    }
                }
            }
        }
    }

    fn check_text_waiters(&mut self) {
        let screen_lines = self.model.screen_lines(false);
        let history = self.model.history();
        let mut remaining = Vec::with_capacity(self.waiters.len());
        for waiter in self.waiters.drain(..) {
            match waiter {
                Waiter::Text {
                    regex,
                    from_line,
                    reply,
                } => {
                    let found = history
                        .since(from_line)
                        .map(|(_, l)| strip_sgr(l))
                        .find(|l| regex.is_match(l))
                        .or_else(|| screen_lines.iter().find(|l| regex.is_match(l)).cloned());
                    match found {
                        Some(line) => {
                            let _ = reply.send(Response::WaitDone {
                                line,
                                exit_code: None,
                            });
                        }
                        None if reply.is_closed() => {}
                        // History lines never change: the next check starts after these.
                        None => remaining.push(Waiter::Text {
                            regex,
                            from_line: from_line.max(history.next_line()),
                            reply,
                        }),
                    }
                }
                other => remaining.push(other),
            }
        }
        self.waiters = remaining;
    }

    fn idle_deadline(&self) -> Option<Instant> {
        self.waiters
            .iter()
            .filter_map(|w| match w {
                Waiter::Idle { idle, .. } => Some(self.last_output + *idle),
                _ => None,
            })
            .min()
    }

    fn check_idle_waiters(&mut self) {
        let quiet_for = self.last_output.elapsed();
        let mut remaining = Vec::with_capacity(self.waiters.len());
        for waiter in self.waiters.drain(..) {
            match waiter {
                Waiter::Idle { idle, reply } if quiet_for >= idle => {
                    let _ = reply.send(Response::WaitDone {
                        line: String::new(),
                        exit_code: None,
                    });
                }
                Waiter::Idle { reply, .. } if reply.is_closed() => {}
                other => remaining.push(other),
            }
        }
        self.waiters = remaining;
    }
}

/// Hands memory freed by a burst of output (parsed rows, evicted history, drained client
/// queues) back to the system; glibc keeps it otherwise.
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => sleep_until(d.into()).await,
        None => std::future::pending().await,
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

fn strip_paste_end(data: &[u8]) -> Vec<u8> {
    const END: &[u8] = b"\x1b[201~";
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(END) {
            i += END.len();
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    out
}

/// The history lines a capture asked for: none, the last `history` lines, or every line from
/// `from_line` on; plain text unless `ansi`. `lines` yields (number, text) in order and
/// `next_line` is the number the next line will get.
pub fn select_history<'a>(
    lines: impl Iterator<Item = (u64, &'a str)>,
    next_line: u64,
    history: Option<usize>,
    from_line: Option<u64>,
    ansi: bool,
) -> Vec<CaptureLine> {
    let start = match (history, from_line) {
        (_, Some(from)) => from,
        (Some(n), None) => next_line.saturating_sub(n.try_into().unwrap_or(u64::MAX)),
        (None, None) => return Vec::new(),
    };
    lines
        .filter(|(line, _)| *line >= start)
        .map(|(line, text)| CaptureLine {
            line,
            text: if ansi {
                format!("{text}\x1b[m")
            } else {
                strip_sgr(text)
            },
        })
        .collect()
}

pub fn strip_sgr(line: &str) -> String {
    crate::model::strip_sgr(line)
}

use crate::log;
