//! A session's task queue (`linger queue`): prompts handed to its agent one per idle period,
//! in order. Kept in the session's record, so they survive a server restart.
//!
//! Bounds: at most [`MAX_QUEUED`] prompts of at most [`MAX_QUEUE_BYTES`] bytes in all; more
//! is refused with an error saying so.

use std::collections::VecDeque;

/// Prompts a queue holds at most.
pub const MAX_QUEUED: usize = 100;
/// Bytes of prompts a queue holds at most (they live in the session's record).
pub const MAX_QUEUE_BYTES: usize = 64 * 1024;

#[derive(Default)]
pub struct Tasks {
    items: VecDeque<String>,
    /// A prompt went in this idle period; the next waits for the agent to work and stop.
    sent_this_idle: bool,
}

impl Tasks {
    pub fn new(items: Vec<String>) -> Tasks {
        Tasks {
            items: items.into(),
            sent_this_idle: false,
        }
    }

    /// Appends a prompt, or says why it does not fit.
    pub fn add(&mut self, text: String) -> Result<(), String> {
        if text.trim().is_empty() {
            return Err("nothing to queue: the prompt is empty".into());
        }
        if self.items.len() >= MAX_QUEUED {
            return Err(format!(
                "the queue is full ({MAX_QUEUED} prompts); `linger queue NAME --clear` empties it"
            ));
        }
        let bytes: usize = self.items.iter().map(String::len).sum();
        if bytes + text.len() > MAX_QUEUE_BYTES {
            return Err(format!(
                "the queue holds at most {} KiB of prompts and has {bytes} bytes; this one is {} bytes",
                MAX_QUEUE_BYTES / 1024,
                text.len()
            ));
        }
        self.items.push_back(text);
        Ok(())
    }

    pub fn list(&self) -> Vec<String> {
        self.items.iter().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn clear(&mut self) -> Vec<String> {
        self.items.drain(..).collect()
    }

    /// The agent turned idle: one prompt may go.
    pub fn new_idle_period(&mut self) {
        self.sent_this_idle = false;
    }

    /// The next prompt, when one may go in this idle period.
    pub fn take_next(&mut self) -> Option<String> {
        if self.sent_this_idle {
            return None;
        }
        let next = self.items.pop_front()?;
        self.sent_this_idle = true;
        Some(next)
    }

    pub fn ready(&self) -> bool {
        !self.sent_this_idle && !self.items.is_empty()
    }
}

/// A prompt as an event's message: its first line, at most 200 bytes.
pub fn summary(text: &str) -> String {
    let line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut end = line.len().min(200);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_is_bounded_in_count_and_bytes() {
        let mut t = Tasks::default();
        for i in 0..MAX_QUEUED {
            t.add(format!("task {i}")).unwrap();
        }
        assert!(t.add("one more".into()).unwrap_err().contains("full"));
        t.clear();
        t.add("x".repeat(MAX_QUEUE_BYTES)).unwrap();
        assert!(t.add("y".into()).unwrap_err().contains("KiB"));
        assert!(Tasks::default().add(" \n".into()).is_err(), "empty prompts");
    }

    #[test]
    fn one_prompt_per_idle_period_in_order() {
        let mut t = Tasks::new(vec!["a".into(), "b".into()]);
        assert_eq!(t.take_next().as_deref(), Some("a"));
        assert_eq!(t.take_next(), None);
        t.new_idle_period();
        assert_eq!(t.take_next().as_deref(), Some("b"));
        assert!(!t.ready());
    }
}
