//! Keys read straight from an attached client's terminal, once the client handed its keyboard
//! over (`Request::Keyboard`): a keystroke then wakes the server alone, not the client as well.
//!
//! The detach chord and the terminal's focus reports are picked out here, by the same code the
//! client runs (`crate::keyboard`). Bound: one read of at most [`READ_SIZE`] bytes at a time;
//! the connection hands each read's keys to the session before it reads again, so a paste waits
//! in the terminal, not here.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

use crate::keyboard::chord::{Action, ChordMatcher, DetachKey};
use crate::keyboard::focus::{FocusFilter, Piece};
use crate::proc_stat::{ProcStat, Watched};

/// Bytes taken from the terminal per read.
const READ_SIZE: usize = 16 * 1024;
/// How long a look at the client (running, in the foreground) holds before the next key
/// looks again: less than anyone takes to stop it and type at the shell that comes back.
const TYPIST_FRESH: Duration = Duration::from_millis(100);

/// What one turn of the keyboard brought, in the order typed.
#[derive(Debug, PartialEq)]
pub enum Key {
    Typed(Vec<u8>),
    Focus(bool),
    /// The detach chord: the attachment ends, and keys after it are the shell's.
    Detach,
    /// The terminal hung up (or failed): nobody is typing there any more.
    Gone,
}

/// An attached client's keyboard, read by the server.
pub struct Keyboard {
    terminal: AsyncFd<OwnedFd>,
    /// The client, looked at before reading: while it is stopped or in the background (its
    /// shell took the terminal back), the keys are the shell's.
    client: Watched,
    /// When the client was last seen running in the foreground.
    client_seen: Option<Instant>,
    matcher: ChordMatcher,
    focus: FocusFilter,
    buf: Vec<u8>,
}

impl Keyboard {
    /// Watches `terminal` for keys typed while the `client` runs in its foreground; fails
    /// when it cannot be watched (not pollable), or is the server's own terminal (a server
    /// in the background there would be stopped by reading it).
    pub fn new(terminal: OwnedFd, key: DetachKey, client: i32) -> std::io::Result<Keyboard> {
        let client =
            Watched::open(client).ok_or_else(|| std::io::Error::other("the client is gone"))?;
        let device = rustix::fs::fstat(&terminal)?.st_rdev;
        if ProcStat::ours().is_some_and(|stat| stat.tty_nr != 0 && stat.tty_nr == device) {
            return Err(std::io::Error::other("it is the server's own terminal"));
        }
        // Non-blocking already (the client's own open of its terminal), but set it again: a
        // blocking read here would stop every session of this server.
        rustix::io::ioctl_fionbio(&terminal, true)?;
        // Readable only: a terminal reports room to write whenever it shows output.
        // SAFETY: a descriptor passed to this connection alone, registered only here.
        let terminal =
            unsafe { AsyncFd::register_with_interest(terminal, tokio::io::Interest::READABLE) }?;
        Ok(Keyboard {
            terminal,
            client,
            client_seen: None,
            matcher: ChordMatcher::new(key),
            focus: FocusFilter::default(),
            buf: vec![0; READ_SIZE],
        })
    }

    /// Waits for keys, or for a held-back prefix or a lone chord to be due. Cancellation-safe:
    /// the terminal is read only once this is sure to return.
    pub async fn next(&mut self) -> Vec<Key> {
        let deadline = self.matcher.deadline();
        let due = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            ready = self.terminal.readable() => match ready {
                Ok(mut guard) if !in_front(&self.client, &mut self.client_seen) => {
                    // Not ours to read: wait for the next key, and look again then.
                    guard.clear_ready();
                    Vec::new()
                }
                Ok(guard) => match crate::keyboard::read_ready(guard, &mut self.buf) {
                    Some(0) => Vec::new(),
                    Some(n) => self.split(n),
                    None => vec![Key::Gone],
                },
                Err(_) => vec![Key::Gone],
            },
            () = due => keys(self.matcher.tick(Instant::now())),
        }
    }

    /// Lets go of the keyboard (the client reads it again): what the chord matcher held back
    /// goes on, and a chord pressed once detaches, as when its wait runs out.
    pub fn release(mut self) -> Vec<Key> {
        keys(self.matcher.give_up())
    }

    /// The keys and focus reports among the `n` bytes just read.
    fn split(&mut self, n: usize) -> Vec<Key> {
        let mut out = Vec::new();
        for piece in self.focus.feed(&self.buf[..n]) {
            match piece {
                Piece::Keys(typed) => {
                    out.extend(keys(self.matcher.feed(&typed, Instant::now())));
                    if out.last() == Some(&Key::Detach) {
                        // What followed the chord is the shell's; it is read already, so it
                        // is dropped, as the client drops it.
                        break;
                    }
                }
                Piece::Focus(focused) => out.push(Key::Focus(focused)),
            }
        }
        out
    }
}

/// Whether the client runs in its terminal's foreground (looked at again once the last look is
/// [`TYPIST_FRESH`] old).
fn in_front(client: &Watched, seen: &mut Option<Instant>) -> bool {
    let now = Instant::now();
    if seen.is_some_and(|at| now < at + TYPIST_FRESH) {
        return true;
    }
    let in_front = client
        .now()
        .is_some_and(|stat| !stat.stopped() && stat.in_foreground());
    *seen = in_front.then_some(now);
    in_front
}

fn keys(actions: Vec<Action>) -> Vec<Key> {
    actions
        .into_iter()
        .map(|action| match action {
            Action::Forward(bytes) => Key::Typed(bytes),
            Action::Detach => Key::Detach,
        })
        .collect()
}
