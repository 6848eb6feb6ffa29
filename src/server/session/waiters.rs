//! `wait` requests parked on a session: for text, for quiet, or for the program's exit.
//!
//! Each waiter belongs to a connection that is still open; a waiter whose client went away is
//! dropped at the next check (and at least whenever another waiter is added), so abandoned
//! waits cannot pile up.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::history::History;
use crate::protocol::{CaptureLine, Response};
use crate::server::transcript::strip_sgr;

enum Waiter {
    Text {
        regex: regex::Regex,
        from_line: u64,
        /// With `--new`: the lines already there when the wait began, which do not count.
        old: Vec<CaptureLine>,
        reply: oneshot::Sender<Response>,
    },
    Idle {
        idle: Duration,
        reply: oneshot::Sender<Response>,
    },
    Exit {
        reply: oneshot::Sender<Response>,
    },
    /// `wait --state`: the agent reaches a state.
    State {
        wanted: crate::protocol::AgentState,
        reply: oneshot::Sender<Response>,
    },
}

impl Waiter {
    fn reply_closed(&self) -> bool {
        match self {
            Waiter::Text { reply, .. }
            | Waiter::Idle { reply, .. }
            | Waiter::Exit { reply }
            | Waiter::State { reply, .. } => reply.is_closed(),
        }
    }
}

#[derive(Default)]
pub struct Waiters {
    parked: Vec<Waiter>,
}

fn done(line: String, exit_code: Option<i32>) -> Response {
    Response::WaitDone { line, exit_code }
}

impl Waiters {
    fn prune(&mut self) {
        self.parked.retain(|w| !w.reply_closed());
    }

    pub fn add_exit(&mut self, reply: oneshot::Sender<Response>) {
        self.prune();
        self.parked.push(Waiter::Exit { reply });
    }

    pub fn add_idle(&mut self, idle: Duration, reply: oneshot::Sender<Response>) {
        self.prune();
        self.parked.push(Waiter::Idle { idle, reply });
    }

    pub fn add_text(
        &mut self,
        regex: &str,
        from_line: u64,
        old: Vec<CaptureLine>,
        reply: oneshot::Sender<Response>,
    ) -> Result<(), (String, oneshot::Sender<Response>)> {
        let regex = match regex::Regex::new(regex) {
            Ok(r) => r,
            Err(e) => return Err((format!("invalid regex: {e}"), reply)),
        };
        self.prune();
        self.parked.push(Waiter::Text {
            regex,
            from_line,
            old,
            reply,
        });
        Ok(())
    }

    /// Answers text waiters whose text is in a line numbered from theirs on, in the history or
    /// on the screen (`screen` holds the screen's numbered logical lines).
    pub fn check_text(&mut self, history: &History, screen: &[CaptureLine]) {
        let mut remaining = Vec::with_capacity(self.parked.len());
        for waiter in self.parked.drain(..) {
            let Waiter::Text {
                regex,
                from_line,
                old,
                reply,
            } = waiter
            else {
                remaining.push(waiter);
                continue;
            };
            let is_old =
                |line: u64, text: &str| old.iter().any(|o| o.line == line && o.text == text);
            let found = history
                .since(from_line)
                .map(|(n, l)| (n, strip_sgr(l)))
                .find(|(n, l)| regex.is_match(l) && !is_old(*n, l))
                .or_else(|| {
                    screen
                        .iter()
                        .filter(|l| l.line >= from_line)
                        .find(|l| regex.is_match(&l.text) && !is_old(l.line, &l.text))
                        .map(|l| (l.line, l.text.clone()))
                })
                .map(|(_, text)| text);
            match found {
                Some(line) => {
                    let _ = reply.send(done(line, None));
                }
                None if reply.is_closed() => {}
                // History lines never change: the next check starts after these.
                None => remaining.push(Waiter::Text {
                    regex,
                    from_line: from_line.max(history.next_line()),
                    old,
                    reply,
                }),
            }
        }
        self.parked = remaining;
    }

    pub fn has_text(&self) -> bool {
        self.parked.iter().any(|w| matches!(w, Waiter::Text { .. }))
    }

    /// When the earliest idle waiter is due, given the last output.
    pub fn idle_deadline(&self, last_output: Instant) -> Option<Instant> {
        self.parked
            .iter()
            .filter_map(|w| match w {
                Waiter::Idle { idle, .. } => Some(last_output + *idle),
                _ => None,
            })
            .min()
    }

    pub fn check_idle(&mut self, quiet_for: Duration) {
        let mut remaining = Vec::with_capacity(self.parked.len());
        for waiter in self.parked.drain(..) {
            match waiter {
                Waiter::Idle { idle, reply } if quiet_for >= idle => {
                    let _ = reply.send(done(String::new(), None));
                }
                w if w.reply_closed() => {}
                other => remaining.push(other),
            }
        }
        self.parked = remaining;
    }

    /// The program ended: exit and idle waiters are done, text waiters never will be.
    pub fn add_state(
        &mut self,
        wanted: crate::protocol::AgentState,
        reply: oneshot::Sender<Response>,
    ) {
        self.prune();
        self.parked.push(Waiter::State { wanted, reply });
    }

    pub fn has_state(&self) -> bool {
        self.parked
            .iter()
            .any(|w| matches!(w, Waiter::State { .. }))
    }

    /// Answers the `wait --state` waiters whose state the agent is in now.
    pub fn check_state(&mut self, now: crate::protocol::AgentState) {
        let mut remaining = Vec::with_capacity(self.parked.len());
        for waiter in self.parked.drain(..) {
            match waiter {
                Waiter::State { wanted, reply } if wanted == now => {
                    let _ = reply.send(done(now.label().to_string(), None));
                }
                w if w.reply_closed() => {}
                other => remaining.push(other),
            }
        }
        self.parked = remaining;
    }

    pub fn on_end(&mut self, message: &str, exit_code: Option<i32>, text_error: &str) {
        for waiter in self.parked.drain(..) {
            match waiter {
                Waiter::State { reply, .. } => {
                    let _ = reply.send(Response::Error(
                        text_error.replace("the text", "that state"),
                    ));
                }
                Waiter::Exit { reply } => {
                    let _ = reply.send(done(message.to_string(), exit_code));
                }
                Waiter::Idle { reply, .. } => {
                    let _ = reply.send(done(String::new(), exit_code));
                }
                Waiter::Text { reply, .. } => {
                    let _ = reply.send(Response::Error(text_error.to_string()));
                }
            }
        }
    }

    /// Fails the text waiters (nothing more will be printed).
    pub fn fail_text(&mut self, why: &str) {
        let (text, rest): (Vec<_>, Vec<_>) = self
            .parked
            .drain(..)
            .partition(|w| matches!(w, Waiter::Text { .. }));
        self.parked = rest;
        for waiter in text {
            if let Waiter::Text { reply, .. } = waiter {
                let _ = reply.send(Response::Error(why.to_string()));
            }
        }
    }
}
