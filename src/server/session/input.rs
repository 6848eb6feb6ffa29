//! Input on its way to the program: keys typed by attached clients, and text from `send`, each
//! send whole, in the order accepted, with its own Enter after the program has read the text.
//!
//! Bounds: typed keys the program has not read yet, at most [`MAX_TYPED`] (more is dropped with
//! a warning: a human cannot type a megabyte ahead); a send's text is pulled from its
//! connection one chunk at a time, only when the previous chunk was written, so a program that
//! stops reading holds at most one chunk here and the sender waits (until its timeout).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::protocol::Response;
use crate::server::commands::SendText;

/// Keys typed by attached clients and not yet read by the program.
pub const MAX_TYPED: usize = 1 << 20;
/// After a send's text is written, how long to wait for the program to read it before the
/// Enter goes anyway.
const ENTER_WAIT: Duration = Duration::from_secs(2);
/// How often to look whether the program has read a send's text.
pub const READ_POLL: Duration = Duration::from_millis(5);
/// Least time between a send's text and its Enter: agents take an Enter that follows input
/// closely for part of a paste (a newline), not a submit: Gemini CLI within 40 ms of a paste,
/// Codex within 120 ms of a paste or a burst of keys.
const ENTER_GAP: Duration = Duration::from_millis(200);

const PASTE_START: &[u8] = b"\x1b[200~";
const PASTE_END: &[u8] = b"\x1b[201~";

enum Stage {
    /// Waiting behind earlier sends.
    Queued,
    /// Taking text from the connection.
    Streaming,
    /// All text handed to the pty; the Enter waits for the program to read it. The pty's
    /// input count lags a write (the kernel moves it to the line discipline asynchronously),
    /// so the first look is one poll after the last byte was written.
    AwaitingRead {
        enter_at: Instant,
        look_from: Option<Instant>,
    },
    /// The last bytes (the Enter or the paste end) are on their way; once written, the next
    /// send waits until the program has read them, so two sends never share one read.
    Finishing {
        settle_by: Instant,
        look_from: Option<Instant>,
    },
}

struct Job {
    text: SendText,
    /// Gives up when the program takes none of this send's bytes for the send's timeout.
    deadline: Instant,
    received: u64,
    bracketed: bool,
    /// Bytes of a split paste terminator held back from the previous chunk.
    carry: Vec<u8>,
    stage: Stage,
}

impl Job {
    /// The connection gave the whole text. Once it is with the pty, the send waits only for
    /// the program to read it, never past its timeout, and never fails for that (the bytes
    /// cannot be taken back; a retry would type them twice).
    fn all_text_taken(&mut self, now: Instant) {
        let wait_until = (now + ENTER_WAIT).min(self.deadline);
        self.stage = if self.text.enter {
            Stage::AwaitingRead {
                enter_at: wait_until,
                look_from: None,
            }
        } else {
            Stage::Finishing {
                settle_by: wait_until,
                look_from: None,
            }
        };
    }

    /// Every byte of the text was taken from the connection.
    fn past_text(&self) -> bool {
        matches!(
            self.stage,
            Stage::AwaitingRead { .. } | Stage::Finishing { .. }
        )
    }
}

#[derive(Default)]
pub struct Input {
    typed: VecDeque<u8>,
    jobs: VecDeque<Job>,
    /// The front job's bytes waiting for the pty.
    out: VecDeque<u8>,
}

impl Input {
    /// Queues typed keys; false when over the bound and dropped.
    pub fn push_typed(&mut self, data: &[u8]) -> bool {
        if self.typed.len() + data.len() > MAX_TYPED {
            return false;
        }
        self.typed.extend(data);
        true
    }

    pub fn push_send(&mut self, text: SendText) {
        let deadline = Instant::now() + text.timeout;
        self.jobs.push_back(Job {
            text,
            deadline,
            received: 0,
            bracketed: false,
            carry: Vec::new(),
            stage: Stage::Queued,
        });
    }

    /// Nothing typed or sent is on its way.
    pub fn is_idle(&self) -> bool {
        self.typed.is_empty() && self.jobs.is_empty() && self.out.is_empty()
    }

