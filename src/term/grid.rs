//! Cells, rows and one screen's grid of rows, with the row and region operations the parser
//! needs; rows are allocated only once something is written to them.

use super::style::FastMap;

/// Flags of a cell.
pub const WIDE: u8 = 1;
/// The right half of a wide character.
pub const SPACER: u8 = 1 << 1;
/// A blank left at the end of a row because a wide character did not fit and wrapped.
pub const LEADING_SPACER: u8 = 1 << 2;

/// Marks `Cell::ch` as an index into the grapheme table rather than a char.
const GRAPHEME_BIT: u32 = 1 << 31;

/// One screen cell in 8 bytes: a char (or interned grapheme cluster), a style id, flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, align(8))]
pub struct Cell {
    ch: u32,
    pub style: u16,
    pub flags: u8,
    _pad: u8,
}

pub const BLANK: Cell = Cell {
    ch: ' ' as u32,
    style: 0,
    flags: 0,
    _pad: 0,
};

impl Cell {
    pub fn new(c: char, style: u16, flags: u8) -> Cell {
        Cell {
            ch: c as u32,
            style,
            flags,
            _pad: 0,
        }
    }

    pub fn blank(style: u16) -> Cell {
        Cell { style, ..BLANK }
    }

    pub fn grapheme(index: u32, style: u16, flags: u8) -> Cell {
        Cell {
            ch: index | GRAPHEME_BIT,
            style,
            flags,
            _pad: 0,
        }
    }

    /// The char, or None for an interned grapheme cluster.
    #[inline]
    pub fn char(&self) -> Option<char> {
        if self.ch & GRAPHEME_BIT != 0 {
            None
        } else {
            char::from_u32(self.ch)
        }
    }

    /// The flags' byte in [`Cell::bits`]: folding whole words (not the flag bytes) vectorises.
    pub const FLAG_BITS: u64 = 0xff << 48;

    /// The cell as one word (char, style, flags), for comparing many cells cheaply.
    #[inline]
    pub fn bits(&self) -> u64 {
        if cfg!(target_endian = "little") {
            // SAFETY: `Cell` is `repr(C)` of u32, u16, u8, u8: eight initialised bytes with no
            // padding, in this order, so on a little-endian target they are the word below.
            // One load instead of four (the compiler does not merge the field loads).
            unsafe { std::mem::transmute::<Cell, u64>(*self) }
        } else {
            u64::from(self.ch)
                | u64::from(self.style) << 32
                | u64::from(self.flags) << 48
                | u64::from(self._pad) << 56
        }
    }

    /// A cell holding ASCII byte `b`, no flags, in `style` (built as one word).
    #[inline]
    pub fn ascii(b: u8, style: u16) -> Cell {
        Cell::from_bits(u64::from(style) << 32 | u64::from(b))
    }

    /// The cell whose [`Cell::bits`] are `bits`.
    #[inline]
    pub fn from_bits(bits: u64) -> Cell {
        if cfg!(target_endian = "little") {
            // SAFETY: as in `bits`; any eight bytes are a valid `Cell` (all fields integers).
            // One store instead of four, which lets a loop of them vectorise.
            return unsafe { std::mem::transmute::<u64, Cell>(bits) };
        }
        Cell {
            ch: bits as u32,
            style: (bits >> 32) as u16,
            flags: (bits >> 48) as u8,
            _pad: (bits >> 56) as u8,
        }
    }

    /// Whether this is exactly [`BLANK`] (the common empty cell), cheaper than
    /// [`Cell::is_empty`] and a strict subset of it.
    #[inline]
    pub fn is_blank(&self) -> bool {
        self.bits() == BLANK.bits()
    }

    pub fn grapheme_index(&self) -> Option<u32> {
        (self.ch & GRAPHEME_BIT != 0).then_some(self.ch & !GRAPHEME_BIT)
    }

    /// Blank with the default style: what an untouched cell looks like.
    #[inline]
    pub fn is_empty(&self) -> bool {
        const CHAR_STYLE_WIDE: u64 = 0xffff_ffff_ffff | (WIDE as u64) << 48;
        self.bits() & CHAR_STYLE_WIDE == ' ' as u64
    }
}

