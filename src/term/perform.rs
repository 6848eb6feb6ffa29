//! The `vte::Perform` side of the engine: printing (wrap, wide chars, graphemes), C0 controls,
//! ESC sequences and OSC strings. CSI lives in `csi.rs`.

use unicode_width::UnicodeWidthChar;

use super::grid::{Cell, LEADING_SPACER, MAX_GRAPHEME_BYTES, SPACER, WIDE};
use super::{Charset, Engine, MAX_TITLE_BYTES, MAX_TITLE_STACK};

/// OSC that makes the model panic, to test isolation (see `Engine::set_test_hooks`).
const TEST_PANIC_OSC: &[u8] = b"7770";

const ZWJ: char = '\u{200d}';

impl vte::Perform for Engine {
    #[inline]
    fn print(&mut self, c: char) {
        // REP repeats the char as received (a combining mark too, which joins the cell
        // again), through the charset in force then, as alacritty does.
        self.last_printed = Some(c);
        let set = self.cur.charsets.sets[self.cur.charsets.active as usize & 3];
        if set != Charset::Ascii {
            self.print_char(set.map(c));
        } else if !(c.is_ascii_graphic() || c == ' ') || self.fill_cells(&[c as u8]) == 0 {
            self.print_char(c);
        }
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            0x08 => {
                // From a pending wrap too, back one column from the last (xterm, alacritty).
                self.cur.pending_wrap = false;
                self.cur.col = self.cur.col.saturating_sub(1);
            }
            0x09 => {
                if self.cur.pending_wrap {
                    // A tab after the last column wraps (if it may), as in alacritty.
                    if self.modes.autowrap {
                        self.wrap_line();
                    }
                } else {
                    self.tab_forward(1);
                }
            }
            0x0a..=0x0c => {
                self.linefeed();
                if self.modes.newline {
                    self.carriage_return();
                }
            }
            0x0d => self.carriage_return(),
            0x07 => self.signal(super::Signal::Bell),
            0x0e => self.cur.charsets.active = 1,
            0x0f => self.cur.charsets.active = 0,
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &vte::Params, inter: &[u8], ignore: bool, action: char) {
        // vte is back in its ground state after a CSI or ESC sequence (not after an OSC: one
        // ended by ST is followed by ESC \\).
        self.ground = true;
        if !ignore {
            self.csi(params, inter, action);
        }
    }

    /// Stops the parser where the text after a sequence can be printed without it.
    fn terminated(&self) -> bool {
        self.ground
    }

    fn esc_dispatch(&mut self, inter: &[u8], _ignore: bool, byte: u8) {
        self.ground = true;
        match (inter, byte) {
            ([], b'7') => self.save_cursor(),
            ([], b'8') => self.restore_cursor(),
            ([], b'D') => self.linefeed(),
            ([], b'E') => {
                self.linefeed();
                self.carriage_return();
            }
            ([], b'H') => self.tabs[self.cur.col] = true,
            ([], b'M') => self.reverse_index(),
            ([], b'c') => self.full_reset(),
            ([], b'=') => self.modes.app_keypad = true,
            ([], b'>') => self.modes.app_keypad = false,
            ([], b'n') => self.cur.charsets.active = 2,
            ([], b'o') => self.cur.charsets.active = 3,
            ([b'#'], b'8') => self.decaln(),
            ([i @ (b'(' | b')' | b'*' | b'+')], c) => {
                let set = match c {
                    b'0' => Charset::DecGraphics,
                    b'A' => Charset::Uk,
                    _ => Charset::Ascii,
                };
                self.cur.charsets.sets[(i - b'(') as usize] = set;
            }
            _ => {}
        }
    }

    fn hook(&mut self, _params: &vte::Params, inter: &[u8], ignore: bool, action: char) {
        use super::identity::DcsQuery;
        self.dcs = match (inter, action) {
            _ if ignore => None,
            ([b'$'], 'q') => Some((DcsQuery::Setting, Vec::new())),
            ([b'+'], 'q') => Some((DcsQuery::Capability, Vec::new())),
            _ => None,
        };
    }

    fn put(&mut self, byte: u8) {
        if let Some((_, payload)) = self.dcs.as_mut() {
            if payload.len() < super::identity::MAX_DCS_QUERY {
                payload.push(byte);
            } else {
                // Too long to be a real query: not answered.
                self.dcs = None;
            }
        }
    }