    /// Typed keys go before a send's bytes, except inside a paste, which they would corrupt.
    fn typed_goes_next(&self) -> bool {
        let in_paste = self.jobs.front().is_some_and(|j| j.bracketed) && !self.out.is_empty();
        !self.typed.is_empty() && !in_paste
    }

    /// The bytes to write next (see [`Input::typed_goes_next`]).
    pub fn next_write(&self) -> Option<&[u8]> {
        let queue = if self.typed_goes_next() {
            &self.typed
        } else {
            &self.out
        };
        let (front, _) = queue.as_slices();
        (!front.is_empty()).then_some(front)
    }

    /// `n` bytes of what [`Input::next_write`] gave were written.
    pub fn wrote(&mut self, n: usize) {
        if self.typed_goes_next() {
            self.typed.drain(..n.min(self.typed.len()));
        } else {
            self.out.drain(..n.min(self.out.len()));
            if let Some(job) = self.jobs.front_mut() {
                job.deadline = Instant::now() + job.text.timeout;
            }
        }
    }

    /// Whether the front send wants its next chunk from the connection.
    pub fn wants_chunk(&self) -> bool {
        self.out.is_empty()
            && self
                .jobs
                .front()
                .is_some_and(|j| matches!(j.stage, Stage::Streaming) && j.received < j.text.len)
    }

    /// The front send's next chunk; `None` when its connection went away. Cancellation-safe.
    pub async fn next_chunk(&mut self) -> Option<Vec<u8>> {
        match self.jobs.front_mut() {
            Some(job) => job.text.chunks.recv().await,
            None => std::future::pending().await,
        }
    }

    pub fn on_chunk(&mut self, chunk: Option<Vec<u8>>) {
        let Some(job) = self.jobs.front_mut() else {
            return;
        };
        let Some(chunk) = chunk else {
            // The sender left halfway: close the paste so the program is not stuck in one.
            if job.bracketed {
                self.out.extend(PASTE_END);
            }
            if let Some(job) = self.jobs.pop_front() {
                let _ = job.text.reply.send(Response::Error(
                    "the client stopped sending its text".into(),
                ));
            }
            return;
        };
        job.received += chunk.len() as u64;
        if job.bracketed {
            let mut data = std::mem::take(&mut job.carry);
            data.extend_from_slice(&chunk);
            let (clean, carry) = strip_paste_end(&data, job.received >= job.text.len);
            job.carry = carry;
            self.out.extend(clean);
        } else {
            self.out.extend(chunk);
        }
    }

    /// Moves the front send along; `unread` says how many input bytes the program has not read.
    pub fn advance(&mut self, bracketed_mode: bool, unread: impl Fn() -> Option<usize>) {
        let now = Instant::now();
        while let Some(job) = self.jobs.front_mut() {
            match job.stage {
                Stage::Queued => {
                    job.deadline = now + job.text.timeout;
                    job.bracketed = job.text.paste && bracketed_mode;
                    if job.bracketed {
                        self.out.extend(PASTE_START);
                    }
                    job.stage = Stage::Streaming;
                    continue;
                }
                Stage::Streaming if job.received >= job.text.len => {
                    if job.bracketed {
                        self.out.extend(PASTE_END);
                    }
                    job.all_text_taken(now);
                    continue;
                }
                Stage::AwaitingRead {
                    enter_at,
                    ref mut look_from,
                } if self.out.is_empty() => {
                    let gap = if job.text.len > 0 {
                        ENTER_GAP
                    } else {
                        READ_POLL
                    };
                    let look_from = *look_from.get_or_insert(now + gap);
                    if now >= enter_at || (now >= look_from && unread() == Some(0)) {
                        self.out.push_back(b'\r');
                        // The Enter gets its own timeout to be written (it may be pushed at
                        // the deadline, when the program still had not read the text).
                        job.deadline = now + job.text.timeout;
                        job.stage = Stage::Finishing {
                            settle_by: (now + ENTER_WAIT).min(job.deadline),
                            look_from: None,
                        };
                    }
                }
                Stage::Finishing {
                    settle_by,
                    ref mut look_from,
                } if self.out.is_empty() => {
                    let look_from = *look_from.get_or_insert(now + READ_POLL);
                    if now >= settle_by || (now >= look_from && unread() == Some(0)) {
                        if let Some(job) = self.jobs.pop_front() {
                            let _ = job.text.reply.send(Response::Ok);
                        }
                        continue;
                    }
                }
                _ => {}
            }
            // Waiting for a read ends by the stage's own deadline (above).
            let all_written = self.out.is_empty() && job.past_text();
            if now >= job.deadline && !all_written {
                self.time_out_front();
                continue;
            }
            break;
        }
    }

