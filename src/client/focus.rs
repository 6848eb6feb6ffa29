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

impl FocusFilter {
    /// Returns what was typed and, in order, each focus change reported (`true` = gained).
    pub fn feed(&mut self, data: &[u8]) -> (Vec<u8>, Vec<bool>) {
        if memchr::memchr(0x1b, data).is_none() {
            return (data.to_vec(), Vec::new());
        }
        let mut typed = Vec::with_capacity(data.len());
        let mut focus = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let rest = &data[i..];
            if rest.starts_with(PASTE_START) {
                self.in_paste = true;
            } else if rest.starts_with(PASTE_END) {
                self.in_paste = false;
            } else if !self.in_paste && (rest.starts_with(FOCUS_IN) || rest.starts_with(FOCUS_OUT))
            {
                focus.push(rest[2] == b'I');
                i += 3;
                continue;
            }
            typed.push(data[i]);
            i += 1;
        }
        (typed, focus)
    }
}

#[cfg(test)]
mod tests {
    use super::FocusFilter;

    #[test]
    fn focus_reports_are_not_keys() {
        let mut f = FocusFilter::default();
        assert_eq!(
            f.feed(b"a\x1b[Ib\x1b[O"),
            (b"ab".to_vec(), vec![true, false])
        );
        assert_eq!(f.feed(b"\x1b[1;5A"), (b"\x1b[1;5A".to_vec(), vec![]));
    }

    #[test]
    fn a_pasted_focus_sequence_is_text() {
        let mut f = FocusFilter::default();
        let (typed, focus) = f.feed(b"\x1b[200~x\x1b[Iy");
        assert_eq!(typed, b"\x1b[200~x\x1b[Iy");
        assert!(focus.is_empty());
        let (typed, focus) = f.feed(b"\x1b[201~\x1b[O");
        assert_eq!(typed, b"\x1b[201~");
        assert_eq!(focus, vec![false]);
    }
}
