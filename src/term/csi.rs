//! CSI sequences: cursor movement, editing, erasing, SGR, modes, margins and the queries.

use vte::Params;

use super::answers::Query;
use super::grid::Cell;
use super::style::PROTECTED;
use super::{Engine, MAX_KITTY_STACK};

/// Parameter `i` (0-based), treating 0 and absent alike as `default`.
fn arg(params: &Params, i: usize, default: usize) -> usize {
    match params.iter().nth(i).and_then(|p| p.first()) {
        Some(&0) | None => default,
        Some(&n) => n as usize,
    }
}

/// Parameter `i` as given (0 when absent).
fn raw(params: &Params, i: usize) -> u16 {
    params
        .iter()
        .nth(i)
        .and_then(|p| p.first())
        .copied()
        .unwrap_or(0)
}

impl Engine {
    pub(super) fn csi(&mut self, params: &Params, inter: &[u8], action: char) {
        match inter {
            [] => self.csi_plain(params, action),
            [b'?'] => self.csi_private(params, action),
            [b'>'] => self.csi_greater(params, action),
            [b'<'] if action == 'u' => {
                let n = arg(params, 0, 1);
                let stack = self.kitty_stack_mut();
                stack.truncate(stack.len().saturating_sub(n));
            }
            [b'='] if action == 'u' => self.kitty_set(raw(params, 0), arg(params, 1, 1)),
            [b'='] if action == 'c' && raw(params, 0) == 0 => self.answer_unit_id(),
            [b'?', b'$'] if action == 'p' => self.answer_mode(true, raw(params, 0)),
            [b'$'] if action == 'p' => self.answer_mode(false, raw(params, 0)),
            [b' '] if action == 'q' => self.modes.cursor_style = raw(params, 0).min(6) as u8,
            [b'!'] if action == 'p' => self.soft_reset(),
            [b'"'] if action == 'q' => {
                let mut pen = self.cur.pen;
                if raw(params, 0) == 1 {
                    pen.add(PROTECTED);
                } else {
                    pen.remove(PROTECTED);
                }
                self.set_pen(pen);
            }
            _ => {}
        }
    }

    /// Editing and erasing (ICH, DCH, ECH, IL, DL, ED, EL) leave a pending wrap as it is, as
    /// alacritty does: only cursor movement clears it.
    fn csi_plain(&mut self, params: &Params, action: char) {
        let n = arg(params, 0, 1);
        match action {
            '@' => {
                let (row, col, style) = (self.cur.row, self.cur.col, self.erase_style());
                self.grid_mut().insert_cells(row, col, n, style);
            }
            'A' => self.move_up(n),
            'B' | 'e' => self.move_down(n),
            'C' | 'a' => self.goto_col(self.cur.col.saturating_add(n)),
            'D' => self.goto_col(self.cur.col.saturating_sub(n)),
            'E' => {
                self.move_down(n);
                self.carriage_return();
            }
            'F' => {
                self.move_up(n);
                self.carriage_return();
            }
            'G' | '`' => self.goto_col(n - 1),
            'H' | 'f' => self.goto(n - 1, arg(params, 1, 1) - 1),
            'I' => self.tab_forward(n),
            'J' => self.erase_display(raw(params, 0)),
            'K' => self.erase_line(raw(params, 0)),
            'L' => self.insert_lines(n),
            'M' => self.delete_lines(n),
            'P' => {
                let (row, col, style) = (self.cur.row, self.cur.col, self.erase_style());
                self.grid_mut().delete_cells(row, col, n, style);
            }
            'S' => self.scroll_up(n),
            'T' => self.scroll_down(n),
            'X' => {
                let (row, col, style, cols) =
                    (self.cur.row, self.cur.col, self.erase_style(), self.cols);
                self.grid_mut().rows[row].erase(col, col.saturating_add(n), style, cols);
            }
            'Z' => self.tab_backward(n),
            'b' => self.repeat(n),
            'c' if raw(params, 0) == 0 => self.answer(Query::PrimaryAttributes),
            'd' => self.goto_row(n - 1),
            'g' => match raw(params, 0) {
                0 => self.tabs[self.cur.col] = false,
                3 => self.tabs.fill(false),
                _ => {}
            },
            'h' | 'l' => {
                for p in params.iter() {
                    self.set_ansi_mode(p.first().copied().unwrap_or(0), action == 'h');
                }
            }
            'm' => self.sgr(params.iter()),
            'n' => match raw(params, 0) {
                5 => self.answer(Query::Status),
                6 => self.answer(Query::CursorPosition { private: false }),
                _ => {}
            },
            'r' => self.set_margins(arg(params, 0, 1), arg(params, 1, self.rows)),
            's' => self.save_cursor(),
            'u' => self.restore_cursor(),
            't' => match (raw(params, 0), raw(params, 1)) {
                (22, 0 | 2) => self.push_title(),
                (23, 0 | 2) => self.pop_title(),
                (op @ (14 | 16 | 18), _) => self.answer_window(op),
                _ => {}
            },
            _ => {}
        }
    }

