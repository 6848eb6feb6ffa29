//! Answers to terminal queries, all from one place and in the order the queries came, so an
//! app that sends a query and then DA1 sees the answers in the order it expects.

use std::fmt::Write as _;

use super::Engine;

/// DA1: a VT220-class terminal with ANSI colour, the way most modern terminals describe themselves.
const DA1_ANSWER: &[u8] = b"\x1b[?62;22c";
/// DA2: terminal type 1, firmware "version" 0: apps only check that an answer comes.
const DA2_ANSWER: &[u8] = b"\x1b[>1;10;0c";
const DSR_OK_ANSWER: &[u8] = b"\x1b[0n";

/// The queries the engine answers. A new one (DECRQM, XTVERSION, OSC 10/11...) is a variant
/// here, an arm in `Engine::answer`, and the place its sequence is recognised.
#[derive(Clone, Copy, Debug)]
pub(super) enum Query {
    PrimaryAttributes,
    SecondaryAttributes,
    Status,
    /// CPR; `private` for the DEC form `CSI ? 6 n`, answered in the same form.
    CursorPosition {
        private: bool,
    },
}

/// Most answer bytes held for the session; past it, further answers are dropped (an app that
/// floods queries without reading is not served).
pub(super) const MAX_ANSWER_BYTES: usize = 64 * 1024;

impl Engine {
    pub(super) fn answer(&mut self, query: Query) {
        if self.answers.len() >= MAX_ANSWER_BYTES {
            return;
        }
        match query {
            Query::PrimaryAttributes => self.answers.extend_from_slice(DA1_ANSWER),
            Query::SecondaryAttributes => self.answers.extend_from_slice(DA2_ANSWER),
            Query::Status => self.answers.extend_from_slice(DSR_OK_ANSWER),
            Query::CursorPosition { private } => {
                let mut s = String::new();
                let marker = if private { "?" } else { "" };
                let _ = write!(s, "\x1b[{marker}{};{}R", self.cur.row + 1, self.cur.col + 1);
                self.answers.extend_from_slice(s.as_bytes());
            }
        }
    }
}
