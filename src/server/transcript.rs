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

pub use crate::model::strip_sgr;

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

/// Which screen rows continue on the next row (soft-wrapped), from the model.
pub fn wrapped_rows(model: &crate::model::Model) -> Vec<Option<usize>> {
    let (rows, _) = model.size();
    (0..rows).map(|r| model.row_wrap_width(r)).collect()
}

/// The screen's rows as logical lines: a soft-wrapped row and the rows it continues on are one
/// line, so text split at the wrap reads (and matches) as printed. Lines are numbered from
/// `first`; trailing blank lines are dropped. Also returns the number of the cursor's line.
/// `wrapped` holds, for each soft-wrapped row, the columns its line fills.
pub fn logical_lines(
    rows: &[String],
    wrapped: &[Option<usize>],
    cursor_row: u16,
    first: u64,
    ansi: bool,
) -> (Vec<CaptureLine>, u64) {
    let mut lines: Vec<CaptureLine> = Vec::new();
    let mut open = false;
    let mut cursor_line = first;
    for (i, row) in rows.iter().enumerate() {
        if !open {
            lines.push(CaptureLine {
                line: first + lines.len() as u64,
                text: String::new(),
            });
        }
        if i == cursor_row as usize {
            cursor_line = first + lines.len() as u64 - 1;
        }
        let filled = wrapped.get(i).copied().flatten();
        if let Some(line) = lines.last_mut() {
            line.text.push_str(row);
            if let Some(filled) = filled.filter(|_| !ansi) {
                // Rows come with trailing blanks trimmed; a wrapped row was filled, so the
                // blanks were printed (a space before the wrap is part of the text).
                let width = unicode_width::UnicodeWidthStr::width(row.as_str());
                let pad = filled.saturating_sub(width);
                line.text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        open = filled.is_some();
    }
    while lines
        .last()
        .is_some_and(|l| strip_sgr(&l.text).trim().is_empty())
    {
        lines.pop();
    }
    (lines, cursor_line)
}

#[cfg(test)]
mod tests {
    use super::logical_lines;

    #[test]
    fn wrapped_rows_join_with_the_blank_before_the_wrap() {
        let rows: Vec<String> = ["abc0", "MARKER", "", "x", "", ""]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let wrapped = [Some(5), None, None, None, None, None];
        let (lines, cursor) = logical_lines(&rows, &wrapped, 3, 10, false);
        let got: Vec<_> = lines.iter().map(|l| (l.line, l.text.as_str())).collect();
        assert_eq!(got, vec![(10, "abc0 MARKER"), (11, ""), (12, "x")]);
        assert_eq!(cursor, 12);
    }
}
