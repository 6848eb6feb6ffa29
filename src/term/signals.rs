//! What programs signal besides drawing (bells, notifications, progress, prompt marks), kept
//! in order and bounded until the session takes them to judge its agent's state.

use super::Engine;

/// What a program signalled that is not drawing: how agents say they want the user (see
/// `server::session::agent`).
#[derive(Debug, Clone, PartialEq)]
pub enum Signal {
    /// BEL outside a string.
    Bell,
    /// A desktop notification (OSC 9, OSC 777 notify, OSC 99) and its text.
    Attention(String),
    /// OSC 9;4 progress: 0 none, 1 normal, 2 error, 3 indeterminate, 4 paused.
    Progress(u8),
    /// OSC 133 shell integration mark: `A` prompt, `B` input, `C` command, `D` done.
    Prompt(char),
    /// A program's own report of its state (OSC 7501, "program status", which Codex and
    /// others send): `state` is `working`, `idle`, `done`, `blocked`, `error` or `clear`;
    /// `kind` says what a `blocked` program waits for (`permission`, `question`, `auth`);
    /// `message` is its decoded `msg`.
    Status {
        state: String,
        kind: Option<String>,
        message: Option<String>,
    },
}

/// Longest `state` or `kind` word kept from a status report; longer ones are not words.
const MAX_STATUS_WORD: usize = 16;

/// Reads an OSC 7501 report body (`key=value` fields joined by `:`), or None when it has no
/// usable `state`. vte bounds the body (1 KiB), so the message is bounded too.
pub(super) fn program_status(body: &[u8]) -> Option<Signal> {
    use base64::Engine as _;
    let text = std::str::from_utf8(body).ok()?;
    let field = |key: &str| {
        text.split(':')
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    };
    let word = |key: &str| {
        field(key)
            .filter(|w| w.len() <= MAX_STATUS_WORD && w.bytes().all(|b| b.is_ascii_alphabetic()))
            .map(str::to_ascii_lowercase)
    };
    let state = word("state")?;
    let message = field("msg")
        .and_then(|m| base64::engine::general_purpose::STANDARD.decode(m).ok())
        .map(|bytes| {
            // Untrusted text for a list and a notification: no control characters.
            String::from_utf8_lossy(&bytes)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
        })
        .filter(|m| !m.trim().is_empty());
    Some(Signal::Status {
        state,
        kind: word("kind"),
        message,
    })
}

/// Signals kept until taken; older ones are dropped past this.
const MAX_SIGNALS: usize = 64;

impl Engine {
    pub(super) fn signal(&mut self, signal: Signal) {
        if self.signals.len() >= MAX_SIGNALS {
            self.signals.remove(0);
        }
        self.signals.push(signal);
    }

    /// Signals seen since the last call, oldest first.
    pub fn take_signals(&mut self) -> Vec<Signal> {
        std::mem::take(&mut self.signals)
    }
}
