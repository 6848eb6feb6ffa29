//! What a running session answers: attach and input from clients, and the scripting requests
//! (info, send, keys, capture, wait, notes).

use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{Session, unix_millis};
use crate::log;
use crate::protocol::{
    AgentInfo, Capture, CaptureLine, Response, SessionInfo, SessionState, WaitCondition,
};
use crate::server::commands::{ClientLink, SendText, SessionCmd};
use crate::server::outbox::Control;
use crate::server::transcript::{logical_lines, notes_block, select_history, wrapped_rows};

impl Session {
    pub(super) fn on_command(&mut self, cmd: SessionCmd) {
        let Some(cmd) = self.wait_for_frame(cmd) else {
            return;
        };
        match cmd {
            SessionCmd::Attach {
                read_only,
                rows,
                cols,
                profile,
                history,
                reply,
            } => {
                let link = self.attach(read_only, (rows, cols), profile, history);
                if let Err(link) = reply.send(link) {
                    self.client_left(link.id);
                }
            }
            SessionCmd::Input { client, data } => self.on_typed(client, &data),
            SessionCmd::Resize { client, rows, cols } => self.on_resize(client, rows, cols),
            SessionCmd::Leave { client } => self.client_left(client),
            SessionCmd::Focus { client, focused } => self.on_focus(client, focused),
            SessionCmd::Profile { client, profile } => {
                // The client that attached last speaks for the session's terminal.
                if self.clients.set_profile(client, profile.clone()) {
                    self.adopt_profile(&profile);
                }
            }
            SessionCmd::Resync { client } => self.draw_afresh(client, false),
            SessionCmd::Refresh { client } => self.draw_afresh(client, true),
            SessionCmd::Detach { client } => self.client_detached(client),
            SessionCmd::DetachAll => {
                if self.clients.detach_all() {
                    self.set_focus(false);
                }
            }
            SessionCmd::Kill { signal, reply } => self.kill(signal, reply),
            SessionCmd::Shutdown => self.shut_down(),
            SessionCmd::HandOver => self.leaving = Some(self.clients.leave_all()),
            SessionCmd::Info(reply) => {
                let _ = reply.send(self.info());
            }
            SessionCmd::Send(text) => self.send_text(text),
            SessionCmd::SendKeys {
                keys,
                timeout,
                reply,
            } => self.send_keys(&keys, timeout, reply),
            SessionCmd::Capture {
                history,
                from_line,
                ansi,
                reply,
            } => {
                let _ = reply.send(Response::Capture(self.capture(history, from_line, ansi)));
            }
            SessionCmd::Wait { condition, reply } => self.add_waiter(condition, reply),
            SessionCmd::Note { text, reply } => self.note(text, reply),
            SessionCmd::TakeForRevive { reply } => self.take_for_revive(reply),
            SessionCmd::ForgetIfLost { reply } => {
                let _ = reply.send(false);
            }
            SessionCmd::Stop { signal, reply } => self.stop(signal, reply),
            SessionCmd::Rename { new_name, reply } => self.rename(new_name, reply),
            SessionCmd::Status {
                state,
                reason,
                reply,
            } => {
                self.agent.report(state, reason);
                let _ = reply.send(self.running_or_error());
            }
            SessionCmd::Queue { op, reply } => self.on_queue(op, reply),
        }
    }

    /// A client's screen drawn afresh: it caught up after falling behind, or it `asked`
    /// (it dropped what it had not shown).
    fn draw_afresh(&mut self, client: super::super::commands::ClientId, asked: bool) {
        let model = &self.model;
        let screen = || Bytes::from(model.replay(false));
        if asked {
            self.clients.refresh(client, screen);
        } else {
            self.clients.resync(client, screen);
        }
    }

    /// `rename`: the registry, the directory on disk and the record follow the new name. The
    /// registry moves at once (so the name is taken); the files move on the disk writer, and
    /// the answer waits for that. A failed move puts the session back under its old name.
    fn rename(&mut self, new_name: String, reply: oneshot::Sender<Response>) {
        if let Err(e) = crate::paths::validate_session_name(&new_name)
            .and_then(|()| self.registry.rename(&self.name, &new_name, self.pid))
        {
            let _ = reply.send(Response::Error(e));
            return;
        }
        let old_name = std::mem::replace(&mut self.name, new_name.clone());
        self.spec.name.clone_from(&new_name);
        self.record.name.clone_from(&new_name);
        self.persist.set_name(&new_name);
        if let Some(keeper) = &self.keeper {
            keeper.rename(self.pid, &new_name);
        }
        log::info(&format!("session {old_name} renamed to {new_name}"));
        self.persist.flush(&mut self.model, true);
        let moved = self
            .persist
            .dir()
            .map(|d| d.with_file_name(&new_name))
            .and_then(|to| self.persist.move_to(to));
        let record = self.record.clone();
        self.persist.write_record(&record);
        let Some(moved) = moved else {
            let _ = reply.send(Response::Ok);
            return;
        };
        tokio::spawn(async move {
            let answer = match moved.await {
                Ok(Err(e)) => {
                    // The session keeps running under the new name in memory; its files stay
                    // where they were, so say so rather than pretend.
                    log::warn(&format!("session {new_name}: {e}"));
                    Response::Error(format!(
                        "renamed to {new_name}, but its files could not move: {e}"
                    ))
                }
                _ => Response::Ok,
            };
            let _ = reply.send(answer);
        });
    }

