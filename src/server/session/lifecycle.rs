//! How a session's program ends: signals from `kill` and shutdown with their escalation, the
//! exit, telling clients and waiters, saving the final state, and leaving the registry.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Earlier, Session, unix_millis};
use crate::log;
use crate::protocol::{Response, SessionSpec, SessionState};
use crate::state::SessionRecord;

/// After SIGTERM (or another signal) from `kill`, how long before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(2);
/// After the child exits, how long output may pause before the rest is given up on (a
/// grandchild may hold the terminal open, so EOF may never come); any output restarts it.
pub(super) const EXIT_DRAIN: Duration = Duration::from_millis(500);

/// The record a new (or revived) session starts with.
pub fn new_record(spec: &SessionSpec, pid: u32, earlier: Option<&Earlier>) -> SessionRecord {
    let now = unix_millis();
    SessionRecord {
        name: spec.name.clone(),
        command: spec.command.clone(),
        cwd: spec.cwd.clone(),
        env: spec.env.clone(),
        created_at: earlier.map_or(now, |e| e.created_at),
        state: "running".into(),
        pid,
        exit_code: None,
        signal: None,
        resume_command: spec
            .resume_command
            .clone()
            .or_else(|| crate::state::preset_resume_command(&spec.command)),
        notes: earlier.map(|e| e.notes.clone()).unwrap_or_default(),
        profile: earlier.and_then(|e| e.profile.clone()),
        queue: earlier.map(|e| e.queue.clone()).unwrap_or_default(),
        updated_at: now,
        scrollback: spec.scrollback,
        log_limit: if spec.log_limit == 0 {
            crate::state::DEFAULT_LOG_LIMIT
        } else {
            spec.log_limit
        },
        clear_env: spec.clear_env,
    }
}

impl Session {
    pub(super) fn should_end(&self) -> bool {
        self.handed_over
            || self.leaving.is_some()
            || (self.ending || !self.kill_replies.is_empty())
                && !self.child_running
                && self.exit_deadline.is_none()
                && self.kill_deadline.is_none()
    }

    /// `kill`: signal the program's group; unless that was SIGKILL, SIGKILL the whole group
    /// after the grace, even if the group's leader went first.
    pub(super) fn kill(&mut self, signal: Option<i32>, reply: oneshot::Sender<Response>) {
        self.kill_replies.push(reply);
        if self.child_running || self.group_alive() {
            let sig = signal.unwrap_or(libc::SIGTERM);
            self.signal_group(sig);
            if sig != libc::SIGKILL {
                self.kill_deadline = Some(Instant::now() + KILL_GRACE);
            }
        }
    }

    /// `stop`: like `kill`, but the session stays (ended, with its output); the reply comes
    /// once the program has ended.
    pub(super) fn stop(&mut self, signal: Option<i32>, reply: oneshot::Sender<Response>) {
        if self.state != SessionState::Running {
            let _ = reply.send(Response::Error(format!(
                "session {} is not running ({})",
                self.name,
                self.state.label()
            )));
            return;
        }
        let sig = signal.unwrap_or(libc::SIGTERM);
        self.signal_group(sig);
        if sig != libc::SIGKILL {
            self.kill_deadline = Some(Instant::now() + KILL_GRACE);
        }
        self.waiters.add_exit(reply);
    }

    /// Server shutdown: hang up on the program like a closing terminal, then SIGKILL.
    pub(super) fn shut_down(&mut self) {
        self.ending = true;
        if self.child_running {
            self.signal_group(libc::SIGHUP);
            self.signal_group(libc::SIGCONT);
            self.kill_deadline = Some(Instant::now() + KILL_GRACE);
        }
    }

    pub(super) fn signal_group(&self, sig: i32) {
        if self.pid > 0 {
            // SAFETY: plain kill(2) on the child's process group (it is a session leader), or
            // on the child itself when that group does not exist yet: `new` answers before the
            // child's `setsid`, and a signal sent then waits, blocked, until its exec.
            unsafe {
                if libc::kill(-(self.pid as i32), sig) != 0
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
                {
                    libc::kill(self.pid as i32, sig);
                }
            }
        }
    }

    /// Whether any process of the program's group is left.
    fn group_alive(&self) -> bool {
        // SAFETY: signal 0 only checks that the group exists.
        self.pid > 0 && unsafe { libc::kill(-(self.pid as i32), 0) } == 0
    }

