//! History capture: rows leaving the main screen become logical lines of self-contained SGR
//! text in the history ring (and the output log's fresh lines); and the way back, from such a
//! line to cells, for rows pulled back when the screen grows.
//!
//! Line format: every history line starts from default attributes and ends with them restored
//! (`CSI m`, and an open OSC 8 link closed), so any line can be replayed, stripped or parsed
//! alone. A soft-wrapped logical line is one history line.

use unicode_width::UnicodeWidthChar;

use super::Engine;
use super::grid::{Cell, Graphemes, LEADING_SPACER, SPACER, WIDE};
use super::style::{LinkTable, Style, StyleTable, apply_sgr, write_link};
use crate::history::{History, MAX_LINE_BYTES};

/// Most bytes of fresh lines held between two takes (the server takes them every half second):
/// past it, a flood keeps at least its newest ~450 KiB for the output log, as the log keeps
/// only the newest part of a burst larger than it.
const MAX_FRESH_BYTES: usize = 1 << 20;
/// One generation of [`FreshLines`]: two of them, each with the line that filled it, stay
/// within [`MAX_FRESH_BYTES`] while lines stay within [`MAX_LINE_BYTES`].
const FRESH_GENERATION: usize = MAX_FRESH_BYTES / 2 - MAX_LINE_BYTES - 1;

/// Lines for the output log since the last take, each ended by '\n'. Bounded without moving
/// bytes: when the newer generation fills, the older one is dropped whole (under a flood the
/// old way, cutting the front off one buffer, moved every byte once more).
#[derive(Default)]
pub struct FreshLines {
    older: String,
    newer: String,
}

impl FreshLines {
    fn push_line(&mut self, line: &str) {
        self.newer.push_str(line);
        self.newer.push('\n');
        self.bound();
    }

    /// Extends the newest line: `text` goes before its '\n'.
    fn extend_last(&mut self, text: &str) {
        let last = if self.newer.is_empty() {
            &mut self.older
        } else {
            &mut self.newer
        };
        last.pop();
        last.push_str(text);
        last.push('\n');
        self.bound();
    }

    fn bound(&mut self) {
        if self.newer.len() >= FRESH_GENERATION {
            // The dropped generation's allocation is reused for the next one.
            std::mem::swap(&mut self.older, &mut self.newer);
            self.newer.clear();
        }
    }

    fn take(&mut self) -> String {
        let mut all = std::mem::take(&mut self.older);
        if all.is_empty() {
            return std::mem::take(&mut self.newer);
        }
        all.push_str(&self.newer);
        self.newer.clear();
        all
    }
}

pub struct Capture {
    pub history: History,
    /// The last history line ended in a soft-wrapped row: the next row leaving continues it.
    line_open: bool,
    /// Lines for the output log since the last take.
    pub fresh: Option<FreshLines>,
    /// Lines pulled back into the screen that the log already has: the next this many pushes
    /// are not logged again.
    fresh_skip: usize,
    /// Reused for each row, so capturing allocates nothing per row.
    scratch: String,
}

impl Capture {
    pub fn new(history: History) -> Capture {
        Capture {
            history,
            line_open: false,
            fresh: None,
            fresh_skip: 0,
            scratch: String::new(),
        }
    }

    /// The next row starts a new line.
    pub fn break_line(&mut self) {
        self.line_open = false;
    }

    pub fn clear_history(&mut self) {
        self.history.clear();
        self.line_open = false;
    }

    /// Adds a whole line of linger's own (a revive separator).
    pub fn push_line(&mut self, line: &str) {
        if self.fresh_skip > 0 {
            self.fresh_skip -= 1;
        } else if let Some(fresh) = self.fresh.as_mut() {
            fresh.push_line(line);
        }
        self.history.push(line);
    }

    /// Adds one row's text: a new line, or the continuation of the open one.
    pub fn push_row(&mut self, text: &str, wrapped: bool) {
        if self.line_open && self.history.append_to_last(text) {
            if self.fresh_skip == 0
                && let Some(fresh) = self.fresh.as_mut()
            {
                fresh.extend_last(text);
            }
        } else {
            self.push_line(text);
        }
        self.line_open = wrapped;
    }

    /// Takes the newest line back for the screen; None when there is none or it is still
    /// open (its rest is on screen and is handled by the caller).
    pub fn pull_back(&mut self) -> Option<String> {
        let line = self.history.pop_last()?;
        self.line_open = false;
        self.fresh_skip += 1;
        Some(line)
    }

    pub fn line_open(&self) -> bool {
        self.line_open
    }
}

impl Engine {
    /// Sends visible row `index` of the main screen to history.
    pub(super) fn capture_row(&mut self, index: usize) {
        let mut text = std::mem::take(&mut self.cap.scratch);
        text.clear();
        let row = &self.main.rows[index];
        self.render_cells(&mut text, &row.cells, !row.wrapped, true);
        let wrapped = row.wrapped;
        self.cap.push_row(&text, wrapped);
        self.cap.scratch = text;
    }