    /// Sets the notes and answers once they are on disk: notes are what a user writes to
    /// find again, so `note` succeeds only when they were saved.
    fn note(&mut self, text: Option<String>, reply: oneshot::Sender<Response>) {
        let notes = Response::Notes(text.clone().unwrap_or_else(|| self.record.notes.clone()));
        let Some(text) = text else {
            let _ = reply.send(notes);
            return;
        };
        self.record.notes = text;
        self.record.updated_at = unix_millis();
        let record = self.record.clone();
        self.persist.write_record(&record);
        self.persist.flush(&mut self.model, true);
        let Some(written) = self.persist.written() else {
            let _ = reply.send(notes);
            return;
        };
        let status = self.persist.status();
        tokio::spawn(async move {
            let _ = written.await;
            let answer = match status.and_then(|s| s.error()) {
                Some(e) => Response::Error(format!("the notes are kept but not saved yet: {e}")),
                None => notes,
            };
            let _ = reply.send(answer);
        });
    }

    /// Built between two pty reads, so no output is lost or repeated around it.
    fn attach(
        &mut self,
        read_only: bool,
        (rows, cols): (u16, u16),
        profile: Option<crate::term::Profile>,
        history: usize,
    ) -> ClientLink {
        if !read_only && self.state == SessionState::Running {
            self.apply_size(rows, cols);
            if let Some(profile) = &profile {
                self.adopt_profile(profile);
            }
        }
        let mut replay = self.model.replay_for_attach(history);
        if !self.record.notes.is_empty() {
            replay.extend_from_slice(notes_block(&self.record.notes).as_bytes());
        }
        let link = self
            .clients
            .add(read_only, (rows, cols), Bytes::from(replay), profile);
        if self.state != SessionState::Running {
            // The screen is the replay just queued: nothing of it can have been dropped.
            link.outbox.end(Control::Exited {
                message: self.exit_message(),
                screen: Bytes::new(),
            });
            self.clients.remove(link.id);
        } else if !read_only {
            self.set_focus(true);
        }
        link
    }

    fn on_resize(&mut self, client: super::super::commands::ClientId, rows: u16, cols: u16) {
        let before = self.model.size();
        if self.clients.set_size(client, (rows, cols)) {
            self.apply_size(rows, cols);
        }
        if self.model.size() != before {
            // The terminal rewrapped its screen its own way (and pulled rows back from a
            // scrollback that differs from the history): draw the session's screen over it,
            // between two frames.
            self.clients.request_redraw(client);
            self.on_command(SessionCmd::Resync { client });
        }
    }

    fn on_typed(&mut self, client: super::super::commands::ClientId, data: &[u8]) {
        if let Some(writers) = &self.leaving {
            // Typed before the client's attachment ended; the program is handed on.
            if writers.contains(&client) {
                self.push_typed(data);
            }
            return;
        }
        // Typing makes this client's size the session's.
        let Some((rows, cols)) = self.clients.writer_size(client) else {
            return;
        };
        self.apply_size(rows, cols);
        self.clients.touch(client);
        // ... and its terminal the one the session describes to programs.
        if let Some(profile) = self.clients.profile(client).cloned() {
            self.adopt_profile(&profile);
        }
        self.agent.user_typed();
        self.watch.typed();
        self.push_typed(data);
    }

    fn push_typed(&mut self, data: &[u8]) {
        if self.state == SessionState::Running && !self.input.push_typed(data) {
            log::warn(&format!(
                "session {}: program is not reading its input; dropped {} typed bytes",
                self.name,
                data.len()
            ));
        }
    }

