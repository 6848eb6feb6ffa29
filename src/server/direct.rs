//! Output written straight to an attached client's terminal, when the client has written
//! everything relayed to it: a key's echo then wakes neither the client nor its socket.
//!
//! The client passes its terminal (its own non-blocking open of it) after the attach. Output
//! goes there directly only while it is small ([`DIRECT_OUTPUT_MAX`]) and the client has
//! reported ([`Request::Drained`]) that it wrote every frame relayed so far, so the terminal
//! shows everything in order. Whatever the terminal does not take at once is relayed as
//! before, and the client's queue absorbs a slow terminal or a flood. Bound: no buffer here;
//! a write that does not fit goes to the client's outbox, which has its own bounds.
//!
//! [`Request::Drained`]: crate::protocol::Request::Drained

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::protocol::DIRECT_OUTPUT_MAX;

/// What the connection's reader hands the writer: the terminal and the client's reports.
#[derive(Default)]
pub struct Shared {
    terminal: Mutex<Option<OwnedFd>>,
    /// Frames the client said it wrote to its terminal.
    drained: AtomicU64,
}

impl Shared {
    /// The client passed its terminal.
    pub fn offer(&self, terminal: OwnedFd) {
        *self.terminal.lock().unwrap_or_else(|p| p.into_inner()) = Some(terminal);
    }

    /// The client wrote `frames` relayed frames to its terminal.
    pub fn drained(&self, frames: u64) {
        self.drained.store(frames, Ordering::Release);
    }
}

/// The writer's side: the terminal once passed, and how many frames it relayed.
pub struct Direct {
    shared: Arc<Shared>,
    terminal: Option<OwnedFd>,
    relayed: u64,
}

impl Direct {
    pub fn new(shared: Arc<Shared>) -> Direct {
        Direct {
            shared,
            terminal: None,
            relayed: 0,
        }
    }

    /// Writes what it can of `data` to the terminal; returns the rest, to be relayed.
    pub fn write<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        if data.len() > DIRECT_OUTPUT_MAX
            || self.shared.drained.load(Ordering::Acquire) != self.relayed
        {
            return data;
        }
        if self.terminal.is_none() {
            self.terminal = self
                .shared
                .terminal
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
        }
        let Some(terminal) = &self.terminal else {
            return data;
        };
        match rustix::io::write(terminal, data) {
            Ok(n) => &data[n..],
            // Full: relay. Interrupted: relay rather than retry here.
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => data,
            // The terminal is gone (or never was one we can write): relay from now on; the
            // client notices its terminal's end itself.
            Err(_) => {
                self.terminal = None;
                data
            }
        }
    }

    /// `frames` more frames went through the client.
    pub fn relayed(&mut self, frames: u64) {
        self.relayed += frames;
    }
}
