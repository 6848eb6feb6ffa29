//! A session without a process: lost when its server died, or ended before this server
//! started. It serves its saved record, output and screen from disk until revived or killed.

use std::path::PathBuf;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::Registry;
use super::commands::{ClientLink, SessionCmd};
use super::outbox::{Control, Outbox};
use super::transcript::{notes_block, select_history, strip_sgr, without_trailing_blanks};
use crate::protocol::{Capture, Response, SessionInfo, SessionState, WaitCondition};
use crate::state::SessionRecord;

pub struct Dormant {
    dir: PathBuf,
    record: SessionRecord,
    registry: Registry,
    rx: mpsc::Receiver<SessionCmd>,
    last_seen: u64,
}

impl Dormant {
    pub fn new(
        dir: PathBuf,
        record: SessionRecord,
        registry: Registry,
        rx: mpsc::Receiver<SessionCmd>,
    ) -> Dormant {
        let last_seen = crate::state::last_written(&dir);
        Dormant {
            dir,
            record,
            registry,
            rx,
            last_seen,
        }
    }

    fn state(&self) -> SessionState {
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
            match cmd {
                SessionCmd::Attach { reply, .. } => self.attach(reply),
                SessionCmd::Info(reply) => {
                    let _ = reply.send(self.info());
                }
                SessionCmd::Capture {
                    history,
                    from_line,
                    ansi,
                    reply,
                } => {
                    let _ = reply.send(Response::Capture(self.capture(history, from_line, ansi)));
                }
                SessionCmd::Send(super::commands::SendText { reply, .. })
                | SessionCmd::SendKeys { reply, .. } => {
                    let _ = reply.send(Response::Error(format!(
                        "session {} is not running ({}); revive it with `linger revive {}`",
                        self.record.name,
                        self.state().label(),
                        self.record.name
                    )));
                }
                SessionCmd::Wait { condition, reply } => {
                    let response = match condition {
                        WaitCondition::Exit | WaitCondition::Idle { .. } => Response::WaitDone {
                            line: self.not_running(),
                            exit_code: self
                                .record
                                .exit_code
                                .or(self.record.signal.map(|s| 128 + s)),
                        },
                        WaitCondition::Text { .. } => {
                            Response::Error(format!("session {} is not running", self.record.name))
                        }
                    };
                    let _ = reply.send(response);
                }
                SessionCmd::Note { text, reply } => {
                    if let Some(text) = text {
                        self.record.notes = text;
                        if let Err(e) = crate::state::write_record(&self.dir, &self.record) {
                            let _ =
                                reply.send(Response::Error(format!("cannot save the notes: {e}")));
                            continue;
                        }
                    }
                    let _ = reply.send(Response::Notes(self.record.notes.clone()));
                }
                SessionCmd::Kill { reply, .. } => {
                    self.forget();
                    let _ = reply.send(Response::Ok);
                    return;
                }
                SessionCmd::ForgetIfLost { reply } => {
                    let lost = self.state() == SessionState::Lost;
                    if lost {
                        self.forget();
                    }
                    let _ = reply.send(lost);
                    if lost {
                        return;
                    }
                }
                SessionCmd::TakeForRevive { reply } => {
                    let (mut lines, screen) = crate::state::read_output(&self.dir);
                    lines.extend(without_trailing_blanks(screen));
                    self.registry.remove(&self.record.name, 0);
                    let _ = reply.send(Ok((self.record.clone(), lines)));
                    return;
                }
                SessionCmd::Shutdown => return,
                SessionCmd::Input { .. }
                | SessionCmd::Resize { .. }
                | SessionCmd::Leave { .. }
                | SessionCmd::Resync { .. }
                | SessionCmd::DetachAll => {}
            }
        }
    }

    fn forget(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        self.registry.remove(&self.record.name, 0);
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
            persist_error: None,
        }
    }

    /// A read-only replay of what was saved, then the notes and how to revive.
    fn attach(&self, reply: oneshot::Sender<ClientLink>) {
        let (history, screen) = crate::state::read_output(&self.dir);
        let mut out = String::from("\x1b[!p\x1b[m");
        for line in history.iter().chain(screen.iter()) {
            out.push_str(line);
            out.push_str("\x1b[m\r\n");
        }
        if !self.record.notes.is_empty() {
            out.push_str(&notes_block(&self.record.notes));
        }
        let outbox = Outbox::default();
        outbox.push_screen(Bytes::from(out));
        outbox.end(Control::Exited(self.not_running()));
        let _ = reply.send(ClientLink {
            outbox: std::sync::Arc::new(outbox),
            id: 0,
        });
    }

    fn capture(&self, history: Option<usize>, from_line: Option<u64>, ansi: bool) -> Capture {
        let (lines, screen) = crate::state::read_output(&self.dir);
        let next_line = lines.len() as u64;
        let numbered = lines
            .iter()
            .enumerate()
            .map(|(i, l)| (i as u64, l.as_str()));
        let history = select_history(numbered, next_line, history, from_line, ansi);
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
        }
    }
}
