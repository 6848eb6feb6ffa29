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
//! Only while the client runs in its terminal's foreground: a client that was stopped (or put
//! in the background) has given the terminal back to its shell, and output written there would
//! land over the shell's prompt. Its output is relayed instead, for when it runs again.
//!
//! [`Request::Drained`]: crate::protocol::Request::Drained

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::proc_stat::{Looked, Standing, Watched};
use crate::protocol::DIRECT_OUTPUT_MAX;

/// How long a look that found the client in front is trusted. Output a stopped client's
/// terminal may still get: at most this long after the stop, before its shell (which must
/// first notice the stop) prints anything there.
const CLIENT_FRESH: Duration = Duration::from_millis(10);

/// What the connection's reader hands the writer: the terminal and the client's reports.
#[derive(Default)]
pub struct Shared {
    terminal: Mutex<Option<(OwnedFd, Looked)>>,
    /// Frames the client said it wrote to its terminal.
    drained: AtomicU64,
}

impl Shared {
    /// The client (process `client`) passed its terminal; unused when the client cannot be
    /// watched.
    pub fn offer(&self, terminal: OwnedFd, client: i32) {
        if let Some(client) = Watched::open(client) {
            let client = Looked::new(client, CLIENT_FRESH);
            *self.terminal.lock().unwrap_or_else(|p| p.into_inner()) = Some((terminal, client));
        }
    }

    /// The client wrote `frames` relayed frames to its terminal.
    pub fn drained(&self, frames: u64) {
        self.drained.store(frames, Ordering::Release);
    }
}

/// The writer's side: the terminal once passed, and how many frames it relayed.
pub struct Direct {
    shared: Arc<Shared>,
    terminal: Option<(OwnedFd, Looked)>,
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
        let Some((terminal, client)) = &mut self.terminal else {
            return data;
        };
        if client.look() != Standing::InFront {
            return data;
        }
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
