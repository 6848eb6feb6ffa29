//! Wire protocol between client and server: message types, framing and the version handshake.
//!
//! Every frame is a 4-byte big-endian length followed by a postcard-encoded message. Both sides
//! send a [`Hello`] first; the rest of the conversation is only valid when the protocol numbers
//! match. See docs/PROTOCOL.md.

use serde::{Deserialize, Serialize};

mod frame;
pub mod stream;
pub use frame::*;
pub use stream::Stream;

/// Bumped on any incompatible change to the messages below.
pub const PROTOCOL_VERSION: u32 = 14;

/// Largest frame the server accepts from a client; anything bigger is a protocol error, never
/// an allocation.
pub const MAX_FRAME: usize = 1 << 20;

/// Largest frame a client accepts from the server: a capture of a long history is one frame.
pub const MAX_RESPONSE_FRAME: usize = 256 << 20;

/// Largest screen a client may ask for; vt100 keeps 32 bytes per cell, so this bounds one
/// session's screen at 16 MiB whatever a client claims.
pub const MAX_ROWS: u16 = 500;
pub const MAX_COLS: u16 = 1000;

/// Clamps a client's stated terminal size to what the server will allocate.
pub fn clamp_size(rows: u16, cols: u16) -> (u16, u16) {
    (rows.clamp(1, MAX_ROWS), cols.clamp(1, MAX_COLS))
}

/// Output larger than this is split over several frames so no frame nears [`MAX_FRAME`].
pub const OUTPUT_CHUNK: usize = 256 * 1024;

/// `send` streams its text in [`Request::SendData`] frames of at most this many bytes, so any
/// amount of text fits the frame limit and the server holds at most a few chunks per sender.
pub const SEND_CHUNK: usize = 64 * 1024;

/// Sent first by both sides. Its shape must never change, so that mismatched versions can
/// still read each other's version and say so.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hello {
    pub protocol: u32,
    pub version: String,
}