    fn csi_private(&mut self, params: &Params, action: char) {
        match action {
            'h' | 'l' => {
                for p in params.iter() {
                    self.set_private_mode(p.first().copied().unwrap_or(0), action == 'h');
                }
            }
            'n' if raw(params, 0) == 6 => self.answer(Query::CursorPosition { private: true }),
            'n' if raw(params, 0) == 996 => self.answer_color_scheme(),
            'u' => self.answer_kitty_flags(),
            'J' => self.selective_erase_display(raw(params, 0)),
            'K' => self.selective_erase_line(raw(params, 0)),
            _ => {}
        }
    }

    /// DECSED: like ED, but cells written while DECSCA protection was on stay (xterm's
    /// behaviour; alacritty ignores DECSED, see tests/recordings.rs).
    fn selective_erase_display(&mut self, mode: u16) {
        let (row, col, rows, cols) = (self.cur.row, self.cur.col, self.rows, self.cols);
        let (start, end) = match mode {
            0 => (row * cols + col, rows * cols),
            1 => (0, row * cols + col + 1),
            2 => (0, rows * cols),
            _ => return,
        };
        for r in start / cols..end.div_ceil(cols) {
            let from = if r == start / cols { start % cols } else { 0 };
            let to = (end - r * cols).min(cols);
            self.selective_erase(r, from, to);
        }
    }

    /// DECSEL: like EL, sparing protected cells.
    fn selective_erase_line(&mut self, mode: u16) {
        let (row, col, cols) = (self.cur.row, self.cur.col, self.cols);
        match mode {
            0 => self.selective_erase(row, col, cols),
            1 => self.selective_erase(row, 0, col + 1),
            2 => self.selective_erase(row, 0, cols),
            _ => {}
        }
    }

    fn selective_erase(&mut self, row: usize, from: usize, to: usize) {
        let (cols, style) = (self.cols, self.erase_style());
        let grid = self.alt.as_mut().unwrap_or(&mut self.main);
        let Some(r) = grid.rows.get_mut(row) else {
            return;
        };
        if r.cells.is_empty() {
            return;
        }
        for cell in &mut r.cells_mut(cols)[from..to.min(cols)] {
            if !self.styles.get(cell.style).has(PROTECTED) {
                *cell = Cell::blank(style);
            }
        }
    }

    fn csi_greater(&mut self, params: &Params, action: char) {
        match action {
            'c' if raw(params, 0) == 0 => self.answer(Query::SecondaryAttributes),
            'q' if raw(params, 0) == 0 => self.answer_version(),
            'm' if raw(params, 0) == 4 => {
                self.modes.modify_other_keys = raw(params, 1).min(3) as u8
            }
            'u' => {
                let flags = raw(params, 0);
                let stack = self.kitty_stack_mut();
                if stack.len() >= MAX_KITTY_STACK {
                    stack.remove(0);
                }
                stack.push(flags);
            }
            _ => {}
        }
    }

    fn kitty_set(&mut self, flags: u16, mode: usize) {
        let stack = self.kitty_stack_mut();
        if stack.is_empty() {
            stack.push(0);
        }
        if let Some(top) = stack.last_mut() {
            *top = match mode {
                2 => *top | flags,
                3 => *top & !flags,
                _ => flags,
            };
        }
    }

