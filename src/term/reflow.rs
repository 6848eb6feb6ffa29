//! Resizing: the main screen's soft-wrapped lines rejoin and rewrap at the new width with the
//! cursor kept on its character; rows above the cursor go to history when the screen gets
//! shorter, and come back from history when it gets taller. The alternate screen is cut or
//! padded, never reflowed (its app redraws it).

use super::capture::render_cells;
use super::grid::{BLANK, Cell, Grid, LEADING_SPACER, Row, SPACER, WIDE};
use super::{Engine, default_tabs};

/// A logical line being reflowed, and the cursor's offset in it if it is there.
struct Line {
    cells: Vec<Cell>,
    cursor: Option<usize>,
}

impl Engine {
    pub fn resize(&mut self, rows: usize, cols: usize) {
        let (rows, cols) = (rows.max(1), cols.max(1));
        if (rows, cols) == (self.rows, self.cols) {
            return;
        }
        let on_main = self.alt.is_none();
        let at = if on_main { self.cur } else { self.saved_main };
        let (row, col) = self.reflow_main(rows, cols, (at.row, at.col));
        let target = if on_main {
            &mut self.cur
        } else {
            &mut self.saved_main
        };
        target.row = row;
        target.col = col;
        if let Some(mut alt) = self.alt.take() {
            let shift = (self.cur.row + 1).saturating_sub(rows);
            cut_or_pad(&mut alt, rows, cols, shift);
            self.cur.row -= shift;
            self.alt = Some(alt);
        }
        self.rows = rows;
        self.cols = cols;
        self.top = 0;
        self.bottom = rows - 1;
        let old_tabs = std::mem::replace(&mut self.tabs, default_tabs(cols));
        for (c, stop) in old_tabs.into_iter().enumerate().take(cols) {
            self.tabs[c] = stop;
        }
        for cursor in [&mut self.cur, &mut self.saved_main, &mut self.saved_alt] {
            cursor.row = cursor.row.min(rows - 1);
            cursor.col = cursor.col.min(cols - 1);
            if cursor.col < cols - 1 {
                cursor.pending_wrap = false;
            }
        }
    }

    /// Rewraps the main screen at `cols` into `rows` rows; returns where `cursor` went.
    fn reflow_main(&mut self, rows: usize, cols: usize, cursor: (usize, usize)) -> (usize, usize) {
        let old_rows = self.main.rows.len();
        let mut lines = self.logical_lines(cursor);
        let old_used = used_rows(&self.main, cursor.0);
        if self.cap.line_open()
            && cols != self.cols
            && let Some(prefix) = self.cap.pull_back()
        {
            let mut cells = self.parse_line(&prefix);
            let extra = cells.len();
            if let Some(first) = lines.first_mut() {
                cells.append(&mut first.cells);
                first.cells = cells;
                first.cursor = first.cursor.map(|o| o + extra);
            }
        }
        let mut out: Vec<Row> = Vec::new();
        let mut at = (0, 0);
        for line in &lines {
            if let Some(pos) = wrap_into(&mut out, line, cols) {
                at = pos;
            }
        }
        // Rows freed at the top (taller screen, or lines rejoined) come back from history.
        let mut budget = rows.saturating_sub(old_rows) + old_used.saturating_sub(out.len());
        while budget > 0 && out.len() < rows {
            let Some(line) = self.cap.history.last().map(str::to_string) else {
                break;
            };
            let cells = self.parse_line(&line);
            let mut pulled = Vec::new();
            wrap_into(
                &mut pulled,
                &Line {
                    cells,
                    cursor: None,
                },
                cols,
            );
            if pulled.len() > budget || out.len() + pulled.len() > rows {
                break;
            }
            self.cap.pull_back();
            budget -= pulled.len();
            at.0 += pulled.len();
            pulled.append(&mut out);
            out = pulled;
        }
        // Rows above the cursor that no longer fit leave for history; below it, they go.
        let excess = out.len().saturating_sub(rows).min(at.0);
        for row in out.drain(..excess) {
            self.capture_detached(&row);
        }
        at.0 -= excess;
        out.truncate(rows);
        out.resize(rows, Row::default());
        self.main = Grid { rows: out, cols };
        at
    }