    pub(super) fn on_child_exit(&mut self, status: std::io::Result<std::process::ExitStatus>) {
        use std::os::unix::process::ExitStatusExt;
        self.child_running = false;
        // The leader is gone; its group may not be. Keep the escalation for what is left.
        if self.kill_deadline.is_some() && !self.group_alive() {
            self.kill_deadline = None;
        }
        self.state = match status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(code), _) => SessionState::Exited(code),
                (None, Some(sig)) => SessionState::Killed(sig),
                _ => SessionState::Exited(-1),
            },
            Err(_) => SessionState::Exited(-1),
        };
        if self.output_open {
            self.exit_deadline = Some(Instant::now() + EXIT_DRAIN);
        } else {
            self.finish();
        }
    }

    pub(super) fn exit_message(&self) -> String {
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
    pub(super) fn finish(&mut self) {
        self.exit_deadline = None;
        self.release_frame_waiters();
        if let Some(keeper) = &self.keeper {
            keeper.release(self.pid);
        }
        log::info(&format!(
            "session {} ended: {}",
            self.name,
            self.state.label()
        ));
        self.save_ended_state();
        let message = self.exit_message();
        let (kind, word) = match self.state {
            SessionState::Killed(_) => ("killed", "killed"),
            _ => ("exited", "exited"),
        };
        crate::server::events::emit(&self.name, kind, Some(word), None, Some(&message));
        let model = &self.model;
        self.clients
            .end_all(&message, || bytes::Bytes::from(model.replay(false)));
        let not_running = format!(
            "session {} is not running ({})",
            self.name,
            self.state.label()
        );
        self.input.fail_all(&not_running);
        let text_error = format!(
            "session {} ended ({}) before the text appeared",
            self.name,
            self.state.label()
        );
        self.waiters
            .on_end(&message, self.state.exit_status(), &text_error);
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
        let record = self.record.clone();
        self.persist.write_record(&record);
        self.persist.flush(&mut self.model, true);
    }

    /// `revive`: an ended session hands over its record and all its output, then ends.
    pub(super) fn take_for_revive(
        &mut self,
        reply: oneshot::Sender<Result<(SessionRecord, Vec<String>), String>>,
    ) {
        if self.state == SessionState::Running {
            let _ = reply.send(Err(format!(
                "session '{}' is running; nothing to revive",
                self.name
            )));
            return;
        }
        self.persist.flush(&mut self.model, true);
        let mut lines: Vec<String> = self
            .model
            .history()
            .since(0)
            .map(|(_, l)| l.to_string())
            .collect();
        lines.extend(crate::server::transcript::without_trailing_blanks(
            self.model.screen_lines(true),
        ));
        // The revive reads the files: answer once they are written.
        let written = self.persist.written();
        let record = self.record.clone();
        tokio::spawn(async move {
            if let Some(written) = written {
                let _ = written.await;
            }
            let _ = reply.send(Ok((record, lines)));
        });
        self.handed_over = true;
    }

    /// After the loop: save or delete what is on disk, leave the registry, answer `kill`.
    pub(super) async fn end(mut self) {
        if self.leaving.is_some() {
            self.deliver_typed_before_leaving();
        }
        let mut answer = Response::Ok;
        if self.handed_over {
            // The revived session owns the files now.
        } else if self.kill_replies.is_empty() {
            self.persist.flush(&mut self.model, true);
        } else {
            answer = self.persist.remove().await;
        }
        self.registry.remove(&self.name, self.pid);
        for reply in self.kill_replies.drain(..) {
            let _ = reply.send(answer.clone());
        }
        log::info(&format!("session {} forgotten", self.name));
        // What the session held (its model, history, queues) is freed when it is dropped;
        // hand that to the system now rather than at some other session's next trim.
        drop(self);
        schedule_trim();
    }

    /// An upgrade hands the program on: keys its clients typed before their attachments ended
    /// (queued here or still on their way in commands) go to the program now. The new server
    /// knows nothing of them, and the clients sent them already. As much as the pty takes
    /// without waiting: a program that does not read would not have had them either.
    fn deliver_typed_before_leaving(&mut self) {
        while let Ok(cmd) = self.rx.try_recv() {
            if let crate::server::commands::SessionCmd::Input { .. } = cmd {
                self.on_command(cmd);
            }
        }
        while let Some(len) = self.input.next_write().map(<[u8]>::len) {
            self.write_input();
            if self.input.next_write().map(<[u8]>::len) == Some(len) {
                break;
            }
        }
    }
}

/// Returns freed memory to the system shortly after sessions end: once for a whole batch of
/// ends (killing 1000 sessions trims once, not 1000 times).
fn schedule_trim() {
    use std::sync::atomic::{AtomicBool, Ordering};
    static SCHEDULED: AtomicBool = AtomicBool::new(false);
    if SCHEDULED.swap(true, Ordering::AcqRel) {
        return;
    }
    tokio::spawn(async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        SCHEDULED.store(false, Ordering::Release);
        super::release_freed_memory();
    });
}