    fn unhook(&mut self) {
        if let Some((query, payload)) = self.dcs.take() {
            self.answer_dcs(query, &payload);
        }
    }

    fn osc_dispatch(&mut self, params: &[&[u8]], _bell_terminated: bool) {
        if self.answer_osc(params) {
            return;
        }
        match params.first().copied() {
            Some(b"0" | b"2") => {
                let title = params[1..].join(&b';');
                self.title = bounded_title(&title);
            }
            Some(b"8") if params.len() >= 3 => {
                let uri = String::from_utf8_lossy(&params[2..].join(&b';')).into_owned();
                let id = std::str::from_utf8(params[1])
                    .unwrap_or("")
                    .split(':')
                    .find_map(|kv| kv.strip_prefix("id="))
                    .unwrap_or("")
                    .to_string();
                let mut pen = self.cur.pen;
                pen.set_link(self.links.intern(&id, &uri));
                self.set_pen(pen);
            }
            Some(b"9") if params.get(1) == Some(&&b"4"[..]) => {
                let state = params.get(2).and_then(|s| std::str::from_utf8(s).ok());
                let state = state.and_then(|s| s.parse().ok()).unwrap_or(0);
                self.signal(super::Signal::Progress(state));
            }
            Some(b"9" | b"99") => self.signal(super::Signal::Attention(osc_text(&params[1..]))),
            Some(b"777") if params.get(1) == Some(&&b"notify"[..]) => {
                self.signal(super::Signal::Attention(osc_text(&params[2..])))
            }
            Some(b"7501") => {
                if let Some(status) = super::signals::program_status(&params[1..].join(&b';')) {
                    self.signal(status);
                }
            }
            Some(b"133") => {
                if let Some(&kind) = params.get(1).and_then(|p| p.first()) {
                    self.signal(super::Signal::Prompt(kind as char));
                }
            }
            Some(TEST_PANIC_OSC) if self.test_hooks => {
                panic!("test hook: model panic requested by the session's output");
            }
            _ => {}
        }
    }
}

/// The text of a notification's fields, bounded like a title.
fn osc_text(fields: &[&[u8]]) -> String {
    bounded_title(&fields.join(&b';'))
}

/// unicode-width gives a few chars width 3 (U+17D8); terminals (wcwidth) draw them in one
/// cell, and a cell holds at most two columns.
pub(super) fn cell_width(width: usize) -> usize {
    if width > 2 { 1 } else { width }
}

fn bounded_title(bytes: &[u8]) -> String {
    let mut title = String::from_utf8_lossy(bytes).into_owned();
    if title.len() > MAX_TITLE_BYTES {
        let mut end = MAX_TITLE_BYTES;
        while !title.is_char_boundary(end) {
            end -= 1;
        }
        title.truncate(end);
    }
    title
}

impl Engine {
    pub(super) fn push_title(&mut self) {
        if self.titles.len() >= MAX_TITLE_STACK {
            self.titles.remove(0);
        }
        self.titles.push(self.title.clone());
    }

    pub(super) fn pop_title(&mut self) {
        if let Some(title) = self.titles.pop() {
            self.title = title;
        }
    }

    pub(super) fn title_stack(&self) -> &[String] {
        &self.titles
    }

    /// Ends the current row as soft-wrapped and moves to the start of the next.
    fn wrap_line(&mut self) {
        let (row, cols) = (self.cur.row, self.cols);
        let r = &mut self.grid_mut().rows[row];
        r.cells_mut(cols);
        r.wrapped = true;
        self.linefeed();
        self.cur.col = 0;
    }

    pub(super) fn print_char(&mut self, c: char) {
        let width = if (c as u32) < 0x7f {
            1
        } else {
            match c.width() {
                Some(w) => cell_width(w),
                None => return,
            }
        };
        if width == 0 || self.joins_previous(c) {
            self.attach_to_previous(c);
            return;
        }
        if self.cur.pending_wrap && self.modes.autowrap {
            self.wrap_line();
        }
        self.cur.pending_wrap = false;
        if width == 2 && self.cur.col + 1 >= self.cols {
            // Without autowrap a wide char that does not fit is dropped, as in alacritty
            // (which also leaves a wrap pending, that linger does not: autowrap is off).
            if self.cols < 2 || !self.modes.autowrap {
                return;
            } else {
                let (row, col, cols) = (self.cur.row, self.cur.col, self.cols);
                let style = self.pen_style();
                let cells = self.grid_mut().rows[row].cells_mut(cols);
                // The blank may land on a wide char's right half: that char goes too.
                if cells[col].flags & SPACER != 0 && col > 0 {
                    cells[col - 1] = Cell::blank(cells[col - 1].style);
                }
                cells[col] = Cell::new(' ', style, LEADING_SPACER);
                self.wrap_line();
            }
        }
        self.put_cell(c, width);
    }

