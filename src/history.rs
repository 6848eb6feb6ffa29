//! The history ring: lines that scrolled off a session's screen, numbered and bounded by count
//! and bytes.

use std::collections::VecDeque;

/// Lines are stored SGR-formatted (each line self-contained: it starts from default attributes) and numbered from 0 for the life of the
/// session, so scripts can read incrementally by number even as old lines fall off the front.
///
/// Lines sit back to back in blocks of about [`BLOCK_BYTES`] (no allocation per line: a
/// session that printed millions of lines holds a few large blocks, not millions of scattered
/// strings that fragment the heap). A line never spans two blocks, and a block is dropped
/// whole once all its lines are evicted, so no byte is ever moved after it is written, and
/// evicted text costs at most one block.
#[derive(Debug, Default)]
pub struct History {
    /// Kept text, oldest block first; `blocks[0]` has sequence number `first_block`.
    blocks: VecDeque<String>,
    first_block: u64,
    /// Where each kept line is, oldest first.
    lines: VecDeque<LineAt>,
    /// Bytes of the kept lines.
    kept_bytes: usize,
    /// The last dropped block, emptied, for the next one (a flood would otherwise allocate
    /// and free a block every few hundred lines).
    spare: Option<String>,
    first_line: u64,
    max_lines: usize,
    max_bytes: usize,
}

/// A line's block (by sequence number) and its byte range in it.
#[derive(Debug, Clone, Copy)]
struct LineAt {
    block: u64,
    start: usize,
    end: usize,
}

/// Longest logical line kept whole; longer ones continue as further lines.
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// Bytes allowed per configured line on average; generous for colour-heavy output while still
/// bounding memory when an app prints enormous single lines.
const BYTES_PER_LINE_BUDGET: usize = 512;

/// A block is closed to new lines once it holds this much (a longer line gets a block of
/// its own; the last line may still grow past it by [`History::append_to_last`]).
const BLOCK_BYTES: usize = 64 * 1024;

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
        let full = self
            .blocks
            .back()
            .is_none_or(|b| !b.is_empty() && b.len() + line.len() > BLOCK_BYTES);
        if full {
            let mut block = self
                .spare
                .take()
                .unwrap_or_else(|| String::with_capacity(BLOCK_BYTES));
            block.reserve(line.len());
            self.blocks.push_back(block);
        }
        let block = self.first_block + self.blocks.len() as u64 - 1;
        let Some(text) = self.blocks.back_mut() else {
            return;
        };
        let start = text.len();
        text.push_str(line);
        self.lines.push_back(LineAt {
            block,
            start,
            end: text.len(),
        });
        self.kept_bytes += line.len();
        self.evict();
    }

    fn evict(&mut self) {
        while self.lines.len() > self.max_lines
            || (self.kept_bytes > self.max_bytes && self.lines.len() > 1)
        {
            if let Some(at) = self.lines.pop_front() {
                self.kept_bytes -= at.end - at.start;
                self.first_line += 1;
            }
        }
        let oldest_needed = self
            .lines
            .front()
            .map_or(self.first_block + self.blocks.len() as u64, |at| at.block);
        while self.first_block < oldest_needed {
            let Some(mut dropped) = self.blocks.pop_front() else {
                break;
            };
            self.first_block += 1;
            if dropped.capacity() <= 2 * BLOCK_BYTES {
                dropped.clear();
                self.spare = Some(dropped);
            }
        }
    }

    fn text(&self, at: LineAt) -> &str {
        let block = &self.blocks[(at.block - self.first_block) as usize];
        &block[at.start..at.end]
    }

    /// Extends the newest line: a wrapped row that turned out to continue it. A line already
    /// at [`MAX_LINE_BYTES`] is not extended (false): the caller starts a new line instead, so
    /// one endless line cannot grow memory without bound.
    pub fn append_to_last(&mut self, text: &str) -> bool {
        let Some(last) = self.lines.back_mut() else {
            return true;
        };
        if last.end - last.start + text.len() > MAX_LINE_BYTES {
            return false;
        }
        // The newest line always ends the newest block.
        let Some(block) = self.blocks.back_mut() else {
            return false;
        };
        block.push_str(text);
        last.end = block.len();
        self.kept_bytes += text.len();
        self.evict();
        true
    }

    /// Forgets every line (`CSI 3 J`); numbering goes on from where it was.
    pub fn clear(&mut self) {
        self.first_line = self.next_line();
        self.first_block += self.blocks.len() as u64;
        self.blocks.clear();
        self.lines.clear();
        self.kept_bytes = 0;
    }

    /// Takes the newest line back out (a screen that grew pulls its rows back from history);
    /// its number is reused by the next line pushed.
    pub fn pop_last(&mut self) -> Option<String> {
        let at = self.lines.pop_back()?;
        let line = self.text(at).to_string();
        self.kept_bytes -= at.end - at.start;
        if let Some(block) = self.blocks.back_mut() {
            block.truncate(at.start);
            if block.is_empty() {
                self.blocks.pop_back();
            }
        }
        Some(line)
    }

    /// The newest line.
    pub fn last(&self) -> Option<&str> {
        Some(self.text(*self.lines.back()?))
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
        self.kept_bytes
    }

    /// Lines numbered `from` and later, with their numbers.
    pub fn since(&self, from: u64) -> impl Iterator<Item = (u64, &str)> {
        let skip = from.saturating_sub(self.first_line) as usize;
        (skip..self.lines.len())
            .map(move |i| (self.first_line + i as u64, self.text(self.lines[i])))
    }

    /// Bytes held for text, kept or not yet dropped.
    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        self.blocks.iter().map(String::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::{BLOCK_BYTES, History};

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
        assert!(h.held_bytes() <= h.bytes() + BLOCK_BYTES + 10_000);
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

    #[test]
    fn lines_stay_whole_across_blocks_eviction_and_pop() {
        let mut h = History::new(1000);
        let line = |i: usize| format!("{i:05}{}", "y".repeat(i % 700));
        for i in 0..3000 {
            h.push(&line(i));
        }
        assert_eq!((h.first_line(), h.len()), (2000, 1000));
        assert!(h.since(0).all(|(n, l)| l == line(n as usize)));
        assert!(h.held_bytes() <= h.bytes() + BLOCK_BYTES + 700);
        assert_eq!(h.pop_last(), Some(line(2999)));
        assert!(h.append_to_last("+"));
        assert_eq!(h.last(), Some(format!("{}+", line(2998)).as_str()));
        h.push("after");
        assert_eq!(h.since(2999).next(), Some((2999, "after")));
        h.clear();
        assert!(h.is_empty());
        h.push("fresh");
        assert_eq!(h.since(0).collect::<Vec<_>>(), vec![(3000, "fresh")]);
    }
}