impl Hello {
    pub fn ours() -> Hello {
        Hello {
            protocol: protocol_version(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// The protocol number this build speaks; debug builds let tests fake a different one.
pub fn protocol_version() -> u32 {
    #[cfg(debug_assertions)]
    if let Some(v) = std::env::var("LINGER_TEST_PROTOCOL")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return v;
    }
    PROTOCOL_VERSION
}

/// What a new session runs and where.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SessionSpec {
    pub name: String,
    /// Program and arguments; never empty.
    pub command: Vec<String>,
    pub cwd: String,
    /// Extra environment given with `-e`.
    pub env: Vec<(String, String)>,
    /// History ring capacity in lines.
    pub scrollback: usize,
    pub rows: u16,
    pub cols: u16,
    /// What `revive` runs; `None` picks a preset for well-known agents.
    pub resume_command: Option<Vec<String>>,
    /// Bound on the session's output log on disk, in bytes; 0 for the default.
    pub log_limit: u64,
    /// `env` is the caller's whole environment: start from it alone, not the server's.
    pub clear_env: bool,
}

/// Most bytes of environment (keys and values) a session may be given: the caller's whole
/// environment travels in one request frame, and lives in the session's record.
pub const MAX_ENV_BYTES: usize = 256 * 1024;

/// `attach`: a client's terminal joins a session.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AttachRequest {
    pub name: String,
    pub read_only: bool,
    pub rows: u16,
    pub cols: u16,
    /// Create the session with this spec when it does not exist.
    pub create: Option<SessionSpec>,
    /// What the client's terminal said about itself; `None` when it answered nothing.
    pub profile: Option<crate::term::Profile>,
    /// At most this many of the newest history lines are replayed (`u64::MAX`: all).
    pub history: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Request {
    List,
    Create(SessionSpec),
    Attach(AttachRequest),
    Kill {
        name: String,
        signal: Option<i32>,
    },
    Detach {
        name: String,
    },
    KillServer,
    /// Keyboard input from an attached client.
    Input(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Terminal size of an attached client.
    Resize {
        rows: u16,
        cols: u16,
    },
    /// Types `len` bytes of text, which follow in [`Request::SendData`] frames on the same
    /// connection. The one reply comes once every byte was written to the pty (and the Enter,
    /// if asked), or when `timeout_ms` passed first.
    Send {
        name: String,
        len: u64,
        /// Send as a bracketed paste when the app asked for it.
        paste: bool,
        /// Follow with a separate Enter once the text was written.
        enter: bool,
        timeout_ms: u64,
    },
    /// Named keys (`Enter`, `C-c`, `Up`, ...), encoded by the server for the app's key modes.
    SendKeys {
        name: String,
        keys: Vec<String>,
        /// As `Send`'s (since version 14; it was always 30 s).
        timeout_ms: u64,
    },
    Capture {
        name: String,
        /// How many history lines before the screen: `None` for none, `usize::MAX` for all.
        history: Option<usize>,
        /// Only history lines numbered at least this.
        from_line: Option<u64>,
        ansi: bool,
    },
    Wait {
        name: String,
        condition: WaitCondition,
        timeout_ms: Option<u64>,
    },
    /// Sets the session's notes when `text` is given; answers with the notes.
    Note {
        name: String,
        text: Option<String>,
    },
    /// Starts a lost or exited session again with `command`, else its resume command, else
    /// its original command.
    Revive {
        name: String,
        command: Option<Vec<String>>,
        rows: u16,
        cols: u16,
        /// An absolute directory to start in instead of the saved one (`revive -C`).
        cwd: Option<String>,
    },
    /// Forgets every lost session.
    KillLost,
    /// A piece of a `Send`'s text.
    SendData(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Ends the program (`signal`, else SIGTERM, then SIGKILL after a grace) but keeps the
    /// session's record and output; answers once it has ended.
    Stop {
        name: String,
        signal: Option<i32>,
    },
    /// Renames a session, on disk too.
    Rename {
        name: String,
        new_name: String,
    },
    /// Forgets every exited or killed session.
    KillExited,
    /// While attached: what the client's terminal said about itself (it answers the probe
    /// after the attach has started).
    Profile(crate::term::Profile),
    /// An agent's own report of its state (from its lifecycle hooks): authoritative until it
    /// reports again or its program exits.
    Status {
        name: String,
        state: AgentState,
        reason: Option<String>,
    },
    /// Streams [`Response::Event`]s (of these sessions, or all when empty) until the client
    /// goes away.
    Events {
        names: Vec<String>,
    },
    /// A session's task queue: prompts delivered when its agent is next idle.
    Queue {
        name: String,
        op: QueueOp,
    },
    /// While attached: the client's terminal gained (`true`) or lost focus. Sent only when the
    /// terminal reports focus, which it does while the program asked for focus events.
    Focus(bool),
    /// While attached: the client's terminal, passed with this frame (`SCM_RIGHTS`), for
    /// output the server may write there itself (see `server/direct.rs`).
    Terminal,
    /// While attached: the client has written this many [`Response::Output`] and
    /// [`Response::Fresh`] frames to its terminal (or dropped them), all it received so far.
    Drained(u64),
    /// While attached: the client's keyboard (its terminal, opened for reading), passed with
    /// this frame (`SCM_RIGHTS`). The client has stopped reading it; the server reads the keys
    /// itself, finding this detach chord in them (see `server/keyboard.rs`), until the
    /// attachment ends.
    Keyboard(crate::keyboard::chord::DetachKey),
    /// While attached, after `Keyboard`: the client reads its keyboard again (the server left
    /// keys unread for a second); the server stops reading it and lets go of it.
    KeyboardBack,
    /// While attached: the client dropped the output it had not shown yet (its terminal fell
    /// behind, or the client was stopped and continued). The server drops what it has queued
    /// for the client too and sends the screen as it is now in a [`Response::Fresh`].
    Refresh,
}

/// Output up to this size may go straight to an attached client's terminal; larger output
/// (a flood, a full redraw) is relayed by the client, whose queue absorbs a slow terminal.
pub const DIRECT_OUTPUT_MAX: usize = 8 * 1024;

/// What `linger queue` does.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum QueueOp {
    /// Appends a prompt; answers [`Response::Queue`] with the queue after it.
    Add(String),
    /// Answers [`Response::Queue`].
    List,
    /// Empties the queue; answers [`Response::Queue`] with what was dropped.
    Clear,
}

/// Something that happened to a session, as `linger events` prints it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Unix milliseconds.
    pub time: u64,
    pub session: String,
    /// `created`, `state`, `attention`, `exited`, `killed`, `lost`, `revived`, `queued` or
    /// `delivered`.
    pub kind: String,
    /// The agent's state for `state` and `attention`; the session's (`running`, `exited`,
    /// `killed`, `lost`) for the others.
    pub state: Option<String>,
    pub reason: Option<String>,
    /// What happened in words: the notification's text, the exit message, the prompt.
    pub message: Option<String>,
}

/// What an agent in a session is doing.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum AgentState {
    Working,
    Idle,
    /// It asks the user something (a permission, a question, a notification).
    Waiting,
    Unknown,
}

impl AgentState {
    pub fn label(self) -> &'static str {
        match self {
            AgentState::Working => "working",
            AgentState::Idle => "idle",
            AgentState::Waiting => "waiting",
            AgentState::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Result<AgentState, String> {
        match text {
            "working" => Ok(AgentState::Working),
            "idle" => Ok(AgentState::Idle),
            "waiting" => Ok(AgentState::Waiting),
            _ => Err(format!(
                "unknown state '{text}': use working, idle or waiting"
            )),
        }
    }
}

/// A session's agent: which one, and what it is doing since when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentInfo {
    /// `claude`, `codex`, `gemini`, `aider`, `opencode`...; `None` when not an agent linger knows.
    pub kind: Option<String>,
    pub state: AgentState,
    pub reason: Option<String>,
    /// Unix milliseconds of the last change of state.
    pub since: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum WaitCondition {
    Text {
        regex: String,
        from_line: Option<u64>,
        /// Only output printed after the wait began counts.
        new: bool,
    },
    Idle {
        millis: u64,
    },
    Exit,
    /// The agent reaches this state (`Unknown` is not waited for).
    State(AgentState),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum SessionState {
    Running,
    Exited(i32),
    Killed(i32),
    /// Its server died while it ran; its record and output survive on disk.
    Lost,
    /// Its saved record cannot be read; `SessionInfo::persist_error` says why. It can only be
    /// captured (what output survives) and killed (forgotten).
    Broken,
}

impl SessionState {
    /// The status a shell would report: the exit code, or 128 + signal.
    pub fn exit_status(&self) -> Option<i32> {
        match self {
            SessionState::Exited(code) => Some(*code),
            SessionState::Killed(sig) => Some(128 + sig),
            SessionState::Running | SessionState::Lost | SessionState::Broken => None,
        }
    }

    pub fn label(&self) -> String {
        match self {
            SessionState::Running => "running".into(),
            SessionState::Exited(code) => format!("exited({code})"),
            SessionState::Killed(sig) => format!("killed({})", crate::signals::name(*sig)),
            SessionState::Lost => "lost".into(),
            SessionState::Broken => "broken".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionInfo {
    pub name: String,
    pub state: SessionState,
    pub pid: u32,
    pub command: Vec<String>,
    pub cwd: String,
    pub clients: u32,
    /// Unix milliseconds.
    pub created_at: u64,
    /// Unix milliseconds of the last output, or creation when none yet.
    pub last_output_at: u64,
    pub rows: u16,
    pub cols: u16,
    pub notes: String,
    pub resume_command: Option<Vec<String>>,
    /// Why the session's state is not being saved, if it is not.
    pub persist_error: Option<String>,
    /// The terminal's foreground process, when it runs.
    pub foreground: Option<Foreground>,
    /// The agent's state, while the program runs.
    pub agent: Option<AgentInfo>,
    /// Prompts queued for the agent (`linger queue`).
    pub queue: u32,
}

/// The process in the foreground of a session's terminal (what a shell is running now).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Foreground {
    pub pid: u32,
    pub command: Vec<String>,
    pub cwd: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaptureLine {
    pub line: u64,
    pub text: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Capture {
    pub name: String,
    pub rows: u16,
    pub cols: u16,
    pub cursor_row: u16,
    pub cursor_col: u16,
    pub cursor_visible: bool,
    pub title: String,
    pub alternate_screen: bool,
    pub history: Vec<CaptureLine>,
    pub screen: Vec<String>,
    /// One past the last non-blank line, history or screen.
    pub next_line: u64,
    /// The screen as numbered logical lines (soft-wrapped rows joined), without trailing
    /// blank ones; the first is numbered one past the history.
    pub lines: Vec<CaptureLine>,
    /// Number of the line the cursor is on: lines before it are complete.
    pub cursor_line: u64,
    pub running: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum Response {
    Ok,
    Error(String),
    Sessions(Vec<SessionInfo>),
    /// Terminal output for an attached client.
    Output(#[serde(with = "serde_bytes")] Vec<u8>),
    /// The session's program ended; the client prints `message` and exits. `screen` is the
    /// final screen, for a client that dropped output while a fresh screen was on its way (see
    /// [`Request::Refresh`]); empty where no client can be missing it.
    Exited {
        message: String,
        #[serde(with = "serde_bytes")]
        screen: Vec<u8>,
    },
    /// Someone ran `linger detach`.
    Detached,
    Capture(Capture),
    /// A wait finished: the matching line, or empty.
    WaitDone {
        line: String,
        exit_code: Option<i32>,
    },
    WaitTimeout,
    Notes(String),
    /// How many lost sessions `KillLost` forgot.
    Forgotten(u32),
    /// One of the stream `Request::Events` asked for.
    Event(Event),
    /// The events subscriber fell behind and this many events were dropped for it.
    Lagged(u64),
    /// A session's queued prompts, oldest first.
    Queue(Vec<String>),
    /// The server hands its sessions to a new one (`linger upgrade`): an attached client
    /// reconnects and attaches again.
    Upgrading,
    /// A full screen (since version 13: an attach's replay, a fresh screen for a client that
    /// fell behind, the answer to [`Request::Refresh`]). Output after it continues from it;
    /// output before it was sent before the refresh was asked for.
    Fresh(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// Explains a version mismatch in one line.
pub fn mismatch_message(client: &Hello, server: &Hello) -> String {
    format!(
        "client protocol {} (linger {}) does not match server protocol {} (linger {}); \
         run `linger upgrade` to hand the sessions to this linger (programs keep running; `linger kill-server` ends them instead), or use the matching linger binary",
        client.protocol, client.version, server.protocol, server.version
    )
}