/// Longest grapheme cluster kept whole, in bytes; further marks are dropped.
pub const MAX_GRAPHEME_BYTES: usize = 32;
/// Most distinct clusters kept; past it a cluster shows its first char only.
const MAX_GRAPHEMES: usize = 1 << 16;

/// Interned grapheme clusters (a base char with combining marks, ZWJ sequences...).
#[derive(Default)]
pub struct Graphemes {
    strings: Vec<String>,
    ids: FastMap<String, u32>,
}

impl Graphemes {
    pub fn get(&self, index: u32) -> &str {
        self.strings.get(index as usize).map_or(" ", |s| s.as_str())
    }

    pub fn intern(&mut self, s: &str) -> Option<u32> {
        if let Some(&id) = self.ids.get(s) {
            return Some(id);
        }
        if self.strings.len() >= MAX_GRAPHEMES || s.len() > MAX_GRAPHEME_BYTES {
            return None;
        }
        let id = self.strings.len() as u32;
        self.strings.push(s.to_string());
        self.ids.insert(s.to_string(), id);
        Some(id)
    }

    /// Appends the cell's text to `out`.
    #[inline]
    pub fn push_cell(&self, out: &mut String, cell: &Cell) {
        match cell.char() {
            Some(c) => out.push(c),
            None => out.push_str(self.get(cell.grapheme_index().unwrap_or(0))),
        }
    }
}

/// `Vec::resize` for cells, as one vectorised fill (`resize` writes a cell at a time, and a
/// flood fills a whole row of blanks for every line it prints).
pub fn resize_cells(cells: &mut Vec<Cell>, len: usize, fill: Cell) {
    let extra = len.saturating_sub(cells.len());
    cells.truncate(len);
    cells.extend(std::iter::repeat_n(fill, extra));
}

/// A row: no cells allocated until written (all blank), else up to `cols` cells, those past
/// the end blank in the default style. Plain text extends a row only as far as it writes
/// ([`Row::cells_through`]): a flood of short lines neither fills nor later trims a whole row
/// of blanks per line. Every other write takes the full row ([`Row::cells_mut`]); a wrapped
/// row is always full.
#[derive(Clone, Debug, Default)]
pub struct Row {
    pub cells: Vec<Cell>,
    /// The row's text continues on the next row (soft wrap).
    pub wrapped: bool,
}

impl Row {
    pub fn cell(&self, col: usize) -> Cell {
        self.cells.get(col).copied().unwrap_or(BLANK)
    }

    /// The row's cells through column `end` (exclusive, at most `cols`) and any written past
    /// it.
    #[inline]
    pub fn cells_through(&mut self, end: usize, cols: usize) -> &mut [Cell] {
        if self.cells.len() < end {
            self.grow_to(end, cols);
        }
        &mut self.cells
    }

    /// Extends the row with blanks to `len` cells, with room for the whole row at once:
    /// growing it piece by piece reallocates.
    #[inline]
    fn grow_to(&mut self, len: usize, cols: usize) {
        self.cells
            .reserve_exact(cols.saturating_sub(self.cells.len()));
        resize_cells(&mut self.cells, len, BLANK);
    }

    /// Writes `text` (plain ASCII, fitting the row) at `col` if the row's cells end there or
    /// before: appended, with no blanks written first and nothing overwritten (a flood's
    /// every line). False, with nothing done, if cells at `col` exist.
    #[inline]
    pub fn append_ascii(&mut self, col: usize, text: &[u8], style: u16, cols: usize) -> bool {
        if self.cells.len() > col {
            return false;
        }
        self.grow_to(col, cols);
        self.cells
            .extend(text.iter().map(|&b| Cell::ascii(b, style)));
        true
    }

    pub fn cells_mut(&mut self, cols: usize) -> &mut [Cell] {
        if self.cells.len() != cols {
            resize_cells(&mut self.cells, cols, BLANK);
        }
        &mut self.cells
    }

    /// Blanks the whole row with `style`, freeing nothing so the next write reuses it.
    pub fn clear(&mut self, style: u16, cols: usize) {
        self.wrapped = false;
        if style == 0 {
            self.cells.clear();
        } else {
            self.cells.clear();
            resize_cells(&mut self.cells, cols, Cell::blank(style));
        }
    }

