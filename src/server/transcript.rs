//! Turning a session's history and screen into what `capture` and `attach` show, for running
//! and dormant sessions alike.

use crate::protocol::CaptureLine;

/// The history lines a capture asked for: none, the last `history` lines, or every line from
/// `from_line` on; plain text unless `ansi`. `lines` yields (number, text) in order and
/// `next_line` is the number the next line will get.
pub fn select_history<'a>(
    lines: impl Iterator<Item = (u64, &'a str)>,
    next_line: u64,
    history: Option<usize>,
    from_line: Option<u64>,
    ansi: bool,
) -> Vec<CaptureLine> {
    let start = match (history, from_line) {
        (_, Some(from)) => from,
        (Some(n), None) => next_line.saturating_sub(n.try_into().unwrap_or(u64::MAX)),
        (None, None) => return Vec::new(),
    };
    lines
        .filter(|(line, _)| *line >= start)
        .map(|(line, text)| CaptureLine {
            line,
            text: if ansi {
                format!("{text}\x1b[m")
            } else {
                strip_sgr(text)
            },
        })
        .collect()
}

pub fn strip_sgr(line: &str) -> String {
    crate::model::strip_sgr(line)
}

/// Notes shown to a user who attaches: the continuation doc kept with the session.
pub fn notes_block(notes: &str) -> String {
    let mut out = String::from("\r\n\x1b[7m[notes]\x1b[m\r\n");
    for line in notes.lines() {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

/// Screen rows as history lines: the blank rows below the last output carry nothing.
pub fn without_trailing_blanks(mut rows: Vec<String>) -> Vec<String> {
    while rows.last().is_some_and(|r| strip_sgr(r).trim().is_empty()) {
        rows.pop();
    }
    rows
}
