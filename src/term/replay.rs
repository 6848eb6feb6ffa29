//! Replay: the bytes that recreate the engine's state on a real terminal that already shows
//! the user's text. History goes out first as ordinary lines from wherever the cursor is (so
//! the user's rows scroll into the terminal's own scrollback, none overwritten); only then is
//! anything positioned absolutely: the main screen, the alternate screen over it, saved
//! cursors, margins, cursor, charsets, modes, title and pen.

use std::fmt::Write as _;

use super::grid::{Grid, LEADING_SPACER, SPACER, WIDE};
use super::style::{Style, write_link, write_sgr};
use super::{Charsets, Cursor, Engine, default_tabs};

impl Engine {
    /// With `history`, for a fresh attach: the history ring, then the screens and modes. Without,
    /// for a client that already shows this session: the screen is cleared and redrawn.
    pub fn replay(&self, history: bool) -> Vec<u8> {
        self.replay_with(history.then_some(usize::MAX))
    }

    /// Like [`Engine::replay`], with at most `history` of the newest history lines (`None`:
    /// the redraw for a client that shows this session already).
    pub fn replay_with(&self, history: Option<usize>) -> Vec<u8> {
        let mut out = String::with_capacity(64 * 1024 + self.cap.history.bytes());
        // Nothing here moves the cursor: the user's rows are still on screen.
        out.push_str("\x1b[m\x1b[4l\x1b[?7h\x1b(B\x1b)B\x0f");
        if let Some(lines) = history {
            let from = self.cap.history.next_line().saturating_sub(lines as u64);
            for (_, line) in self.cap.history.since(from) {
                out.push_str(line);
                out.push_str("\r\n");
            }
            // Scroll the last history line (and anything else on screen) off the top.
            for _ in 0..self.rows {
                out.push_str("\r\n");
            }
        } else {
            // The client shows this session already: leave its alternate screen and pop the
            // kitty flags pushed on each screen by an earlier replay.
            out.push_str("\x1b[<16u\x1b[?1049l\x1b[<16u\x1b[H\x1b[2J");
        }
        out.push_str("\x1b[?6l\x1b[r");
        self.write_tabs(&mut out);
        self.write_grid(&mut out, &self.main);
        // `?1049h` saves the cursor itself: it goes right after the saved cursor is set up. It
        // also clears with the saved pen's background: clear again with the default one.
        let enter_alt = if self.alt.is_some() {
            "\x1b[?1049h\x1b[m\x1b[2J"
        } else {
            ""
        };
        write_kitty(&mut out, &self.kitty_main);
        write_saved(&mut out, &self.saved_main, self, &self.main, enter_alt);
        if let Some(alt) = &self.alt {
            self.write_grid(&mut out, alt);
            write_saved(&mut out, &self.saved_alt, self, alt, "");
            write_kitty(&mut out, &self.kitty_alt);
        }
        self.write_cursor(&mut out);
        self.write_modes(&mut out);
        self.write_title(&mut out);
        self.write_pen(&mut out, &self.cur.pen);
        out.into_bytes()
    }

    fn write_tabs(&self, out: &mut String) {
        if self.tabs == default_tabs(self.cols) {
            return;
        }
        out.push_str("\x1b[3g");
        for (c, _) in self.tabs.iter().enumerate().filter(|(_, stop)| **stop) {
            let _ = write!(out, "\x1b[1;{}H\x1bH", c + 1);
        }
    }

    /// Every row with its attributes; a soft-wrapped row runs on into the next so the target
    /// keeps the wrap (and so the line) too.
    fn write_grid(&self, out: &mut String, grid: &Grid) {
        let mut run_on = false;
        for (i, row) in grid.rows.iter().enumerate() {
            if !run_on && row.cells.is_empty() {
                continue;
            }
            if !run_on {
                let _ = write!(out, "\x1b[{};1H", i + 1);
            }
            // A wide char wrapped to the next row left a blank behind; the target terminal
            // recreates it only if that row still starts with a wide char, and with that char's
            // style.
            let last = row.cells.last().copied();
            let leaves_blank = last.is_some_and(|c| c.flags & LEADING_SPACER != 0);
            let next_fits = grid.rows.get(i + 1).is_some_and(|n| {
                let first = n.cell(0);
                first.flags & WIDE != 0 && last.is_some_and(|l| l.style == first.style)
            });
            run_on = row.wrapped && i + 1 < grid.rows.len() && (next_fits || !leaves_blank);
            self.render_cells(out, &row.cells, !run_on, true);
        }
    }

    fn write_pen(&self, out: &mut String, pen: &Style) {
        if *pen != Style::default() {
            write_sgr(out, pen, false);
        }
        if pen.link() != 0 {
            write_link(out, &self.links, pen.link());
        }
    }

