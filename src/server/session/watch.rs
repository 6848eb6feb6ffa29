//! Watching a session's agent: the screen rules looked at when the screen changed, state
//! changes announced once they settle (events `state` and `attention`), and queued prompts
//! handed over when the agent is idle.
//!
//! Wake-ups: only after output (screen rules at most every [`RULES_EVERY`], one settle check
//! [`SETTLE`] after a change, one quiet check [`QUIET_IDLE`] after output stops for programs
//! judged by activity) and when a typist's pause ends with a prompt waiting; none while
//! nothing happens.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::agent::{QUIET_IDLE, kind_of};
use super::{Session, rules, unix_millis};
use crate::protocol::{AgentState, QueueOp, Response, SessionState};
use crate::server::commands::SendText;
use crate::server::tasks::summary;
use crate::server::{events, settings};

/// How long a new state must hold before it is announced: a redraw does not flap it.
pub const SETTLE: Duration = Duration::from_millis(300);
/// Least time between two looks at the screen for the rules.
pub const RULES_EVERY: Duration = Duration::from_millis(200);
/// How long the foreground program's kind is trusted before `/proc` is read again.
const KIND_EVERY: Duration = Duration::from_secs(2);
/// After a person typed into the session, how long queued prompts hold back.
pub const TYPED_QUIET: Duration = Duration::from_secs(4);
/// How long a queued prompt's delivery may wait for the program to read it.
const DELIVER_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Watch {
    /// The event the session's start is (`created` or `revived`), until it is emitted.
    pub opening: Option<&'static str>,
    announced: Option<(AgentState, Option<String>)>,
    /// The state as of the last turn, and since when: a prompt goes only after the agent was
    /// idle for [`SETTLE`], even when a short task never changed the announced state.
    raw: Option<(AgentState, Option<String>)>,
    raw_since: Instant,
    settle_at: Option<Instant>,
    rules_at: Option<Instant>,
    kind: Option<(Option<String>, Instant)>,
    last_typed: Option<Instant>,
    deliver_at: Option<Instant>,
}

impl Watch {
    pub fn new(revived: bool) -> Watch {
        Watch {
            opening: Some(if revived { "revived" } else { "created" }),
            announced: None,
            raw: None,
            raw_since: Instant::now(),
            settle_at: None,
            rules_at: None,
            kind: None,
            last_typed: None,
            deliver_at: None,
        }
    }

    pub fn screen_changed(&mut self) {
        self.rules_at
            .get_or_insert_with(|| Instant::now() + RULES_EVERY);
    }

    pub fn typed(&mut self) {
        self.last_typed = Some(Instant::now());
    }
}