    /// Appends `cells` as text; with `sgr`, styled and links, self-contained. With `trim`,
    /// trailing empty cells are left out; without, the row is taken to run on into the next.
    pub(super) fn render_cells(&self, out: &mut String, cells: &[Cell], trim: bool, sgr: bool) {
        render_cells(
            out,
            cells,
            trim,
            sgr,
            &self.styles,
            &self.links,
            &self.graphemes,
        );
    }

    /// Cells of a history line, in the engine's tables.
    pub(super) fn parse_line(&mut self, line: &str) -> Vec<Cell> {
        let mut reader = LineReader {
            cells: Vec::new(),
            pen: Style::default(),
            pen_id: 0,
            styles: &mut self.styles,
            links: &mut self.links,
            graphemes: &mut self.graphemes,
        };
        let mut parser = vte::Parser::new();
        parser.advance(&mut reader, line.as_bytes());
        reader.cells
    }
}

pub(super) fn render_cells(
    out: &mut String,
    cells: &[Cell],
    trim: bool,
    sgr: bool,
    styles: &StyleTable,
    links: &LinkTable,
    graphemes: &Graphemes,
) {
    let cells = if trim { trimmed(cells) } else { cells };
    let mut style_id = 0u16;
    let mut link = 0u16;
    // A wide char's right half is part of it; the blank a wrapped wide char left at the end
    // of a row is not text when the row runs on into the next (`!trim`).
    let skip = if trim {
        SPACER
    } else {
        SPACER | LEADING_SPACER
    };
    out.reserve(cells.len());
    let mut i = 0;
    while i < cells.len() {
        let cell = cells[i];
        if cell.flags & skip != 0 {
            i += 1;
            continue;
        }
        if sgr && cell.style != style_id {
            let old = styles.get(style_id);
            let new = styles.get(cell.style);
            if new.link() != link {
                write_link(out, links, new.link());
                link = new.link();
            }
            if new.without_link() != old.without_link() {
                if new.without_link() == Style::default() {
                    out.push_str("\x1b[m");
                } else {
                    styles.push_sgr(out, cell.style, old.without_link() == Style::default());
                }
            }
            style_id = cell.style;
        }
        // Most text is plain ASCII in one style: copy such a run in one go.
        let run = if sgr {
            push_ascii_run(out, &cells[i..], ASCII_IN_STYLE, u64::from(style_id) << 32)
        } else {
            push_ascii_run(out, &cells[i..], ASCII_ANY_STYLE, 0)
        };
        if run > 0 {
            i += run;
            continue;
        }
        match cell.char() {
            Some(c) => out.push(c),
            None => graphemes.push_cell(out, &cell),
        }
        i += 1;
    }
    if sgr && style_id != 0 {
        if styles.get(style_id).without_link() != Style::default() {
            out.push_str("\x1b[m");
        }
        if link != 0 {
            write_link(out, links, 0);
        }
    }
}

/// `cells` without its trailing empty cells.
fn trimmed(cells: &[Cell]) -> &[Cell] {
    // Whole blocks of plain blanks first: most of a row's tail, cheaply.
    let mut end = cells.len();
    while end >= 8 && cells[end - 8..end].iter().all(Cell::is_blank) {
        end -= 8;
    }
    let used = cells[..end]
        .iter()
        .rposition(|c| !c.is_empty())
        .map_or(0, |i| i + 1);
    &cells[..used]
}

/// [`Cell::bits`] masks: a plain ASCII char (no flags) in one given style, or in any style.
const ASCII_IN_STYLE: u64 = !0x7f;
const ASCII_ANY_STYLE: u64 = !0x7f & !(0xffff << 32);

/// Appends the chars of the leading cells whose bits under `mask` equal `want` (plain ASCII,
/// see the masks above) and returns how many; one pass, one compare per cell.
fn push_ascii_run(out: &mut String, cells: &[Cell], mask: u64, want: u64) -> usize {
    // Wide and other non-ASCII text comes one cell at a time: no reserving for those.
    if cells.first().is_none_or(|c| c.bits() & mask != want) {
        return 0;
    }
    // SAFETY: only bytes below 0x80 are written (the masks keep bits 7-31 of the char zero),
    // so the string stays valid UTF-8; they go into capacity reserved here, and the length
    // covers exactly the bytes written.
    unsafe {
        let bytes = out.as_mut_vec();
        bytes.reserve(cells.len());
        let (len, ptr) = (bytes.len(), bytes.as_mut_ptr());
        let qualifies = |cell: &Cell| cell.bits() & mask == want;
        let mut n = 0;
        // Cell by cell for the first eight (most runs in Unicode text are shorter); then eight
        // at a time while all eight qualify: one branch per block, and loops without an early
        // exit, which the compiler vectorises; then cell by cell again.
        let scalar = |n: &mut usize, end: usize| {
            while *n < end && qualifies(&cells[*n]) {
                *ptr.add(len + *n) = cells[*n].bits() as u8;
                *n += 1;
            }
        };
        scalar(&mut n, cells.len().min(8));
        if n == 8 {
            while let Some(block) = cells.get(n..n + 8) {
                if block
                    .iter()
                    .fold(0, |bad, c| bad | (c.bits() & mask ^ want))
                    != 0
                {
                    break;
                }
                for (k, cell) in block.iter().enumerate() {
                    *ptr.add(len + n + k) = cell.bits() as u8;
                }
                n += 8;
            }
            scalar(&mut n, cells.len());
        }
        bytes.set_len(len + n);
        n
    }
}

