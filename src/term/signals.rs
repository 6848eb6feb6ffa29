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
