//! linger's terminal engine: a `vte` parser driving two screens (the main kept under the
//! alternate), the cursor, modes and the history capture of rows leaving the main screen.

mod answers;
mod capture;
mod charset;
mod csi;
mod grid;
mod identity;
mod perform;
mod reflow;
mod replay;
mod signals;
mod style;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_more;
mod text;
mod view;

pub use capture::strip_sgr;
pub use charset::{Charset, Charsets};
pub use identity::Profile;
pub use signals::Signal;
pub use style::{BLINK, BOLD, DIM, HIDDEN, INVERSE, ITALIC, OVERLINE, STRIKE};
pub use style::{Color, Style, Underline};
pub use view::CellView;

use crate::history::History;
use grid::{Graphemes, Grid};
use style::{LinkTable, StyleTable};

/// Where the next character goes and how it looks; also what DECSC saves.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cursor {
    pub row: usize,
    pub col: usize,
    /// The last column was written with autowrap on: the next printable wraps first.
    pub pending_wrap: bool,
    pub pen: Style,
    pub charsets: Charsets,
    /// Origin mode, saved and restored with the cursor as xterm does.
    pub origin: bool,
}

/// Mouse tracking modes (`?9`, `?1000`, `?1002`, `?1003`) and encodings; 0 means off/default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Modes {
    pub app_cursor: bool,
    pub app_keypad: bool,
    pub autowrap: bool,
    pub origin: bool,
    pub insert: bool,
    pub newline: bool,
    pub cursor_visible: bool,
    pub bracketed_paste: bool,
    pub focus_reporting: bool,
    pub alternate_scroll: bool,
    pub synchronized: bool,
    pub mouse: u16,
    pub mouse_encoding: u16,
    /// DECSCUSR shape, 0 = the terminal's default.
    pub cursor_style: u8,
    /// modifyOtherKeys level (`CSI > 4 ; n m`).
    pub modify_other_keys: u8,
}

impl Default for Modes {
    fn default() -> Modes {
        Modes {
            app_cursor: false,
            app_keypad: false,
            autowrap: true,
            origin: false,
            insert: false,
            newline: false,
            cursor_visible: true,
            bracketed_paste: false,
            focus_reporting: false,
            alternate_scroll: false,
            synchronized: false,
            mouse: 0,
            mouse_encoding: 0,
            cursor_style: 0,
            modify_other_keys: 0,
        }
    }
}

/// Longest title kept, in bytes.
pub const MAX_TITLE_BYTES: usize = 4096;
/// Deepest title stack (`CSI 22 t`); pushing more drops the oldest.
pub const MAX_TITLE_STACK: usize = 10;
/// Deepest kitty keyboard flags stack per screen; pushing more drops the oldest.
pub const MAX_KITTY_STACK: usize = 16;
/// Largest count honoured by REP: the largest a CSI parameter can be anyway, named so the
/// bound is visible.
const MAX_REPEAT: usize = 65535;

/// The terminal state the parser drives.
pub struct Engine {
    rows: usize,
    cols: usize,
    main: Grid,
    /// Allocated only while the alternate screen is active.
    alt: Option<Grid>,
    cur: Cursor,
    saved_main: Cursor,
    /// Kept across alternate-screen sessions, as xterm and alacritty do.
    saved_alt: Cursor,
    /// Scroll region, inclusive rows.
    top: usize,
    bottom: usize,
    modes: Modes,
    tabs: Vec<bool>,
    styles: StyleTable,
    links: LinkTable,
    graphemes: Graphemes,
    /// Interned ids of the pen and of its erase style (BCE), each valid while its flag says
    /// so: interned when first used after a change, so SGRs that nothing is printed with
    /// (a line's closing reset, one of several in a row) cost no lookup.
    pen_id: u16,
    pen_valid: bool,
    erase_id: u16,
    /// The style `erase_id` is (the pen's background only, when it was interned).
    erased: Style,
    erase_valid: bool,
    title: String,
    titles: Vec<String>,
    kitty_main: Vec<u16>,
    kitty_alt: Vec<u16>,
    cap: capture::Capture,
    answers: Vec<u8>,
    /// What the terminal reports about itself.
    profile: Profile,
    /// Signals since the last `take_signals`, at most [`MAX_SIGNALS`].
    signals: Vec<Signal>,
    /// A DCS query being collected, with its payload so far.
    dcs: Option<(identity::DcsQuery, Vec<u8>)>,
    /// The last printed char, for REP.
    last_printed: Option<char>,
    /// The parser is known to be in its ground state (a CSI or ESC sequence just ended): the
    /// plain text that follows is printed without it (see text.rs).
    ground: bool,
    test_hooks: bool,
}