    fn capture_detached(&mut self, row: &Row) {
        let mut text = String::new();
        render_cells(
            &mut text,
            &row.cells,
            !row.wrapped,
            true,
            &self.styles,
            &self.links,
            &self.graphemes,
        );
        self.cap.push_row(&text, row.wrapped);
    }

    /// The main screen as logical lines, through the cursor's line or the last text.
    fn logical_lines(&self, cursor: (usize, usize)) -> Vec<Line> {
        let grid = &self.main;
        let last = used_rows(grid, cursor.0);
        let mut lines: Vec<Line> = Vec::new();
        let mut open = false;
        for (i, row) in grid.rows.iter().take(last).enumerate() {
            if !open {
                lines.push(Line {
                    cells: Vec::new(),
                    cursor: None,
                });
            }
            let Some(line) = lines.last_mut() else { break };
            let start = line.cells.len();
            if row.wrapped {
                let mut cells = row.cells.clone();
                cells.resize(grid.cols, BLANK);
                if cells.last().is_some_and(|c| c.flags & LEADING_SPACER != 0) {
                    cells.pop();
                }
                line.cells.extend(cells);
            } else {
                line.cells
                    .extend_from_slice(&row.cells[..row.used().min(row.cells.len())]);
            }
            if i == cursor.0 {
                line.cursor = Some(start + cursor.1);
            }
            open = row.wrapped;
        }
        lines
    }
}

/// Rows in use: through the last row with text, and at least through the cursor's row.
fn used_rows(grid: &Grid, cursor_row: usize) -> usize {
    let last_text = grid
        .rows
        .iter()
        .rposition(|r| r.used() > 0 || r.wrapped)
        .map_or(0, |i| i + 1);
    last_text.max(cursor_row + 1).min(grid.rows.len())
}

/// Appends `line` wrapped at `cols`; returns the cursor's (row, col) if it is in this line.
fn wrap_into(out: &mut Vec<Row>, line: &Line, cols: usize) -> Option<(usize, usize)> {
    let first = out.len();
    let mut row: Vec<Cell> = Vec::with_capacity(cols);
    let mut cursor = None;
    let mut i = 0;
    let cells = &line.cells;
    while i < cells.len() {
        let mut cell = cells[i];
        if cell.flags & SPACER != 0 {
            // The half of a wide char whose left half was already placed (or lost).
            i += 1;
            continue;
        }
        if cell.flags & WIDE != 0 && cols < 2 {
            cell = Cell::blank(cell.style);
        }
        let wide = cell.flags & WIDE != 0;
        let width = if wide { 2 } else { 1 };
        if row.len() + width > cols {
            if row.len() < cols {
                row.push(Cell::new(' ', 0, LEADING_SPACER));
            }
            out.push(Row {
                cells: std::mem::take(&mut row),
                wrapped: true,
            });
        }
        if line.cursor.is_some_and(|o| o == i || (wide && o == i + 1)) {
            cursor = Some((out.len(), row.len()));
        }
        row.push(cell);
        if wide {
            row.push(Cell::new(' ', cell.style, SPACER));
        }
        i += 1;
    }
    if !row.is_empty() {
        row.resize(cols, BLANK);
    }
    out.push(Row {
        cells: row,
        wrapped: false,
    });
    if cursor.is_none()
        && let Some(o) = line.cursor
    {
        // Past the text: on the line's last row, as far right as it fits.
        let last = out.len() - 1;
        let start: usize = out[first..last].iter().map(|r| r.cells.len()).sum();
        cursor = Some((last, o.saturating_sub(start).min(cols - 1)));
    }
    cursor
}

/// Cuts or pads the alternate screen to `rows` x `cols`, dropping `shift` rows at the top so
/// the cursor stays on screen.
fn cut_or_pad(grid: &mut Grid, rows: usize, cols: usize, shift: usize) {
    grid.rows.drain(..shift.min(grid.rows.len()));
    grid.rows.resize(rows, Row::default());
    for row in &mut grid.rows {
        if !row.cells.is_empty() {
            row.cells.resize(cols, BLANK);
            if row.cells[cols - 1].flags & WIDE != 0 {
                row.cells[cols - 1] = Cell::blank(row.cells[cols - 1].style);
            }
        }
    }
    grid.cols = cols;
}