    /// Margins, origin mode, and the cursor itself; a pending wrap is recreated by printing
    /// the last cell again.
    fn write_cursor(&self, out: &mut String) {
        let (top, bottom) = (self.top, self.bottom);
        if (top, bottom) != (0, self.rows - 1) {
            let _ = write!(out, "\x1b[{};{}r", top + 1, bottom + 1);
        }
        let base = if self.modes.origin {
            out.push_str("\x1b[?6h");
            top
        } else {
            0
        };
        let cur = &self.cur;
        let grid = self.alt.as_ref().unwrap_or(&self.main);
        self.write_position(out, grid, cur, cur.row.saturating_sub(base) + 1);
        write_charsets(out, &cur.charsets);
    }

    /// Moves to `cur` (`row` is 1-based, relative to any origin); a pending wrap is recreated
    /// by printing the cell under the cursor again, which leaves the pen plain.
    fn write_position(&self, out: &mut String, grid: &Grid, cur: &Cursor, row: usize) {
        let Some(cells) = grid.rows.get(cur.row).filter(|_| cur.pending_wrap) else {
            let _ = write!(out, "\x1b[{row};{}H", cur.col + 1);
            return;
        };
        let mut col = cur.col;
        let mut cell = cells.cell(col);
        if cell.flags & SPACER != 0 && col > 0 {
            col -= 1;
            cell = cells.cell(col);
        }
        let _ = write!(out, "\x1b[{row};{}H", col + 1);
        let style = self.styles.get(cell.style);
        write_sgr(out, style, false);
        if style.link() != 0 {
            write_link(out, &self.links, style.link());
        }
        self.graphemes.push_cell(out, &cell);
        out.push_str("\x1b[m");
        if style.link() != 0 {
            write_link(out, &self.links, 0);
        }
    }

    fn write_modes(&self, out: &mut String) {
        let m = &self.modes;
        let flags = [
            (m.app_cursor, "\x1b[?1h"),
            (m.app_keypad, "\x1b="),
            (m.focus_reporting, "\x1b[?1004h"),
            (m.alternate_scroll, "\x1b[?1007h"),
            (m.bracketed_paste, "\x1b[?2004h"),
            (!m.autowrap, "\x1b[?7l"),
            (m.insert, "\x1b[4h"),
            (m.newline, "\x1b[20h"),
            (!m.cursor_visible, "\x1b[?25l"),
        ];
        for (on, seq) in flags {
            if on {
                out.push_str(seq);
            }
        }
        if m.mouse != 0 {
            let _ = write!(out, "\x1b[?{}h", m.mouse);
        }
        if m.mouse_encoding != 0 {
            let _ = write!(out, "\x1b[?{}h", m.mouse_encoding);
        }
        if m.cursor_style != 0 {
            let _ = write!(out, "\x1b[{} q", m.cursor_style);
        }
        if m.modify_other_keys != 0 {
            let _ = write!(out, "\x1b[>4;{}m", m.modify_other_keys);
        }
    }

    fn write_title(&self, out: &mut String) {
        let clean = |t: &str| t.replace(|c: char| c.is_control(), "");
        for title in self.title_stack() {
            let _ = write!(out, "\x1b]2;{}\x07\x1b[22;0t", clean(title));
        }
        if !self.title.is_empty() || !self.title_stack().is_empty() {
            let _ = write!(out, "\x1b]2;{}\x07", clean(&self.title));
        }
    }
}

/// A saved cursor: go there with its pen and charsets, save, run `then` (which may save again),
/// and leave pen and charsets plain for what is drawn next.
fn write_saved(out: &mut String, saved: &Cursor, engine: &Engine, grid: &Grid, then: &str) {
    // Origin mode is saved with the cursor. Set before the margins are, it homes the cursor
    // and leaves CUP absolute.
    if saved.origin {
        out.push_str("\x1b[?6h");
    }
    // DECSC keeps a pending wrap too.
    engine.write_position(out, grid, saved, saved.row + 1);
    engine.write_pen(out, &saved.pen);
    write_charsets(out, &saved.charsets);
    out.push_str("\x1b7");
    out.push_str(then);
    out.push_str("\x1b[m\x1b(B\x1b)B\x0f");
    if saved.origin {
        out.push_str("\x1b[?6l");
    }
    if saved.pen.link() != 0 {
        write_link(out, &engine.links, 0);
    }
}

fn write_charsets(out: &mut String, sets: &Charsets) {
    if *sets == Charsets::default() {
        out.push_str("\x1b(B\x0f");
        return;
    }
    for (i, set) in sets.sets.iter().enumerate() {
        let _ = write!(out, "\x1b{}{}", ['(', ')', '*', '+'][i], set.designator());
    }
    out.push_str(["\x0f", "\x0e", "\x1bn", "\x1bo"][sets.active as usize & 3]);
}

fn write_kitty(out: &mut String, stack: &[u16]) {
    for flags in stack {
        let _ = write!(out, "\x1b[>{flags}u");
    }
}