/// The engine and its parser.
pub struct Term {
    parser: vte::Parser,
    engine: Engine,
    /// The start of a UTF-8 sequence the last chunk ended in (at most 3 bytes).
    utf8_tail: Vec<u8>,
}

impl Term {
    pub fn new(rows: u16, cols: u16, history: History) -> Term {
        Term {
            parser: vte::Parser::new(),
            engine: Engine::new(rows.max(1) as usize, cols.max(1) as usize, history),
            utf8_tail: Vec::new(),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }
}

impl Engine {
    pub fn new(rows: usize, cols: usize, history: History) -> Engine {
        Engine {
            rows,
            cols,
            main: Grid::new(rows, cols),
            alt: None,
            cur: Cursor::default(),
            saved_main: Cursor::default(),
            saved_alt: Cursor::default(),
            top: 0,
            bottom: rows - 1,
            modes: Modes::default(),
            tabs: default_tabs(cols),
            styles: StyleTable::default(),
            links: LinkTable::default(),
            graphemes: Graphemes::default(),
            pen_id: 0,
            pen_valid: true,
            erased: Style::default(),
            erase_id: 0,
            erase_valid: true,
            title: String::new(),
            titles: Vec::new(),
            kitty_main: Vec::new(),
            kitty_alt: Vec::new(),
            cap: capture::Capture::new(history),
            answers: Vec::new(),
            profile: Profile::default(),
            signals: Vec::new(),
            dcs: None,
            last_printed: None,
            ground: true,
            test_hooks: false,
        }
    }

    /// Sets what the terminal reports about itself (from the client that attached last).
    pub fn set_profile(&mut self, profile: Profile) {
        self.profile = profile;
    }

    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    pub fn set_test_hooks(&mut self, on: bool) {
        self.test_hooks = on;
    }

    pub fn size(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    pub fn cursor(&self) -> &Cursor {
        &self.cur
    }

    pub fn modes(&self) -> &Modes {
        &self.modes
    }

    pub fn alternate_screen(&self) -> bool {
        self.alt.is_some()
    }

    pub fn title(&self) -> &str {
        &self.title
    }

    /// Scroll region as inclusive 0-based rows.
    pub fn scroll_region(&self) -> (usize, usize) {
        (self.top, self.bottom)
    }

    /// Kitty keyboard flags in force (top of the active screen's stack).
    pub fn kitty_flags(&self) -> u16 {
        self.kitty_stack().last().copied().unwrap_or(0)
    }

    pub fn history(&self) -> &History {
        &self.cap.history
    }

    pub fn take_answers(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.answers)
    }

    fn kitty_stack(&self) -> &Vec<u16> {
        if self.alt.is_some() {
            &self.kitty_alt
        } else {
            &self.kitty_main
        }
    }

    fn kitty_stack_mut(&mut self) -> &mut Vec<u16> {
        if self.alt.is_some() {
            &mut self.kitty_alt
        } else {
            &mut self.kitty_main
        }
    }

    fn grid(&self) -> &Grid {
        self.alt.as_ref().unwrap_or(&self.main)
    }

    fn grid_mut(&mut self) -> &mut Grid {
        self.alt.as_mut().unwrap_or(&mut self.main)
    }

    /// `CSI ... m`: `params` are vte's groups (a parameter and its `:` sub-parameters).
    fn sgr<'a>(&mut self, params: impl IntoIterator<Item = &'a [u16]>) {
        let mut pen = self.cur.pen;
        style::apply_sgr(&mut pen, params);
        if pen != self.cur.pen {
            self.set_pen(pen);
        }
    }