    fn set_ansi_mode(&mut self, mode: u16, on: bool) {
        match mode {
            4 => self.modes.insert = on,
            20 => self.modes.newline = on,
            _ => {}
        }
    }

    fn set_private_mode(&mut self, mode: u16, on: bool) {
        let m = &mut self.modes;
        match mode {
            1 => m.app_cursor = on,
            6 => {
                m.origin = on;
                self.goto(0, 0);
            }
            7 => m.autowrap = on,
            25 => m.cursor_visible = on,
            9 | 1000 | 1002 | 1003 => {
                if on {
                    m.mouse = mode;
                } else if m.mouse == mode {
                    m.mouse = 0;
                }
            }
            1005 | 1006 | 1015 | 1016 => {
                if on {
                    m.mouse_encoding = mode;
                } else if m.mouse_encoding == mode {
                    m.mouse_encoding = 0;
                }
            }
            1004 => m.focus_reporting = on,
            1007 => m.alternate_scroll = on,
            2004 => m.bracketed_paste = on,
            2026 => m.synchronized = on,
            47 | 1047 => {
                if on {
                    self.enter_alt();
                } else {
                    self.leave_alt();
                }
            }
            1048 => {
                if on {
                    self.save_cursor();
                } else {
                    self.restore_cursor();
                }
            }
            1049 => self.switch_1049(on),
            _ => {}
        }
    }

    fn switch_1049(&mut self, on: bool) {
        // Already on the alternate screen, `?1049h` does nothing (xterm, alacritty).
        if on && self.alt.is_none() {
            self.save_cursor();
            self.enter_alt();
            self.clear_active();
        } else if !on && self.alt.is_some() {
            self.leave_alt();
            self.restore_cursor();
        }
    }

    fn set_margins(&mut self, top: usize, bottom: usize) {
        let bottom = bottom.min(self.rows);
        if top >= bottom {
            return;
        }
        self.top = top - 1;
        self.bottom = bottom - 1;
        self.goto(0, 0);
    }

    fn erase_display(&mut self, mode: u16) {
        let (row, cols, style) = (self.cur.row, self.cols, self.erase_style());
        match mode {
            0 => {
                let col = self.cur.col;
                let r = &mut self.grid_mut().rows[row];
                r.erase(col, cols, style, cols);
                r.wrapped = false;
                for r in &mut self.grid_mut().rows[row + 1..] {
                    r.clear(style, cols);
                }
            }
            1 => {
                self.erase_line(1);
                for r in &mut self.grid_mut().rows[..row] {
                    r.clear(style, cols);
                }
            }
            2 => {
                for r in &mut self.grid_mut().rows {
                    r.clear(style, cols);
                }
            }
            3 => self.cap.clear_history(),
            _ => {}
        }
    }

    fn erase_line(&mut self, mode: u16) {
        let (row, col, cols, style) = (self.cur.row, self.cur.col, self.cols, self.erase_style());
        // With a wrap pending, xterm erases the last column; alacritty erases nothing. linger
        // follows alacritty (the oracle): the character that filled the row stays.
        if mode == 0 && self.cur.pending_wrap {
            return;
        }
        let r = &mut self.grid_mut().rows[row];
        match mode {
            0 => {
                r.erase(col, cols, style, cols);
                r.wrapped = false;
            }
            1 => r.erase(0, col + 1, style, cols),
            2 => r.clear(style, cols),
            _ => {}
        }
    }

    fn insert_lines(&mut self, n: usize) {
        if self.cur.row < self.top || self.cur.row > self.bottom {
            return;
        }
        let row = self.cur.row;
        self.scroll_down_from(row, n);
    }

    fn delete_lines(&mut self, n: usize) {
        if self.cur.row < self.top || self.cur.row > self.bottom {
            return;
        }
        let row = self.cur.row;
        let style = self.erase_style();
        let bottom = self.bottom;
        let n = n.min(bottom + 1 - row);
        self.grid_mut().scroll_up(row, bottom, n, style);
    }
}
