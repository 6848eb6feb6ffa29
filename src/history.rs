//! The history ring: lines that scrolled off a session's screen, numbered and bounded by count
//! and bytes.

use std::collections::VecDeque;

/// Lines are stored SGR-formatted (as vt100 emits them) and numbered from 0 for the life of the
/// session, so scripts can read incrementally by number even as old lines fall off the front.
#[derive(Debug, Default)]
pub struct History {
    lines: VecDeque<String>,
    first_line: u64,
    bytes: usize,
    max_lines: usize,
    max_bytes: usize,
}

/// Longest logical line kept whole; longer ones continue as further lines.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Bytes allowed per configured line on average; generous for colour-heavy output while still
/// bounding memory when an app prints enormous single lines.
const BYTES_PER_LINE_BUDGET: usize = 512;

impl History {
    pub fn new(max_lines: usize) -> History {
        History {
            max_lines,
            max_bytes: max_lines
                .saturating_mul(BYTES_PER_LINE_BUDGET)
                .max(64 * 1024),
            ..History::default()
        }
    }

    pub fn push(&mut self, line: String) {
        if self.max_lines == 0 {
            self.first_line += 1;
            return;
        }
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > self.max_lines
            || (self.bytes > self.max_bytes && self.lines.len() > 1)
        {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len();
                self.first_line += 1;
            }
        }
    }

    /// Extends the newest line: a wrapped row that turned out to continue it. A line already
    /// at [`MAX_LINE_BYTES`] is not extended (false): the caller starts a new line instead, so
    /// one endless line cannot grow memory without bound.
    pub fn append_to_last(&mut self, text: &str) -> bool {
        match self.lines.back_mut() {
            Some(last) if last.len() + text.len() <= MAX_LINE_BYTES => {
                last.push_str(text);
                self.bytes += text.len();
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    /// Number of the next line to be pushed.
    pub fn next_line(&self) -> u64 {
        self.first_line + self.lines.len() as u64
    }

    pub fn first_line(&self) -> u64 {
        self.first_line
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Lines numbered `from` and later, with their numbers.
    pub fn since(&self, from: u64) -> impl Iterator<Item = (u64, &str)> {
        let skip = from.saturating_sub(self.first_line) as usize;
        self.lines
            .iter()
            .enumerate()
            .skip(skip)
            .map(|(i, l)| (self.first_line + i as u64, l.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::History;

    #[test]
    fn numbers_survive_eviction() {
        let mut h = History::new(3);
        for i in 0..5 {
            h.push(format!("line {i}"));
        }
        assert_eq!(h.first_line(), 2);
        assert_eq!(h.next_line(), 5);
        let got: Vec<_> = h.since(3).map(|(n, l)| (n, l.to_string())).collect();
        assert_eq!(got, vec![(3, "line 3".into()), (4, "line 4".into())]);
    }

    #[test]
    fn byte_budget_bounds_memory() {
        let mut h = History::new(200);
        for _ in 0..1000 {
            h.push("x".repeat(10_000));
        }
        assert!(h.bytes() <= 200 * 512 + 10_000);
    }
}
