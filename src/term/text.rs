//! Feeding output to the engine, with plain text printed without the parser: after a CSI or
//! ESC sequence vte is known to be in its ground state, and printable ASCII, CR and LF up to
//! the next escape are handled here a run at a time (vte would call `print` once per char).
//! That is most of a flood's bytes. Anything else goes through vte as before.

use super::grid::Cell;
use super::{Engine, Term};
use vte::Perform;

impl Term {
    pub fn process(&mut self, bytes: &[u8]) {
        // vte 0.15.0 drops characters after a UTF-8 sequence split across two calls
        // (alacritty/vte#159): hold an incomplete sequence at the end back for the next call.
        // The copy happens only after a chunk that ended inside a character.
        let joined;
        let mut bytes = bytes;
        if !self.utf8_tail.is_empty() {
            let mut all = std::mem::take(&mut self.utf8_tail);
            all.extend_from_slice(bytes);
            joined = all;
            bytes = &joined;
        }
        let keep = incomplete_utf8_tail(bytes);
        let (head, tail) = bytes.split_at(bytes.len() - keep);
        self.utf8_tail.extend_from_slice(tail);
        let mut rest = head;
        while !rest.is_empty() {
            if self.engine.ground {
                rest = &rest[self.engine.plain_text(rest)..];
                if rest.is_empty() {
                    break;
                }
            }
            // Until the next CSI or ESC sequence ends, the parser's state is its own.
            self.engine.ground = false;
            let used = self.parser.advance_until_terminated(&mut self.engine, rest);
            rest = &rest[used..];
        }
    }
}

impl Engine {
    /// Handles the plain text at the start of `bytes` (the parser is in its ground state):
    /// printable ASCII, and C0 controls but ESC. Returns how many bytes it took.
    fn plain_text(&mut self, bytes: &[u8]) -> usize {
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            match b {
                0x20..=0x7e => {
                    let run = bytes[i..]
                        .iter()
                        .position(|b| !(0x20..=0x7e).contains(b))
                        .unwrap_or(bytes.len() - i);
                    self.print_ascii_run(&bytes[i..i + run]);
                    i += run;
                }
                0x1b => break,
                0x00..=0x1f => {
                    self.execute(b);
                    i += 1;
                }
                // DEL and anything not ASCII: vte's (UTF-8, and what it does with DEL).
                _ => break,
            }
        }
        i
    }

    /// Prints printable ASCII as `print` would, a row's worth at a time where nothing special
    /// is in the way (another charset, insert mode, a pending wrap, wide chars).
    fn print_ascii_run(&mut self, mut run: &[u8]) {
        while let Some((&first, after)) = run.split_first() {
            let n = self.fill_cells(run);
            if n == 0 {
                self.print(first as char);
                run = after;
            } else {
                run = &run[n..];
            }
        }
    }

    /// Writes as much of `run` as fits on the cursor's row over plain cells; 0 when the first
    /// char needs `print`'s care.
    fn fill_cells(&mut self, run: &[u8]) -> usize {
        let set = self.cur.charsets.sets[self.cur.charsets.active as usize & 3];
        if set != super::charset::Charset::Ascii || self.cur.pending_wrap || self.modes.insert {
            return 0;
        }
        let (row, col, cols, style) = (self.cur.row, self.cur.col, self.cols, self.pen_id);
        let n = run.len().min(cols.saturating_sub(col));
        let cells = self.grid_mut().rows[row].cells_mut(cols);
        let Some(target) = cells.get_mut(col..col + n) else {
            return 0;
        };
        // A wide char (or its half) in the way: `print` blanks its other half.
        if target.iter().any(|c| c.flags != 0) {
            return 0;
        }
        for (cell, &b) in target.iter_mut().zip(run) {
            *cell = Cell::new(b as char, style, 0);
        }
        if col + n >= cols {
            self.cur.col = cols - 1;
            // Pending even without autowrap (where it never wraps), as in `print`.
            self.cur.pending_wrap = true;
        } else {
            self.cur.col = col + n;
        }
        self.last_printed = run.get(n.wrapping_sub(1)).map(|&b| b as char);
        n
    }
}

/// How many bytes at the end of `bytes` are the start of a UTF-8 sequence still missing its
/// continuation bytes.
fn incomplete_utf8_tail(bytes: &[u8]) -> usize {
    let n = bytes.len();
    for back in 1..=n.min(3) {
        let b = bytes[n - back];
        if b & 0xc0 == 0x80 {
            continue; // a continuation byte: keep looking for the lead
        }
        let needed = match b {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => return 0,
        };
        return if back < needed { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use proptest::prelude::*;

    /// The same bytes through the parser alone, as before the plain-text path.
    fn through_vte_only(rows: u16, cols: u16, chunks: &[Vec<u8>]) -> Term {
        let mut t = Term::new(rows, cols, History::new(50));
        for chunk in chunks {
            let mut all = std::mem::take(&mut t.utf8_tail);
            all.extend_from_slice(chunk);
            let keep = incomplete_utf8_tail(&all);
            let (head, tail) = all.split_at(all.len() - keep);
            t.utf8_tail = tail.to_vec();
            t.parser.advance(&mut t.engine, head);
        }
        t
    }

    fn piece() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "[a-z ]{0,30}".prop_map(String::into_bytes),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b"\x08\t".to_vec()),
            Just(b"\x7f".to_vec()),
            Just("漢字😀é".as_bytes().to_vec()),
            Just(b"\x1b[31m".to_vec()),
            Just(b"\x1b[m".to_vec()),
            Just(b"\x1b(0lqk\x1b(B".to_vec()),
            Just(b"\x0eq\x0f".to_vec()),
            Just(b"\x1b[4h".to_vec()),
            Just(b"\x1b[4l".to_vec()),
            Just(b"\x1b[?7l".to_vec()),
            Just(b"\x1b[?7h".to_vec()),
            Just(b"\x1b[3;5H".to_vec()),
            Just(b"\x1b[2b".to_vec()),
            Just(b"\x1b]0;title\x07".to_vec()),
            Just(b"\x1b]0;t\x1b\\".to_vec()),
            Just(b"\x1b7\x1b8".to_vec()),
            (0usize..40).prop_map(|n| vec![b'x'; n]),
        ]
    }

    proptest! {
        #[test]
        fn plain_text_path_matches_the_parser(
            pieces in proptest::collection::vec(piece(), 0..60),
            cuts in proptest::collection::vec(1usize..64, 1..8),
        ) {
            let bytes: Vec<u8> = pieces.concat();
            let mut chunks = Vec::new();
            let mut at = 0;
            for cut in cuts.iter().cycle() {
                if at >= bytes.len() {
                    break;
                }
                let end = (at + cut).min(bytes.len());
                chunks.push(bytes[at..end].to_vec());
                at = end;
            }
            let mut fast = Term::new(6, 12, History::new(50));
            for chunk in &chunks {
                fast.process(chunk);
            }
            let slow = through_vte_only(6, 12, &chunks);
            prop_assert_eq!(fast.engine.replay(true), slow.engine.replay(true));
            prop_assert_eq!(fast.engine.last_printed, slow.engine.last_printed);
        }
    }
}