    fn set_pen(&mut self, pen: Style) {
        self.cur.pen = pen;
        self.refresh_pen();
    }

    /// The pen changed: its id is looked up when something is written with it.
    fn refresh_pen(&mut self) {
        self.pen_valid = false;
    }

    /// The id of the pen's style, for cells written now.
    #[inline]
    fn pen_style(&mut self) -> u16 {
        if !self.pen_valid {
            let pen = self.cur.pen;
            self.pen_id = self.intern_style(&pen);
            self.pen_valid = true;
        }
        self.pen_id
    }

    /// The style erased cells get (the pen's background only).
    fn erase_style(&mut self) -> u16 {
        // Most SGR changes leave the background alone: the erase style stays.
        let erased = self.cur.pen.erased();
        if !self.erase_valid || erased != self.erased {
            self.erase_id = self.intern_style(&erased);
            self.erased = erased;
            self.erase_valid = true;
        }
        self.erase_id
    }

    /// The id of `style`; when the table is full it is rebuilt from the styles still in use.
    #[inline]
    fn intern_style(&mut self, style: &Style) -> u16 {
        if let Some(id) = self.styles.intern(style) {
            return id;
        }
        self.compact_styles();
        self.styles.intern(style).unwrap_or(0)
    }

    #[cold]
    fn compact_styles(&mut self) {
        let old = std::mem::take(&mut self.styles);
        let mut fresh = StyleTable::default();
        for pass in 0..2 {
            // The first pass counts the styles in use, to size the new table.
            if pass == 1 {
                fresh = old.compacted(fresh.count());
            }
            let grids = std::iter::once(&mut self.main).chain(self.alt.as_mut());
            for grid in grids {
                for row in &mut grid.rows {
                    for cell in &mut row.cells {
                        let id = fresh.intern(old.get(cell.style)).unwrap_or(0);
                        if pass == 1 {
                            cell.style = id;
                        }
                    }
                }
            }
        }
        self.styles = fresh;
        // Ids from the old table mean nothing now: looked up again on next use.
        self.pen_valid = false;
        self.erase_valid = false;
    }

    // ---- cursor movement ----

    fn goto(&mut self, row: usize, col: usize) {
        let (base, max) = if self.modes.origin {
            (self.top, self.bottom)
        } else {
            (0, self.rows - 1)
        };
        self.cur.row = (base + row).min(max);
        self.cur.col = col.min(self.cols - 1);
        self.cur.pending_wrap = false;
    }

    fn goto_col(&mut self, col: usize) {
        self.cur.col = col.min(self.cols - 1);
        self.cur.pending_wrap = false;
    }

    fn goto_row(&mut self, row: usize) {
        let col = self.cur.col;
        self.goto(row, col);
    }

    fn move_up(&mut self, n: usize) {
        let limit = if self.cur.row >= self.top {
            self.top
        } else {
            0
        };
        self.cur.row = self.cur.row.saturating_sub(n).max(limit);
        self.cur.pending_wrap = false;
    }

    fn move_down(&mut self, n: usize) {
        let limit = if self.cur.row <= self.bottom {
            self.bottom
        } else {
            self.rows - 1
        };
        self.cur.row = self.cur.row.saturating_add(n).min(limit);
        self.cur.pending_wrap = false;
    }

    fn carriage_return(&mut self) {
        self.cur.col = 0;
        self.cur.pending_wrap = false;
    }

    fn linefeed(&mut self) {
        if self.cur.row == self.bottom {
            self.scroll_up(1);
        } else if self.cur.row + 1 < self.rows {
            self.cur.row += 1;
        }
        self.cur.pending_wrap = false;
    }

    fn reverse_index(&mut self) {
        if self.cur.row == self.top {
            self.scroll_down(1);
        } else {
            self.cur.row = self.cur.row.saturating_sub(1);
        }
        self.cur.pending_wrap = false;
    }

    /// Scrolls the region up; rows leaving the top of the main screen go to history.
    fn scroll_up(&mut self, n: usize) {
        let top = self.top;
        self.scroll_up_from(top, n);
    }

