//! A session without a process: lost when its server died, or ended before this server
//! started. It serves its saved record, output and screen from disk until revived or killed.

use std::ops::ControlFlow;
use std::path::PathBuf;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::Registry;
use super::commands::{ClientLink, SessionCmd};
use super::outbox::{Control, Outbox};
use super::transcript::{
    logical_lines, notes_block, select_history, strip_sgr, without_trailing_blanks,
};
use crate::protocol::{Capture, Response, SessionInfo, SessionState, WaitCondition};
use crate::state::SessionRecord;

/// Where `revive` receives a session's record and earlier lines.
type RevivedReply = oneshot::Sender<Result<(SessionRecord, Vec<String>), String>>;

pub struct Dormant {
    dir: PathBuf,
    record: SessionRecord,
    registry: Registry,
    rx: mpsc::Receiver<SessionCmd>,
    last_seen: u64,
    /// Why its record could not be read; `record` then holds only the name.
    broken: Option<String>,
}

impl Dormant {
    /// `last_seen`: when its files were last written ([`crate::state::last_written`], read by
    /// the caller off the async workers).
    pub fn new(
        dir: PathBuf,
        record: SessionRecord,
        last_seen: u64,
        registry: Registry,
        rx: mpsc::Receiver<SessionCmd>,
    ) -> Dormant {
        Dormant {
            dir,
            record,
            registry,
            rx,
            last_seen,
            broken: None,
        }
    }

    /// A session whose record is unreadable: listed as `broken` with the reason, so it is
    /// neither lost silently nor mixed into a new session of the same name.
    pub fn broken(
        dir: PathBuf,
        name: String,
        reason: String,
        last_seen: u64,
        registry: Registry,
        rx: mpsc::Receiver<SessionCmd>,
    ) -> Dormant {
        let record = SessionRecord {
            name,
            ..SessionRecord::default()
        };
        Dormant {
            broken: Some(reason),
            ..Dormant::new(dir, record, last_seen, registry, rx)
        }
    }

    fn state(&self) -> SessionState {
        if self.broken.is_some() {
            return SessionState::Broken;
        }
        match (
            self.record.state.as_str(),
            self.record.exit_code,
            self.record.signal,
        ) {
            ("exited", Some(code), _) => SessionState::Exited(code),
            ("killed", _, Some(sig)) => SessionState::Killed(sig),
            _ => SessionState::Lost,
        }
    }

    fn not_running(&self) -> String {
        format!(
            "[{} is not running — linger revive {}]",
            self.record.name, self.record.name
        )
    }

    pub async fn run(mut self) {
        while let Some(cmd) = self.rx.recv().await {
            if self.on_command(cmd).await.is_break() {
                return;
            }
        }
    }

    /// Answers one command; `Break` when the session is gone from this server (killed,
    /// forgotten, handed to a revived session, or the server is stopping).
    async fn on_command(&mut self, cmd: SessionCmd) -> ControlFlow<()> {
        match cmd {
            SessionCmd::Attach { reply, history, .. } => self.attach(reply, history).await,
            SessionCmd::Info(reply) => {
                let _ = reply.send(self.info());
            }
            SessionCmd::Capture {
                history,
                from_line,
                ansi,
                reply,
            } => {
                let capture = self.capture(history, from_line, ansi).await;
                let _ = reply.send(Response::Capture(capture));
            }
            SessionCmd::Send(super::commands::SendText { reply, .. })
            | SessionCmd::SendKeys { reply, .. }
            | SessionCmd::Status { reply, .. }
            | SessionCmd::Stop { reply, .. } => {
                let _ = reply.send(Response::Error(format!(
                    "session {} is not running ({}); revive it with `linger revive {}`",
                    self.record.name,
                    self.state().label(),
                    self.record.name
                )));
            }
            SessionCmd::Wait { condition, reply } => {
                let _ = reply.send(self.wait(condition));
            }
            SessionCmd::Note { text, reply } => {
                let _ = reply.send(self.note(text).await);
            }
            SessionCmd::Queue { op, reply } => {
                let _ = reply.send(self.queue(op).await);
            }
            SessionCmd::Rename { new_name, reply } => {
                let _ = reply.send(self.rename(new_name));
            }
            SessionCmd::Kill { reply, .. } => {
                let response = match self.forget().await {
                    Ok(()) => Response::Ok,
                    Err(e) => Response::Error(e),
                };
                let _ = reply.send(response);
                return ControlFlow::Break(());
            }
            SessionCmd::ForgetIfLost { reply } => {
                let lost = self.state() == SessionState::Lost;
                if lost && let Err(e) = self.forget().await {
                    crate::log::warn(&e);
                }
                let _ = reply.send(lost);
                if lost {
                    return ControlFlow::Break(());
                }
            }
            SessionCmd::TakeForRevive { reply } => return self.take_for_revive(reply).await,
            SessionCmd::Shutdown | SessionCmd::HandOver => {
                // The server waits for every session to leave before it exits.
                self.registry.remove(&self.record.name, 0);
                return ControlFlow::Break(());
            }
            SessionCmd::Input { .. }
            | SessionCmd::Resize { .. }
            | SessionCmd::Leave { .. }
            | SessionCmd::Resync { .. }
            | SessionCmd::Refresh { .. }
            | SessionCmd::Profile { .. }
            | SessionCmd::Focus { .. }
            | SessionCmd::Detach { .. }
            | SessionCmd::DetachAll => {}
        }
        ControlFlow::Continue(())
    }

