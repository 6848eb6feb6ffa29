//! Read access to what the engine shows and keeps: cells resolved against the style, link and
//! grapheme tables, rows as text, and the hidden state for equality checks.

use super::grid::{self, Cell};
use super::{Cursor, Engine, Style};

impl Engine {
    /// The visible cell at `row`, `col`.
    pub fn cell(&self, row: usize, col: usize) -> Option<CellView<'_>> {
        let cell = self.grid().rows.get(row)?.cells.get(col).copied();
        if col >= self.cols {
            return None;
        }
        Some(CellView {
            engine: self,
            cell: cell.unwrap_or(grid::BLANK),
        })
    }

    /// How many columns of a soft-wrapped row its line fills: all of them, but the last when
    /// a wide char that did not fit there went on to the next row (that cell was never
    /// printed). `None` for a row that is not wrapped.
    pub fn row_wrap_width(&self, row: usize) -> Option<usize> {
        let r = self.grid().rows.get(row).filter(|r| r.wrapped)?;
        let skipped = r
            .cells
            .last()
            .is_some_and(|c| c.flags & grid::LEADING_SPACER != 0);
        Some(self.cols - usize::from(skipped))
    }

    /// Text of a visible row, trailing blanks trimmed; with `ansi`, self-contained SGR.
    pub fn row_text(&self, row: usize, ansi: bool) -> String {
        let mut out = String::new();
        if let Some(r) = self.grid().rows.get(row) {
            self.render_cells(&mut out, &r.cells, true, ansi);
        }
        if !ansi {
            out.truncate(out.trim_end_matches(' ').len());
        }
        out
    }

    /// Rows of the main screen (also while the alternate one is shown), SGR kept.
    pub fn main_screen_lines(&self) -> Vec<String> {
        let mut lines = Vec::with_capacity(self.rows);
        for row in &self.main.rows {
            let mut out = String::new();
            self.render_cells(&mut out, &row.cells, true, true);
            lines.push(out);
        }
        lines
    }

    /// The DECSC-saved cursor of the main or the alternate screen.
    pub fn saved_cursor(&self, alternate: bool) -> &Cursor {
        if alternate {
            &self.saved_alt
        } else {
            &self.saved_main
        }
    }

    /// The state a screen does not show (the main screen under the alternate one, wrap flags,
    /// saved cursors, tab stops, kitty and title stacks), as text, for equality checks.
    pub fn debug_state(&self) -> String {
        let mut out = String::new();
        for row in &self.main.rows {
            self.render_cells(&mut out, &row.cells, !row.wrapped, true);
            out.push_str(if row.wrapped { "+\n" } else { "\n" });
        }
        let hidden = (
            self.saved_main,
            self.saved_alt,
            &self.tabs,
            &self.kitty_main,
            &self.kitty_alt,
            &self.titles,
        );
        out.push_str(&format!("{hidden:?}"));
        out
    }
}

/// One visible cell, resolved against the engine's tables.
pub struct CellView<'a> {
    engine: &'a Engine,
    cell: Cell,
}

impl CellView<'_> {
    pub fn text(&self) -> String {
        let mut s = String::new();
        if self.cell.flags & grid::SPACER == 0 {
            self.engine.graphemes.push_cell(&mut s, &self.cell);
        }
        s
    }

    pub fn style(&self) -> Style {
        *self.engine.styles.get(self.cell.style)
    }

    pub fn wide(&self) -> bool {
        self.cell.flags & grid::WIDE != 0
    }

    /// The right half of a wide character (no text of its own).
    pub fn spacer(&self) -> bool {
        self.cell.flags & grid::SPACER != 0
    }

    /// The OSC 8 URI of the cell, if linked.
    pub fn link(&self) -> Option<&str> {
        let style = self.engine.styles.get(self.cell.style);
        self.engine.links.get(style.link()).map(|(_, uri)| uri)
    }
}
