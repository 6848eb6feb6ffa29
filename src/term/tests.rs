//! Unit tests of the engine: printing, wrapping, editing, erasing, styles and charsets.

use super::Term;
use crate::history::History;

pub(super) fn term(rows: u16, cols: u16) -> Term {
    Term::new(rows, cols, History::new(100))
}

pub(super) fn feed(rows: u16, cols: u16, bytes: &[u8]) -> Term {
    let mut t = term(rows, cols);
    t.process(bytes);
    t
}

pub(super) fn lines(t: &Term) -> Vec<String> {
    let e = t.engine();
    (0..e.size().0).map(|r| e.row_text(r, false)).collect()
}

pub(super) fn cursor(t: &Term) -> (usize, usize) {
    (t.engine().cursor().row, t.engine().cursor().col)
}