    fn put_cell(&mut self, c: char, width: usize) {
        let style = self.pen_style();
        let (row, col, cols) = (self.cur.row, self.cur.col, self.cols);
        if self.modes.insert {
            let erase = self.erase_style();
            self.grid_mut().insert_cells(row, col, width, erase);
        }
        let cells = self.grid_mut().rows[row].cells_mut(cols);
        // Overwriting half of a wide character blanks its other half.
        if cells[col].flags & SPACER != 0 && col > 0 {
            cells[col - 1] = Cell::blank(cells[col - 1].style);
        }
        let end = col + width;
        if end < cols && cells[end].flags & SPACER != 0 {
            cells[end] = Cell::blank(cells[end].style);
        }
        if width == 2 {
            cells[col] = Cell::new(c, style, WIDE);
            cells[col + 1] = Cell::new(' ', style, SPACER);
        } else {
            cells[col] = Cell::new(c, style, 0);
        }
        if end >= cols {
            self.cur.col = cols - 1;
            // Pending even without autowrap (where it never wraps): the last column was
            // written, so a combining mark goes there, as in alacritty.
            self.cur.pending_wrap = true;
        } else {
            self.cur.col = end;
        }
    }

    /// A wide char after a ZWJ belongs to the cluster before it.
    fn joins_previous(&self, c: char) -> bool {
        if (c as u32) < 0x300 {
            return false;
        }
        let Some((row, col)) = self.previous_cell() else {
            return false;
        };
        let cell = self.grid().rows[row].cell(col);
        cell.grapheme_index()
            .is_some_and(|i| self.graphemes.get(i).ends_with(ZWJ))
    }

    /// The cell a combining mark attaches to: left of the cursor, or under it when a wrap is
    /// pending; the wide char rather than its spacer.
    fn previous_cell(&self) -> Option<(usize, usize)> {
        let row = self.cur.row;
        // At the first column there is nothing to the left: the mark goes on the cell under
        // the cursor, as in alacritty.
        let mut col = if self.cur.pending_wrap {
            self.cur.col
        } else {
            self.cur.col.saturating_sub(1)
        };
        let cells = &self.grid().rows[row];
        if cells.cell(col).flags & SPACER != 0 {
            col = col.checked_sub(1)?;
        }
        Some((row, col))
    }

    fn attach_to_previous(&mut self, c: char) {
        let Some((row, col)) = self.previous_cell() else {
            return;
        };
        let cell = self.grid().rows[row].cell(col);
        if cell.flags & (SPACER | LEADING_SPACER) != 0 {
            return;
        }
        let mut text = String::new();
        self.graphemes.push_cell(&mut text, &cell);
        if text.len() + c.len_utf8() > MAX_GRAPHEME_BYTES {
            return;
        }
        text.push(c);
        let Some(index) = self.graphemes.intern(&text) else {
            return;
        };
        let cols = self.cols;
        let new = Cell::grapheme(index, cell.style, cell.flags);
        self.grid_mut().rows[row].cells_mut(cols)[col] = new;
    }

    /// DECALN: fills the screen with `E`. xterm also resets the margins and homes the cursor;
    /// alacritty (the tests' oracle) leaves both, and so does linger.
    fn decaln(&mut self) {
        let cols = self.cols;
        for row in &mut self.grid_mut().rows {
            row.wrapped = false;
            row.cells_mut(cols).fill(Cell::new('E', 0, 0));
        }
    }

    /// REP: the last printed char again, `n` times.
    pub(super) fn repeat(&mut self, n: usize) {
        if let Some(c) = self.last_printed {
            for _ in 0..n.min(super::MAX_REPEAT) {
                vte::Perform::print(self, c);
            }
        }
    }
}