/// Builds the cells of one history line: prints and SGR/OSC 8 only.
struct LineReader<'a> {
    cells: Vec<Cell>,
    pen: Style,
    pen_id: u16,
    styles: &'a mut StyleTable,
    links: &'a mut LinkTable,
    graphemes: &'a mut Graphemes,
}

impl vte::Perform for LineReader<'_> {
    fn print(&mut self, c: char) {
        match c.width().map(super::perform::cell_width) {
            Some(0) => {
                let Some(last) = self.cells.iter().rposition(|c| c.flags & SPACER == 0) else {
                    return;
                };
                let mut text = String::new();
                self.graphemes.push_cell(&mut text, &self.cells[last]);
                text.push(c);
                if let Some(i) = self.graphemes.intern(&text) {
                    let old = self.cells[last];
                    self.cells[last] = Cell::grapheme(i, old.style, old.flags);
                }
            }
            Some(2) => {
                self.cells.push(Cell::new(c, self.pen_id, WIDE));
                self.cells.push(Cell::new(' ', self.pen_id, SPACER));
            }
            Some(_) => self.cells.push(Cell::new(c, self.pen_id, 0)),
            None => {}
        }
    }

    fn csi_dispatch(&mut self, params: &vte::Params, inter: &[u8], _: bool, action: char) {
        if action == 'm' && inter.is_empty() {
            apply_sgr(&mut self.pen, params.iter());
            self.pen_id = self.styles.intern(&self.pen).unwrap_or(0);
        }
    }

    fn osc_dispatch(&mut self, params: &[&[u8]], _: bool) {
        if params.first() == Some(&&b"8"[..]) && params.len() >= 3 {
            let uri = String::from_utf8_lossy(&params[2..].join(&b';')).into_owned();
            let id = std::str::from_utf8(params[1])
                .unwrap_or("")
                .split(':')
                .find_map(|kv| kv.strip_prefix("id="))
                .unwrap_or("");
            self.pen.set_link(self.links.intern(id, &uri));
            self.pen_id = self.styles.intern(&self.pen).unwrap_or(0);
        }
    }
}

/// A line's text without its SGR and OSC sequences.
pub fn strip_sgr(line: &str) -> String {
    struct Plain(String);
    impl vte::Perform for Plain {
        fn print(&mut self, c: char) {
            self.0.push(c);
        }
        fn execute(&mut self, byte: u8) {
            if byte == b'\t' {
                self.0.push('\t');
            }
        }
    }
    let mut plain = Plain(String::with_capacity(line.len()));
    vte::Parser::new().advance(&mut plain, line.as_bytes());
    plain.0
}

/// What survives a rebuild of the engine after a panic.
pub struct Salvage {
    pub history: History,
    pub fresh: Option<FreshLines>,
    pub title: String,
}

impl Engine {
    /// Starts keeping a copy of every line that leaves the screen, for `take_fresh_lines`.
    pub fn collect_fresh_lines(&mut self) {
        self.cap.fresh.get_or_insert_with(FreshLines::default);
    }

    /// Lines that left the screen since the last call, each ended by '\n'.
    pub fn take_fresh_lines(&mut self) -> String {
        self.cap
            .fresh
            .as_mut()
            .map(FreshLines::take)
            .unwrap_or_default()
    }

    /// Appends a line of linger's own to the history; it stands alone.
    pub fn push_history_line(&mut self, line: &str) {
        self.cap.push_line(line);
        self.cap.break_line();
    }

    pub fn salvage(&mut self) -> Salvage {
        Salvage {
            history: std::mem::take(&mut self.cap.history),
            fresh: self.cap.fresh.take(),
            title: std::mem::take(&mut self.title),
        }
    }

    pub fn restore(&mut self, salvage: Salvage) {
        self.cap = Capture::new(salvage.history);
        self.cap.fresh = salvage.fresh;
        self.title = salvage.title;
    }
}
