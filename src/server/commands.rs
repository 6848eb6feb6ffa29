//! What connections ask of a session (running or dormant), and the link an attached client
//! gets back.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::outbox::Outbox;
use crate::protocol::{Response, SessionInfo, WaitCondition};
use crate::state::SessionRecord;

pub type ClientId = u64;

/// An attached client's end: its output queue and its id for input and resizes.
pub struct ClientLink {
    pub outbox: Arc<Outbox>,
    pub id: ClientId,
}

/// Text from `send`, streamed by its connection in chunks of at most
/// [`crate::protocol::SEND_CHUNK`] bytes; `len` bytes in all.
pub struct SendText {
    pub chunks: mpsc::Receiver<Vec<u8>>,
    pub len: u64,
    pub paste: bool,
    pub enter: bool,
    pub timeout: Duration,
    pub reply: oneshot::Sender<Response>,
}

pub enum SessionCmd {
    Attach {
        read_only: bool,
        rows: u16,
        cols: u16,
        profile: Option<crate::term::Profile>,
        /// History lines to replay at most.
        history: usize,
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
    /// An attached client's terminal profile, from its probe.
    Profile {
        client: ClientId,
        profile: crate::term::Profile,
    },
    Resync {
        client: ClientId,
    },
    /// An attached client dropped the output it had not shown: drop its queue too and send it
    /// the screen as it is now, in a [`crate::protocol::Response::Fresh`].
    Refresh {
        client: ClientId,
    },
    /// An attached client's terminal gained or lost focus.
    Focus {
        client: ClientId,
        focused: bool,
    },
    DetachAll,
    /// One client's attachment ends (it pressed the detach chord on a keyboard the server
    /// reads, or its keyboard went away).
    Detach {
        client: ClientId,
    },
    Kill {
        signal: Option<i32>,
        reply: oneshot::Sender<Response>,
    },
    Info(oneshot::Sender<SessionInfo>),
    Send(SendText),
    SendKeys {
        keys: Vec<String>,
        timeout: std::time::Duration,
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
    /// `linger status`: the agent's own report.
    Status {
        state: crate::protocol::AgentState,
        reason: Option<String>,
        reply: oneshot::Sender<Response>,
    },
    /// Server shutdown: end the child like a closing terminal would.
    Shutdown,
    /// `upgrade`: save everything, tell attached clients to reconnect, and leave the program
    /// running for the next server (the keeper holds it).
    HandOver,
    /// `stop`: end the program but keep the session; answers once it has ended.
    Stop {
        signal: Option<i32>,
        reply: oneshot::Sender<Response>,
    },
    Rename {
        new_name: String,
        reply: oneshot::Sender<Response>,
    },
    /// `linger queue`: the agent's task queue.
    Queue {
        op: crate::protocol::QueueOp,
        reply: oneshot::Sender<Response>,
    },
}
