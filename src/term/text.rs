//! Feeding output to the engine, with plain text handled without the parser: after a CSI or
//! ESC sequence vte is known to be in its ground state, and printable ASCII (a row at a time;
//! vte would call `print` once per char), C0 controls and plain-number SGR up to the next
//! other escape are handled here. That is most of a flood's bytes. Anything else goes through
//! vte as before.

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
                    let run = printable_prefix(&bytes[i..]);
                    self.print_ascii_run(&bytes[i..i + run]);
                    i += run;
                }
                0x1b => match self.plain_sgr(&bytes[i..]) {
                    Some(len) => i += len,
                    None => break,
                },
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

    /// Applies an SGR made of plain numbers (`ESC [ 1;38;5;208 m`), the commonest sequence by
    /// far, as vte would dispatch it; returns its length. `None` for anything else (private
    /// marks, `:` sub-parameters, controls inside, more parameters than vte keeps, cut off by
    /// the chunk's end): vte takes those.
    fn plain_sgr(&mut self, bytes: &[u8]) -> Option<usize> {
        const MAX_PARAMS: usize = 32;
        if bytes.get(1) != Some(&b'[') {
            return None;
        }
        let mut params = [0u16; MAX_PARAMS];
        let (mut count, mut param) = (0, 0u16);
        for (i, &b) in bytes.iter().enumerate().skip(2) {
            match b {
                b'0'..=b'9' => param = param.saturating_mul(10).saturating_add(u16::from(b - b'0')),
                b';' | b'm' if count < MAX_PARAMS => {
                    params[count] = param;
                    (count, param) = (count + 1, 0);
                    if b == b'm' {
                        self.sgr(params[..count].iter().map(std::slice::from_ref));
                        return Some(i + 1);
                    }
                }
                _ => return None,
            }
        }
        None
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

    /// Writes as much of `run` (printable ASCII) as fits on the cursor's row over plain cells;
    /// 0 when the first char needs `print_char`'s care. `print`'s common case too.
    pub(super) fn fill_cells(&mut self, run: &[u8]) -> usize {
        let set = self.cur.charsets.sets[self.cur.charsets.active as usize & 3];
        if set != super::charset::Charset::Ascii || self.cur.pending_wrap || self.modes.insert {
            return 0;
        }
        let style = self.pen_style();
        let (row, col, cols) = (self.cur.row, self.cur.col, self.cols);
        let n = run.len().min(cols.saturating_sub(col));
        let row = &mut self.grid_mut().rows[row];
        let n = if row.append_ascii(col, &run[..n], style, cols) {
            n
        } else {
            overwrite_ascii(row.cells_through(col + n, cols), col, &run[..n], style)
        };
        if n == 0 {
            return 0;
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

/// Writes `text` (plain ASCII) over the cells from `col` up to the first wide char (or half of
/// one) in the way, which `print` must handle; returns how many it wrote.
fn overwrite_ascii(cells: &mut [Cell], col: usize, text: &[u8], style: u16) -> usize {
    let Some(target) = cells.get_mut(col..col + text.len()) else {
        return 0;
    };
    // Most often nothing is in the way: checked first in a pass of its own, which (like the
    // writing pass) the compiler vectorises.
    let clear = target.iter().fold(0, |any, cell| any | cell.bits()) & Cell::FLAG_BITS == 0;
    let n = if clear {
        text.len()
    } else {
        target
            .iter()
            .position(|cell| cell.flags != 0)
            .unwrap_or(text.len())
    };
    for (cell, &b) in target[..n].iter_mut().zip(text) {
        *cell = Cell::ascii(b, style);
    }
    n
}

/// How many bytes at the start of `bytes` are printable ASCII (0x20..=0x7e), eight at a time.
fn printable_prefix(bytes: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        // A byte below 0x20, or one at 0x7f or above (its high bit, or after adding 1).
        let below = x.wrapping_sub(0x20 * ONES) & !x & HIGH;
        let above = (x.wrapping_add(ONES) | x) & HIGH;
        if below | above != 0 {
            break;
        }
        i += 8;
    }
    i + bytes[i..]
        .iter()
        .position(|b| !(0x20..=0x7e).contains(b))
        .unwrap_or(bytes.len() - i)
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
            Just(b"\x1b[1;38;5;208;48;2;1;2;3m".to_vec()),
            Just(b"\x1b[;4m".to_vec()),
            Just(b"\x1b[4:3m".to_vec()),
            Just(b"\x1b[99999;1m".to_vec()),
            Just(
                b"\x1b[1;2;3;4;5;6;7;8;9;1;2;3;4;5;6;7;8;9;1;2;3;4;5;6;7;8;9;1;2;3;4;5;6;7m"
                    .to_vec()
            ),
            Just(b"\x1b[3\n1m".to_vec()),
            Just(b"\x1b[?1m".to_vec()),
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

    #[test]
    fn printable_prefix_stops_at_the_first_other_byte() {
        for stop in [0x00u8, 0x1b, 0x1f, 0x7f, 0x80, 0xff] {
            for at in 0..20 {
                let mut bytes = vec![b'a'; 20];
                bytes[at] = stop;
                assert_eq!(printable_prefix(&bytes), at, "{stop:#x} at {at}");
            }
        }
        assert_eq!(printable_prefix(&[b' '; 17]), 17);
        assert_eq!(printable_prefix(b"~}|"), 3);
    }

    #[test]
    fn plain_sgr_matches_the_parser_at_vtes_parameter_bound() {
        for count in 30..=34 {
            let params = vec!["1"; count - 1].join(";");
            let bytes = format!("\x1b[{params};31mx").into_bytes();
            let mut fast = Term::new(2, 10, History::new(5));
            fast.process(&bytes);
            let slow = through_vte_only(2, 10, &[bytes]);
            assert_eq!(
                fast.engine.replay(true),
                slow.engine.replay(true),
                "{count} params"
            );
        }
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