    /// Blanks `from..to` with `style`.
    pub fn erase(&mut self, from: usize, to: usize, style: u16, cols: usize) {
        let to = to.min(cols);
        // Past a row's end everything is blank already.
        if from >= to || (from >= self.cells.len() && style == 0) {
            return;
        }
        let cells = self.cells_mut(cols);
        // A wide character cut in half loses both halves.
        if from > 0 && cells[from].flags & SPACER != 0 {
            cells[from - 1] = Cell::blank(cells[from - 1].style);
        }
        if to < cols && cells[to].flags & SPACER != 0 {
            cells[to] = Cell::blank(cells[to].style);
        }
        cells[from..to].fill(Cell::blank(style));
    }

    /// Number of cells up to the last one that is not empty.
    pub fn used(&self) -> usize {
        self.cells
            .iter()
            .rposition(|c| !c.is_empty())
            .map_or(0, |i| i + 1)
    }
}

/// One screen: `rows` rows of `cols` cells.
#[derive(Clone, Debug)]
pub struct Grid {
    pub rows: Vec<Row>,
    pub cols: usize,
}

impl Grid {
    pub fn new(rows: usize, cols: usize) -> Grid {
        Grid {
            rows: vec![Row::default(); rows],
            cols,
        }
    }

    /// Moves rows `top..=bottom` up by `n` (`n` at most the region's height), blanking the
    /// rows that come in at the bottom with `style`. The rows that left are returned in
    /// `gone` order at the bottom of the region, so a caller can capture them first.
    pub fn scroll_up(&mut self, top: usize, bottom: usize, n: usize, style: u16) {
        let n = n.min(bottom + 1 - top);
        if n == 1 {
            // A flood's every line: one memmove, where `rotate_left` moves row by row.
            let row = self.rows.remove(top);
            self.rows.insert(bottom, row);
        } else {
            self.rows[top..=bottom].rotate_left(n);
        }
        let cols = self.cols;
        for row in &mut self.rows[bottom + 1 - n..=bottom] {
            row.clear(style, cols);
        }
    }

    pub fn scroll_down(&mut self, top: usize, bottom: usize, n: usize, style: u16) {
        let n = n.min(bottom + 1 - top);
        if n == 1 {
            let row = self.rows.remove(bottom);
            self.rows.insert(top, row);
        } else {
            self.rows[top..=bottom].rotate_right(n);
        }
        let cols = self.cols;
        for row in &mut self.rows[top..top + n] {
            row.clear(style, cols);
        }
    }

    /// Inserts `n` blanks at `col`, pushing cells right off the row's end.
    pub fn insert_cells(&mut self, row: usize, col: usize, n: usize, style: u16) {
        let cols = self.cols;
        let cells = self.rows[row].cells_mut(cols);
        let n = n.min(cols - col);
        cells[col..].rotate_right(n);
        cells[col..col + n].fill(Cell::blank(style));
        fix_wide_edges(cells);
    }

    /// Deletes `n` cells at `col`, pulling the rest left and blanking the row's end.
    pub fn delete_cells(&mut self, row: usize, col: usize, n: usize, style: u16) {
        let cols = self.cols;
        let cells = self.rows[row].cells_mut(cols);
        let n = n.min(cols - col);
        cells[col..].rotate_left(n);
        cells[cols - n..].fill(Cell::blank(style));
        fix_wide_edges(cells);
    }
}

/// Blanks half wide characters left by shifting cells (a spacer without its wide char, or a
/// wide char without its spacer), and makes a wrap's leftover blank that is no longer at the
/// row's end an ordinary blank.
fn fix_wide_edges(cells: &mut [Cell]) {
    let last = cells.len().saturating_sub(1);
    for i in 0..cells.len() {
        let c = cells[i];
        if c.flags & LEADING_SPACER != 0 && i != last {
            cells[i] = Cell::blank(c.style);
        }
        if c.flags & SPACER != 0 && (i == 0 || cells[i - 1].flags & WIDE == 0) {
            cells[i] = Cell::blank(c.style);
        }
        if c.flags & WIDE != 0 && cells.get(i + 1).is_none_or(|n| n.flags & SPACER == 0) {
            cells[i] = Cell::blank(c.style);
        }
    }
}