    fn wait(&self, condition: WaitCondition) -> Response {
        match condition {
            WaitCondition::Exit | WaitCondition::Idle { .. } => Response::WaitDone {
                line: self.not_running(),
                exit_code: self
                    .record
                    .exit_code
                    .or(self.record.signal.map(|s| 128 + s)),
            },
            WaitCondition::Text { .. } | WaitCondition::State(_) => {
                Response::Error(format!("session {} is not running", self.record.name))
            }
        }
    }

    /// Sets the notes (written on a blocking thread) when `text` is given; answers with them.
    async fn note(&mut self, text: Option<String>) -> Response {
        if self.broken.is_some() {
            return Response::Error(format!(
                "session {} is broken; `linger kill {}` forgets it",
                self.record.name, self.record.name
            ));
        }
        if let Some(text) = text {
            let mut record = self.record.clone();
            record.notes = text;
            if let Err(e) = self.save_record(record).await {
                return Response::Error(format!("cannot save the notes: {e}"));
            }
        }
        Response::Notes(self.record.notes.clone())
    }

    /// `linger queue`: the queue waits in the record for `revive`; changes are written on a
    /// blocking thread before the answer.
    async fn queue(&mut self, op: crate::protocol::QueueOp) -> Response {
        use crate::protocol::QueueOp;
        if self.broken.is_some() {
            return Response::Error(format!(
                "session {} is broken; `linger kill {}` forgets it",
                self.record.name, self.record.name
            ));
        }
        let mut tasks = super::tasks::Tasks::new(self.record.queue.clone());
        let answer = match op {
            QueueOp::List => return Response::Queue(tasks.list()),
            QueueOp::Add(text) => {
                let message = super::tasks::summary(&text);
                if let Err(e) = tasks.add(text) {
                    return Response::Error(e);
                }
                super::events::emit(&self.record.name, "queued", None, None, Some(&message));
                tasks.list()
            }
            QueueOp::Clear => tasks.clear(),
        };
        let mut record = self.record.clone();
        record.queue = tasks.list();
        if let Err(e) = self.save_record(record).await {
            return Response::Error(format!("cannot save the queue: {e}"));
        }
        Response::Queue(answer)
    }