    fn time_out_front(&mut self) {
        let Some(job) = self.jobs.pop_front() else {
            return;
        };
        let within = humantime::format_duration(job.text.timeout);
        // What is queued ends with the paste's end and the Enter, once they were added.
        let trailer = match job.stage {
            Stage::Queued | Stage::Streaming => 0,
            Stage::AwaitingRead { .. } => usize::from(job.bracketed) * PASTE_END.len(),
            Stage::Finishing { .. } => {
                usize::from(job.bracketed) * PASTE_END.len() + usize::from(job.text.enter)
            }
        };
        let unsent_text = self.out.len().saturating_sub(trailer);
        let delivered = job.received.saturating_sub(unsent_text as u64);
        let message = if delivered < job.text.len || trailer == 0 {
            format!(
                "the program did not read its input: delivered {delivered} of {} bytes within \
                 {within}; the rest was not sent (raise --timeout)",
                job.text.len
            )
        } else {
            format!(
                "the program stopped reading its input: all {} bytes of text were delivered, \
                 but not the Enter or the paste's end within {within}",
                job.text.len
            )
        };
        self.out.clear();
        let _ = job.text.reply.send(Response::Error(message));
    }

    /// When [`Input::advance`] should run again without any other event.
    pub fn deadline(&self) -> Option<Instant> {
        let job = self.jobs.front()?;
        match job.stage {
            Stage::AwaitingRead { .. } | Stage::Finishing { .. } if self.out.is_empty() => {
                Some((Instant::now() + READ_POLL).min(job.deadline))
            }
            _ => Some(job.deadline),
        }
    }

    /// The program is gone: a send whose every byte was written succeeded (the program read
    /// it and ended, as `read x; exit` does); the others fail. Typed keys are forgotten.
    pub fn fail_all(&mut self, why: &str) {
        self.typed.clear();
        let written = self
            .jobs
            .front()
            .is_some_and(|j| matches!(j.stage, Stage::Finishing { .. }) && self.out.is_empty());
        self.out.clear();
        for (i, job) in self.jobs.drain(..).enumerate() {
            let answer = if i == 0 && written {
                Response::Ok
            } else {
                Response::Error(why.to_string())
            };
            let _ = job.text.reply.send(answer);
        }
    }
}

/// Removes paste terminators from text going inside a paste so it cannot end the paste early.
/// Returns the cleaned text and, unless `last`, a tail that may be the start of a terminator
/// split across chunks.
fn strip_paste_end(data: &[u8], last: bool) -> (Vec<u8>, Vec<u8>) {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if data[i..].starts_with(PASTE_END) {
            i += PASTE_END.len();
        } else if !last && PASTE_END.starts_with(&data[i..]) {
            return (out, data[i..].to_vec());
        } else {
            out.push(data[i]);
            i += 1;
        }
    }
    (out, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::strip_paste_end;

    #[test]
    fn paste_terminators_are_removed_even_when_split() {
        let (a, carry) = strip_paste_end(b"one\x1b[20", false);
        assert_eq!(a, b"one");
        let mut rest = carry;
        rest.extend_from_slice(b"1~two");
        let (b, carry) = strip_paste_end(&rest, true);
        assert_eq!(b, b"two");
        assert!(carry.is_empty());
        assert_eq!(strip_paste_end(b"x\x1b[2", true).0, b"x\x1b[2");
    }
}