impl Session {
    /// When the watch wants to look again.
    pub(super) fn watch_deadline(&self) -> Option<Instant> {
        let w = &self.watch;
        let quiet_at = (self.agent.activity_based() && self.state == SessionState::Running)
            .then(|| self.last_output + QUIET_IDLE)
            .filter(|at| *at > Instant::now());
        [w.settle_at, w.rules_at, w.deliver_at, quiet_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// After every turn of the loop: a state other than the announced one starts settling.
    pub(super) fn watch_turn(&mut self) {
        if let Some(kind) = self.watch.opening.take() {
            let command = self.spec.command.join(" ");
            events::emit(&self.name, kind, Some("running"), None, Some(&command));
        }
        if self.state != SessionState::Running {
            return;
        }
        let info = self.agent_state(None);
        let now = Some((info.state, info.reason));
        let changed = self.watch.raw != now;
        if changed {
            if info.state != AgentState::Idle {
                // It left idle (if only for a moment): the next idle period may take a prompt.
                self.tasks.new_idle_period();
            }
            self.watch.raw_since = Instant::now();
            self.watch.raw.clone_from(&now);
        }
        if changed || self.watch.announced != now {
            self.watch
                .settle_at
                .get_or_insert_with(|| Instant::now() + SETTLE);
        }
    }

    /// A deadline of the watch passed.
    pub(super) fn on_watch(&mut self) {
        let now = Instant::now();
        let due = |at: &mut Option<Instant>| at.take_if(|t| *t <= now).is_some();
        if due(&mut self.watch.rules_at) {
            self.look_at_screen();
        }
        if due(&mut self.watch.settle_at) {
            self.announce();
        }
        due(&mut self.watch.deliver_at);
        self.deliver_queued();
    }

    /// Which agent runs in the foreground, read from `/proc` at most every [`KIND_EVERY`].
    fn agent_kind(&mut self) -> Option<String> {
        if let Some((kind, at)) = &self.watch.kind
            && at.elapsed() < KIND_EVERY
        {
            return kind.clone();
        }
        let kind = crate::server::foreground::of_terminal(self.master.get_ref())
            .and_then(|f| kind_of(&f.command))
            .or_else(|| kind_of(&self.spec.command));
        self.watch.kind = Some((kind.clone(), Instant::now()));
        kind
    }

    fn look_at_screen(&mut self) {
        if self.state != SessionState::Running {
            return;
        }
        let settings = settings::current();
        let kind = self.agent_kind();
        if !rules::apply_to(kind.as_deref(), &settings) {
            self.agent.set_screen(None);
            return;
        }
        let rows = rules::last_rows(&self.model.screen_lines(false));
        let found = rules::evaluate(kind.as_deref(), &rows, &settings);
        self.agent.set_screen(found);
    }

    /// Emits the state if it changed since the last announcement.
    fn announce(&mut self) {
        if self.state != SessionState::Running {
            return;
        }
        let info = self.agent_state(None);
        let now = (info.state, info.reason);
        if self.watch.announced.as_ref() == Some(&now) {
            return;
        }
        let (state, reason) = (now.0.label(), now.1.as_deref());
        events::emit(&self.name, "state", Some(state), reason, None);
        if now.0 == AgentState::Waiting {
            events::emit(&self.name, "attention", Some(state), reason, reason);
        }
        self.watch.announced = Some(now);
    }

    /// Hands the next queued prompt to the program when its agent is idle, nothing else is
    /// being typed or sent, and no person typed in the last [`TYPED_QUIET`].
    pub(super) fn deliver_queued(&mut self) {
        let idle =
            |s: &Option<(AgentState, Option<String>)>| matches!(s, Some((AgentState::Idle, _)));
        if self.state != SessionState::Running
            || !idle(&self.watch.announced)
            || !idle(&self.watch.raw)
            || !self.tasks.ready()
            || !self.input.is_idle()
        {
            return;
        }
        let settled_at = self.watch.raw_since + SETTLE;
        let free_at = self
            .watch
            .last_typed
            .map_or(settled_at, |t| (t + TYPED_QUIET).max(settled_at));
        if free_at > Instant::now() {
            self.watch.deliver_at = Some(free_at);
            return;
        }
        let Some(text) = self.tasks.take_next() else {
            return;
        };
        let (reply, answer) = oneshot::channel();
        let (tx, chunks) = tokio::sync::mpsc::channel(text.len() / crate::protocol::SEND_CHUNK + 1);
        for chunk in text.as_bytes().chunks(crate::protocol::SEND_CHUNK) {
            let _ = tx.try_send(chunk.to_vec());
        }
        self.input.push_send(SendText {
            chunks,
            len: text.len() as u64,
            paste: true,
            enter: true,
            timeout: DELIVER_TIMEOUT,
            reply,
        });
        let name = self.name.clone();
        tokio::spawn(async move {
            if let Ok(Response::Error(e)) = answer.await {
                crate::log::warn(&format!("session {name}: a queued prompt: {e}"));
            }
        });
        events::emit(
            &self.name,
            "delivered",
            Some("idle"),
            None,
            Some(&summary(&text)),
        );
        self.save_queue();
    }

    fn save_queue(&mut self) {
        self.record.queue = self.tasks.list();
        self.record.updated_at = unix_millis();
        let record = self.record.clone();
        self.persist.write_record(&record);
    }

    /// `linger queue`: adds, lists or clears; changes answer once they are on disk.
    pub(super) fn on_queue(&mut self, op: QueueOp, reply: oneshot::Sender<Response>) {
        let answer = match op {
            QueueOp::List => {
                let _ = reply.send(Response::Queue(self.tasks.list()));
                return;
            }
            QueueOp::Add(text) => {
                let message = summary(&text);
                if let Err(e) = self.tasks.add(text) {
                    let _ = reply.send(Response::Error(e));
                    return;
                }
                events::emit(&self.name, "queued", None, None, Some(&message));
                Response::Queue(self.tasks.list())
            }
            QueueOp::Clear => Response::Queue(self.tasks.clear()),
        };
        self.save_queue();
        self.persist.flush(&mut self.model, true);
        self.deliver_queued();
        let Some(written) = self.persist.written() else {
            let _ = reply.send(answer);
            return;
        };
        let status = self.persist.status();
        tokio::spawn(async move {
            let _ = written.await;
            let answer = match status.and_then(|s| s.error()) {
                Some(e) => Response::Error(format!("the queue is changed but not saved yet: {e}")),
                None => answer,
            };
            let _ = reply.send(answer);
        });
    }
}