    /// Writes `record` (on a blocking thread) and, once it is on disk, makes it the session's.
    async fn save_record(&mut self, record: SessionRecord) -> std::io::Result<()> {
        let dir = self.dir.clone();
        let written = tokio::task::spawn_blocking(move || {
            crate::state::write_record(&dir, &record).map(|()| record)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)?;
        self.record = written;
        Ok(())
    }

    /// Hands the record and saved output to `revive`; a broken session stays as it is.
    async fn take_for_revive(&mut self, reply: RevivedReply) -> ControlFlow<()> {
        if let Some(reason) = &self.broken {
            let name = &self.record.name;
            let _ = reply.send(Err(format!(
                "cannot revive '{name}': its saved record is broken ({reason}); \
                 `linger kill {name}` forgets it"
            )));
            return ControlFlow::Continue(());
        }
        let (mut lines, screen) = self.read_output().await;
        lines.extend(without_trailing_blanks(screen));
        self.registry.remove(&self.record.name, 0);
        let _ = reply.send(Ok((self.record.clone(), lines)));
        ControlFlow::Break(())
    }

    /// Deletes the session's files and unlists it. When the files cannot be deleted it is
    /// unlisted all the same (as asked), and the error says it will be back after a restart.
    async fn forget(&mut self) -> Result<(), String> {
        self.registry.remove(&self.record.name, 0);
        let (name, dir) = (self.record.name.clone(), self.dir.clone());
        tokio::task::spawn_blocking(move || crate::state::remove_session_dir(&name, &dir))
            .await
            .map_err(|e| format!("cannot delete the session's files: {e}"))?
    }

    fn rename(&mut self, new_name: String) -> Response {
        let old = self.record.name.clone();
        match super::rename::rename_session(&self.registry, &old, &new_name, 0, Some(&self.dir)) {
            Ok(dir) => {
                if let Some(dir) = dir {
                    self.dir = dir;
                }
                self.record.name = new_name;
                if self.broken.is_none()
                    && let Err(e) = crate::state::write_record(&self.dir, &self.record)
                {
                    crate::log::warn(&format!("session {old} renamed, but its record not: {e}"));
                }
                Response::Ok
            }
            Err(e) => Response::Error(e),
        }
    }

    fn info(&self) -> SessionInfo {
        SessionInfo {
            name: self.record.name.clone(),
            state: self.state(),
            pid: self.record.pid,
            command: self.record.command.clone(),
            cwd: self.record.cwd.clone(),
            clients: 0,
            created_at: self.record.created_at,
            last_output_at: self.last_seen,
            rows: 0,
            cols: 0,
            notes: self.record.notes.clone(),
            resume_command: self.record.resume_command.clone(),
            persist_error: self.broken.clone(),
            foreground: None,
            agent: None,
            queue: self.record.queue.len() as u32,
        }
    }

    /// The saved output, read on a blocking thread (it may be large, and on a slow disk).
    async fn read_output(&self) -> (Vec<String>, Vec<String>) {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || crate::state::read_output(&dir))
            .await
            .unwrap_or_default()
    }

    /// A read-only replay of what was saved, then the notes and how to revive.
    async fn attach(&self, reply: oneshot::Sender<ClientLink>, lines: usize) {
        let (history, screen) = self.read_output().await;
        let newest = &history[history.len().saturating_sub(lines)..];
        let mut out = String::from("\x1b[!p\x1b[m");
        for line in newest.iter().chain(screen.iter()) {
            out.push_str(line);
            out.push_str("\x1b[m\r\n");
        }
        if !self.record.notes.is_empty() {
            out.push_str(&notes_block(&self.record.notes));
        }
        let outbox = Outbox::default();
        outbox.push_fresh(Bytes::from(out));
        // The screen is what was just queued: nothing of it can have been dropped.
        outbox.end(Control::Exited {
            message: self.not_running(),
            screen: Bytes::new(),
        });
        let _ = reply.send(ClientLink {
            outbox: std::sync::Arc::new(outbox),
            id: 0,
        });
    }

    async fn capture(&self, history: Option<usize>, from_line: Option<u64>, ansi: bool) -> Capture {
        let (lines, screen) = self.read_output().await;
        let first_screen_line = lines.len() as u64;
        let numbered = lines
            .iter()
            .enumerate()
            .map(|(i, l)| (i as u64, l.as_str()));
        let history = select_history(numbered, first_screen_line, history, from_line, ansi);
        let screen: Vec<String> = screen
            .iter()
            .map(|l| {
                if ansi {
                    l.clone()
                } else {
                    strip_sgr(l).trim_end().to_string()
                }
            })
            .collect();
        // Saved rows carry no wrap flags: each is a line of its own.
        let (mut numbered, cursor_line) =
            logical_lines(&screen, &[], u16::MAX, first_screen_line, ansi);
        let next_line = numbered.last().map_or(first_screen_line, |l| l.line + 1);
        numbered.retain(|l| l.line >= from_line.unwrap_or(0));
        Capture {
            name: self.record.name.clone(),
            rows: screen.len() as u16,
            cols: 0,
            cursor_row: 0,
            cursor_col: 0,
            cursor_visible: false,
            title: String::new(),
            alternate_screen: false,
            history,
            screen,
            next_line,
            lines: numbered,
            cursor_line: cursor_line.max(next_line),
            running: false,
        }
    }
}
