//! Takes the user's terminal's focus reports (`CSI I`, `CSI O`) out of the keyboard input: they
//! are not keys, and the session decides which ones a program hears (one per change, only
//! while it asked for them, never from a read-only viewer).

const FOCUS_IN: &[u8] = b"\x1b[I";
const FOCUS_OUT: &[u8] = b"\x1b[O";
const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

/// Splits focus reports from typed input. Inside a bracketed paste everything is text, so a
/// pasted `ESC [ I` stays what it is.
#[derive(Default)]
pub struct FocusFilter {
    in_paste: bool,
}

/// A piece of keyboard input, in the order it came.
#[derive(Debug, PartialEq)]
pub enum Piece {
    Keys(Vec<u8>),
    /// The terminal gained (`true`) or lost focus.
    Focus(bool),
}

impl FocusFilter {
    /// Outside a bracketed paste: another filter may take over the keyboard from here.
    pub fn is_idle(&self) -> bool {
        !self.in_paste
    }

    /// Splits input into keys and focus changes, in order.
    pub fn feed(&mut self, data: &[u8]) -> Vec<Piece> {
        if memchr::memchr(0x1b, data).is_none() {
            return vec![Piece::Keys(data.to_vec())];
        }
        let mut pieces = Vec::new();
        let mut typed = Vec::with_capacity(data.len());
        let mut i = 0;
        while i < data.len() {
            let rest = &data[i..];
            if rest.starts_with(PASTE_START) {
                self.in_paste = true;
            } else if rest.starts_with(PASTE_END) {
                self.in_paste = false;
            } else if !self.in_paste && (rest.starts_with(FOCUS_IN) || rest.starts_with(FOCUS_OUT))
            {
                if !typed.is_empty() {
                    pieces.push(Piece::Keys(std::mem::take(&mut typed)));
                }
                pieces.push(Piece::Focus(rest[2] == b'I'));
                i += 3;
                continue;
            }
            typed.push(data[i]);
            i += 1;
        }
        if !typed.is_empty() {
            pieces.push(Piece::Keys(typed));
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::{FocusFilter, Piece};

    fn keys(k: &[u8]) -> Piece {
        Piece::Keys(k.to_vec())
    }

    #[test]
    fn focus_reports_are_not_keys_and_keep_their_place() {
        let mut f = FocusFilter::default();
        assert_eq!(
            f.feed(b"a\x1b[Ib\x1b[O"),
            [
                keys(b"a"),
                Piece::Focus(true),
                keys(b"b"),
                Piece::Focus(false)
            ]
        );
        assert_eq!(f.feed(b"\x1b[1;5A"), [keys(b"\x1b[1;5A")]);
    }

    #[test]
    fn a_pasted_focus_sequence_is_text() {
        let mut f = FocusFilter::default();
        assert_eq!(f.feed(b"\x1b[200~x\x1b[Iy"), [keys(b"\x1b[200~x\x1b[Iy")]);
        assert_eq!(
            f.feed(b"\x1b[201~\x1b[O"),
            [keys(b"\x1b[201~"), Piece::Focus(false)]
        );
    }
}
