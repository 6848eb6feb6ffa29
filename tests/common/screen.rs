//! The user's terminal in tests: alacritty_terminal (an independent engine, not linger's) fed
//! everything the client wrote, and snapshots of what it shows.

use alacritty_terminal::event::VoidListener;
use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::index::{Column, Line};
use alacritty_terminal::term::test::TermSize;
use alacritty_terminal::term::{Config, TermMode};
use alacritty_terminal::vte::ansi::{self, Processor, StdSyncHandler};

/// A colour as the emulated terminal keeps it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Color {
    Default,
    Idx(u8),
    Rgb(u8, u8, u8),
}

pub struct Emulator {
    term: alacritty_terminal::Term<VoidListener>,
    parser: Processor<StdSyncHandler>,
}

impl Emulator {
    pub fn new(rows: u16, cols: u16) -> Emulator {
        let size = TermSize::new(cols as usize, rows as usize);
        Emulator {
            term: alacritty_terminal::Term::new(Config::default(), &size, VoidListener),
            parser: Processor::new(),
        }
    }

    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.term
            .resize(TermSize::new(cols as usize, rows as usize));
    }

    pub fn process(&mut self, bytes: &[u8]) {
        self.parser.advance(&mut self.term, bytes);
    }

    /// The rows scrolled off the top into the terminal's own scrollback, oldest first.
    pub fn scrollback(&self) -> Vec<String> {
        let grid = self.term.grid();
        let history = grid.history_size() as i32;
        (1..=history)
            .rev()
            .map(|back| {
                let row = &grid[Line(-back)];
                let text: String = (0..grid.columns()).map(|c| row[Column(c)].c).collect();
                text.trim_end().to_string()
            })
            .collect()
    }

    pub fn screen(&self) -> Screen {
        let grid = self.term.grid();
        let (rows, cols) = (grid.screen_lines(), grid.columns());
        let mut cells = Vec::with_capacity(rows);
        for r in 0..rows {
            let row = &grid[Line(r as i32)];
            let line: Vec<Cell> = (0..cols)
                .map(|c| {
                    let cell = &row[Column(c)];
                    let mut text = String::new();
                    if !cell
                        .flags
                        .contains(alacritty_terminal::term::cell::Flags::WIDE_CHAR_SPACER)
                    {
                        text.push(if cell.c == '\t' { ' ' } else { cell.c });
                        text.extend(cell.zerowidth().into_iter().flatten());
                    }
                    Cell {
                        text,
                        fg: color(cell.fg),
                        bg: color(cell.bg),
                        flags: cell.flags.bits(),
                    }
                })
                .collect();
            cells.push(line);
        }
        let cursor = grid.cursor.point;
        let mode = self.term.mode();
        Screen {
            cells,
            cursor: (cursor.line.0.max(0) as u16, cursor.column.0 as u16),
            alternate: mode.contains(TermMode::ALT_SCREEN),
            bracketed_paste: mode.contains(TermMode::BRACKETED_PASTE),
            cursor_visible: mode.contains(TermMode::SHOW_CURSOR),
            mode: *mode,
        }
    }
}

fn color(c: ansi::Color) -> Color {
    match c {
        ansi::Color::Named(n) if (n as usize) < 16 => Color::Idx(n as u8),
        ansi::Color::Named(_) => Color::Default,
        ansi::Color::Indexed(i) => Color::Idx(i),
        ansi::Color::Spec(rgb) => Color::Rgb(rgb.r, rgb.g, rgb.b),
    }
}

#[derive(Clone, Debug)]
pub struct Cell {
    text: String,
    fg: Color,
    bg: Color,
    /// alacritty_terminal's cell flags (`term::cell::Flags`): bold, italic, underlines...
    flags: u16,
}

impl Cell {
    pub fn contents(&self) -> &str {
        &self.text
    }

    pub fn fgcolor(&self) -> Color {
        self.fg
    }

    pub fn bgcolor(&self) -> Color {
        self.bg
    }

    /// Whether the cell has every one of `flags`.
    pub fn has(&self, flags: alacritty_terminal::term::cell::Flags) -> bool {
        alacritty_terminal::term::cell::Flags::from_bits_truncate(self.flags).contains(flags)
    }
}

/// What the emulated terminal shows at one moment.
#[derive(Clone, Debug)]
pub struct Screen {
    cells: Vec<Vec<Cell>>,
    cursor: (u16, u16),
    alternate: bool,
    bracketed_paste: bool,
    cursor_visible: bool,
    mode: TermMode,
}

impl Screen {
    /// Whether the terminal has every one of these modes set.
    pub fn mode_has(&self, modes: TermMode) -> bool {
        self.mode.contains(modes)
    }

    pub fn size(&self) -> (u16, u16) {
        (
            self.cells.len() as u16,
            self.cells.first().map_or(0, |r| r.len()) as u16,
        )
    }

    /// Each row's text, trailing blanks trimmed.
    pub fn rows(&self) -> Vec<String> {
        self.cells
            .iter()
            .map(|r| {
                let s: String = r.iter().map(|c| c.text.as_str()).collect();
                s.trim_end().to_string()
            })
            .collect()
    }

    /// The rows joined by newlines, trailing empty rows left out.
    pub fn contents(&self) -> String {
        let mut rows = self.rows();
        while rows.last().is_some_and(|r| r.is_empty()) {
            rows.pop();
        }
        rows.join("\n")
    }

    pub fn cell(&self, row: u16, col: u16) -> Option<&Cell> {
        self.cells.get(row as usize)?.get(col as usize)
    }

    pub fn cursor_position(&self) -> (u16, u16) {
        self.cursor
    }

    pub fn alternate_screen(&self) -> bool {
        self.alternate
    }

    pub fn bracketed_paste(&self) -> bool {
        self.bracketed_paste
    }

    pub fn hide_cursor(&self) -> bool {
        !self.cursor_visible
    }
}