    /// Answers queries as this terminal from now on; remembered in the record, so a revived
    /// session starts with it too.
    /// Answers queries as `profile`'s terminal would, now and after a revive.
    pub(in crate::server) fn adopt_profile(&mut self, profile: &crate::term::Profile) {
        if self.model.profile() == profile {
            return;
        }
        self.model.set_profile(profile.clone());
        self.record.profile = Some(profile.clone());
        let record = self.record.clone();
        self.persist.write_record(&record);
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

    fn send_text(&mut self, text: SendText) {
        if self.state != SessionState::Running {
            let _ = text.reply.send(self.running_or_error());
            return;
        }
        self.input.push_send(text);
    }

    /// Named keys go in line with sends, so a script's keys and texts arrive in its order.
    fn send_keys(&mut self, keys: &[String], timeout: Duration, reply: oneshot::Sender<Response>) {
        if self.state != SessionState::Running {
            let _ = reply.send(self.running_or_error());
            return;
        }
        let bytes = match crate::keys::encode_all(keys, self.model.application_cursor()) {
            Ok(bytes) => bytes,
            Err(e) => {
                let _ = reply.send(Response::Error(e));
                return;
            }
        };
        let (tx, chunks) = tokio::sync::mpsc::channel(1);
        let len = bytes.len() as u64;
        if len > 0 {
            let _ = tx.try_send(bytes);
        }
        self.input.push_send(SendText {
            chunks,
            len,
            paste: false,
            enter: false,
            timeout,
            reply,
        });
    }

    /// The agent's state; with `kind`, also which agent runs (read from `/proc`).
    pub(super) fn agent_state(&mut self, kind: Option<String>) -> AgentInfo {
        self.agent
            .info(kind, self.last_output.elapsed(), unix_millis())
    }

    fn info(&mut self) -> SessionInfo {
        let (rows, cols) = self.model.size();
        let running = self.state == SessionState::Running;
        let foreground = running
            .then(|| crate::server::foreground::of_terminal(self.master.get_ref()))
            .flatten();
        let kind = foreground
            .as_ref()
            .and_then(|f| super::agent::kind_of(&f.command))
            .or_else(|| super::agent::kind_of(&self.spec.command));
        let agent = running.then(|| self.agent_state(kind));
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
            persist_error: self.persist.error(),
            foreground,
            agent,
            queue: self.tasks.len() as u32,
        }
    }

    /// The screen as numbered logical lines, and the number of the cursor's line.
    pub(super) fn numbered_screen(&self, ansi: bool) -> (Vec<CaptureLine>, u64) {
        let (cursor_row, _) = self.model.cursor_position();
        logical_lines(
            &self.model.screen_lines(ansi),
            &wrapped_rows(&self.model),
            cursor_row,
            self.model.history().next_line(),
            ansi,
        )
    }

    fn capture(&self, history: Option<usize>, from_line: Option<u64>, ansi: bool) -> Capture {
        let (rows, cols) = self.model.size();
        let (cursor_row, cursor_col) = self.model.cursor_position();
        let (mut numbered, cursor_line) = self.numbered_screen(ansi);
        let hist = self.model.history();
        let next_line = numbered.last().map_or(hist.next_line(), |l| l.line + 1);
        if let Some(from) = from_line {
            numbered.retain(|l| l.line >= from);
        }
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
            next_line,
            lines: numbered,
            cursor_line,
            running: self.state == SessionState::Running,
        }
    }

    fn add_waiter(&mut self, condition: WaitCondition, reply: oneshot::Sender<Response>) {
        let ended = self.state != SessionState::Running;
        match condition {
            WaitCondition::Exit if ended => {
                let _ = reply.send(Response::WaitDone {
                    line: self.exit_message(),
                    exit_code: self.state.exit_status(),
                });
            }
            WaitCondition::Exit => self.waiters.add_exit(reply),
            WaitCondition::State(_) if ended => {
                let _ = reply.send(Response::Error(format!(
                    "session {} is not running ({})",
                    self.name,
                    self.state.label()
                )));
            }
            WaitCondition::State(wanted) => {
                self.waiters.add_state(wanted, reply);
                let now = self.agent_state(None).state;
                self.waiters.check_state(now);
            }
            WaitCondition::Idle { millis } => {
                self.waiters.add_idle(Duration::from_millis(millis), reply);
                self.waiters.check_idle(self.last_output.elapsed());
            }
            WaitCondition::Text {
                regex,
                from_line,
                new,
            } => {
                let (screen, cursor_line) = self.numbered_screen(false);
                let (from_line, old) = match (from_line, new) {
                    // What is on the screen from the cursor's line on may still change: only
                    // lines that differ from now count.
                    (_, true) => (
                        cursor_line,
                        screen
                            .iter()
                            .filter(|l| l.line >= cursor_line)
                            .cloned()
                            .collect(),
                    ),
                    (Some(n), false) => (n, Vec::new()),
                    (None, false) => (self.model.history().next_line(), Vec::new()),
                };
                if let Err((e, reply)) = self.waiters.add_text(&regex, from_line, old, reply) {
                    let _ = reply.send(Response::Error(e));
                    return;
                }
                self.waiters.check_text(self.model.history(), &screen);
                if ended {
                    // Nothing more will be printed: a text not there now never will be.
                    self.waiters.fail_text(&format!(
                        "session {} has ended ({})",
                        self.name,
                        self.state.label()
                    ));
                }
            }
        }
    }
}