    fn scroll_up_from(&mut self, top: usize, n: usize) {
        let bottom = self.bottom;
        if top > bottom {
            return;
        }
        let n = n.min(bottom + 1 - top);
        if top == 0 && self.alt.is_none() {
            for i in 0..n {
                self.capture_row(i);
            }
        }
        let style = self.erase_style();
        self.grid_mut().scroll_up(top, bottom, n, style);
    }

    fn scroll_down(&mut self, n: usize) {
        let top = self.top;
        self.scroll_down_from(top, n);
    }

    fn scroll_down_from(&mut self, top: usize, n: usize) {
        let bottom = self.bottom;
        if top > bottom {
            return;
        }
        let style = self.erase_style();
        self.grid_mut().scroll_down(top, bottom, n, style);
    }

    fn tab_forward(&mut self, n: usize) {
        for _ in 0..n {
            let next = (self.cur.col + 1..self.cols).find(|&c| self.tabs[c]);
            self.cur.col = next.unwrap_or(self.cols - 1);
        }
    }

    fn tab_backward(&mut self, n: usize) {
        for _ in 0..n {
            let prev = (0..self.cur.col).rev().find(|&c| self.tabs[c]);
            self.cur.col = prev.unwrap_or(0);
        }
        self.cur.pending_wrap = false;
    }

    // ---- screens ----

    fn enter_alt(&mut self) {
        if self.alt.is_none() {
            self.alt = Some(Grid::new(self.rows, self.cols));
        }
    }

    fn leave_alt(&mut self) {
        self.alt = None;
        self.kitty_alt.clear();
    }

    fn save_cursor(&mut self) {
        let mut saved = self.cur;
        saved.origin = self.modes.origin;
        if self.alt.is_some() {
            self.saved_alt = saved;
        } else {
            self.saved_main = saved;
        }
    }

    fn restore_cursor(&mut self) {
        let saved = if self.alt.is_some() {
            self.saved_alt
        } else {
            self.saved_main
        };
        self.cur = saved;
        self.cur.origin = false;
        self.modes.origin = saved.origin;
        // As in xterm, a restored cursor in origin mode stays inside the margins.
        let (top, bottom) = if saved.origin {
            (self.top, self.bottom)
        } else {
            (0, self.rows - 1)
        };
        self.cur.row = self.cur.row.clamp(top, bottom);
        self.cur.col = self.cur.col.min(self.cols - 1);
        self.refresh_pen();
    }

    /// Clears the alternate grid (`?1049h` on entry).
    fn clear_active(&mut self) {
        let (style, cols) = (self.erase_style(), self.cols);
        for row in &mut self.grid_mut().rows {
            row.clear(style, cols);
        }
    }

    /// RIS: everything back to power-on, except the history and the title.
    fn full_reset(&mut self) {
        let cap = std::mem::replace(&mut self.cap, capture::Capture::new(History::new(0)));
        let title = std::mem::take(&mut self.title);
        let hooks = self.test_hooks;
        let answers = std::mem::take(&mut self.answers);
        *self = Engine::new(self.rows, self.cols, History::new(0));
        self.cap = cap;
        self.cap.break_line();
        self.title = title;
        self.test_hooks = hooks;
        self.answers = answers;
    }

    /// DECSTR: modes, margins, pen and saved cursor back to defaults; the screen stays.
    fn soft_reset(&mut self) {
        self.modes = Modes {
            mouse: self.modes.mouse,
            mouse_encoding: self.modes.mouse_encoding,
            bracketed_paste: self.modes.bracketed_paste,
            focus_reporting: self.modes.focus_reporting,
            alternate_scroll: self.modes.alternate_scroll,
            cursor_style: self.modes.cursor_style,
            ..Modes::default()
        };
        self.top = 0;
        self.bottom = self.rows - 1;
        self.cur.charsets = Charsets::default();
        self.cur.pending_wrap = false;
        self.set_pen(Style::default());
        let home = Cursor::default();
        if self.alt.is_some() {
            self.saved_alt = home;
        } else {
            self.saved_main = home;
        }
    }
}

fn default_tabs(cols: usize) -> Vec<bool> {
    (0..cols).map(|c| c % 8 == 0 && c != 0).collect()
}
