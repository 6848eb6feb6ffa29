//! The history ring: lines that scrolled off a session's screen, numbered and bounded by count
//! and bytes.

use std::collections::VecDeque;

/// Lines are stored SGR-formatted (each line self-contained: it starts from default attributes) and numbered from 0 for the life of the
/// session, so scripts can read incrementally by number even as old lines fall off the front.
///
/// All kept lines sit back to back in one buffer (no allocation per line): a session that
/// printed millions of lines holds one block of memory, not millions of scattered strings
/// that fragment the heap.
#[derive(Debug, Default)]
pub struct History {
    /// Kept lines back to back, the oldest starting at `start`.
    text: String,
    start: usize,
    /// End offset in `text` of each kept line, oldest first.
    ends: VecDeque<usize>,
    first_line: u64,
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

    pub fn push(&mut self, line: &str) {
        if self.max_lines == 0 {
            self.first_line += 1;
            return;
        }
        self.text.push_str(line);
        self.ends.push_back(self.text.len());
        self.evict();
    }

    fn evict(&mut self) {
        while self.ends.len() > self.max_lines
            || (self.bytes() > self.max_bytes && self.ends.len() > 1)
        {
            if let Some(end) = self.ends.pop_front() {
                self.start = end;
                self.first_line += 1;
            }
        }
        // Drop evicted text once it is most of the buffer: each byte moves at most once more.
        if self.start > 64 * 1024 && self.start * 2 > self.text.len() {
            self.text.drain(..self.start);
            for end in self.ends.iter_mut() {
                *end -= self.start;
            }
            self.start = 0;
        }
    }

    /// Extends the newest line: a wrapped row that turned out to continue it. A line already
    /// at [`MAX_LINE_BYTES`] is not extended (false): the caller starts a new line instead, so
    /// one endless line cannot grow memory without bound.
    pub fn append_to_last(&mut self, text: &str) -> bool {
        let Some(&end) = self.ends.back() else {
            return true;
        };
        let begin = self.line_start(self.ends.len() - 1);
        if end - begin + text.len() > MAX_LINE_BYTES {
            return false;
        }
        self.text.push_str(text);
        if let Some(last) = self.ends.back_mut() {
            *last = self.text.len();
        }
        self.evict();
        true
    }

    /// Forgets every line (`CSI 3 J`); numbering goes on from where it was.
    pub fn clear(&mut self) {
        self.first_line = self.next_line();
        self.text.clear();
        self.ends.clear();
        self.start = 0;
    }

    /// Takes the newest line back out (a screen that grew pulls its rows back from history);
    /// its number is reused by the next line pushed.
    pub fn pop_last(&mut self) -> Option<String> {
        let end = self.ends.pop_back()?;
        let begin = self.line_start(self.ends.len());
        let line = self.text[begin..end].to_string();
        self.text.truncate(begin);
        if self.ends.is_empty() {
            self.text.clear();
            self.start = 0;
        }
        Some(line)
    }

    fn line_start(&self, index: usize) -> usize {
        if index == 0 {
            self.start
        } else {
            self.ends[index - 1]
        }
    }

    /// The newest line.
    pub fn last(&self) -> Option<&str> {
        let end = *self.ends.back()?;
        Some(&self.text[self.line_start(self.ends.len() - 1)..end])
    }

    /// Number of the next line to be pushed.
    pub fn next_line(&self) -> u64 {
        self.first_line + self.ends.len() as u64
    }

    pub fn first_line(&self) -> u64 {
        self.first_line
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.text.len() - self.start
    }

    /// Lines numbered `from` and later, with their numbers.
    pub fn since(&self, from: u64) -> impl Iterator<Item = (u64, &str)> {
        let skip = from.saturating_sub(self.first_line) as usize;
        (skip..self.ends.len()).map(move |i| {
            let line = &self.text[self.line_start(i)..self.ends[i]];
            (self.first_line + i as u64, line)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::History;

    #[test]
    fn numbers_survive_eviction() {
        let mut h = History::new(3);
        for i in 0..5 {
            h.push(&format!("line {i}"));
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
            h.push(&"x".repeat(10_000));
        }
        assert!(h.bytes() <= 200 * 512 + 10_000);
        assert!(h.text.len() <= 2 * (200 * 512 + 10_000) + 64 * 1024);
    }

    #[test]
    fn wrapped_continuations_extend_the_last_line() {
        let mut h = History::new(10);
        h.push("ab");
        assert!(h.append_to_last("cd"));
        h.push("ef");
        let got: Vec<_> = h.since(0).map(|(n, l)| (n, l.to_string())).collect();
        assert_eq!(got, vec![(0, "abcd".into()), (1, "ef".into())]);
    }
}
