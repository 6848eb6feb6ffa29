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
use crate::proc_stat::{Looked, ProcStat, Standing, Watched};

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
    client: Looked,
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
            client: Looked::new(client, TYPIST_FRESH),
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
                // A terminal that hung up (ssh dropped, the window closed) stays readable:
                // tokio cannot clear a hang-up, so not reading it would spin. Nobody types
                // there any more, whoever is in front.
                Ok(guard) if guard.ready().is_read_closed() => vec![Key::Gone],
                Ok(mut guard) => match self.client.look() {
                    Standing::InFront => match crate::keyboard::read_ready(guard, &mut self.buf) {
                        Some(0) => Vec::new(),
                        Some(n) => self.split(n),
                        None => vec![Key::Gone],
                    },
                    // Not ours to read: wait for the next key, and look again then.
                    Standing::Behind => {
                        guard.clear_ready();
                        Vec::new()
                    }
                    // The client died without a word (SIGKILL): its keys are nobody's.
                    Standing::Gone => vec![Key::Gone],
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

fn keys(actions: Vec<Action>) -> Vec<Key> {
    actions
        .into_iter()
        .map(|action| match action {
            Action::Forward(bytes) => Key::Typed(bytes),
            Action::Detach => Key::Detach,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyboard::chord::DetachKey;

    /// A process to stand for the client: `sleep`, stopped or ended as a test needs.
    struct Stand(std::process::Child);

    impl Stand {
        fn start() -> Stand {
            let child = std::process::Command::new("sleep")
                .arg("100")
                .spawn()
                .expect("start sleep");
            Stand(child)
        }

        fn pid(&self) -> i32 {
            self.0.id() as i32
        }

        fn stop(&self) {
            // SAFETY: kill(2) on our own child.
            unsafe { libc::kill(self.pid(), libc::SIGSTOP) };
            let start = Instant::now();
            while !ProcStat::of(self.pid()).is_some_and(|stat| stat.stopped()) {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "sleep did not stop"
                );
                std::thread::yield_now();
            }
        }
    }

    impl Drop for Stand {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// A keyboard on a fresh pty's terminal, watching `client`; the pty's master with it.
    fn keyboard_on_pty(client: i32) -> (Keyboard, OwnedFd) {
        let (master, terminal) = crate::pty::open_pair(24, 80).expect("pty");
        let keyboard = Keyboard::new(terminal, DetachKey::default(), client).expect("keyboard");
        (keyboard, master)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// The keys of the first turn that brings any, within a few turns (none: a keyboard
    /// that keeps coming back empty, or waits for good).
    fn next_keys(runtime: &tokio::runtime::Runtime, keyboard: &mut Keyboard) -> Vec<Key> {
        let turns = async {
            for _ in 0..5 {
                let keys = keyboard.next().await;
                if !keys.is_empty() {
                    return keys;
                }
            }
            Vec::new()
        };
        runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), turns).await })
            .unwrap_or_default()
    }

    /// ssh drops while the client is stopped (its shell had the terminal): the terminal stays
    /// readable for good, and the keyboard must say it is gone instead of looking again and
    /// again (it spun the server's one thread at 100%).
    #[test]
    fn a_terminal_that_hung_up_is_gone_even_while_the_client_is_stopped() {
        let runtime = runtime();
        let _in_runtime = runtime.enter();
        let client = Stand::start();
        let (mut keyboard, master) = keyboard_on_pty(client.pid());
        client.stop();
        drop(master);
        assert_eq!(next_keys(&runtime, &mut keyboard), vec![Key::Gone]);
    }

    /// A client killed outright (SIGKILL) says nothing; the keys typed after it are nobody's.
    #[test]
    fn keys_after_the_client_died_end_the_keyboard() {
        let runtime = runtime();
        let _in_runtime = runtime.enter();
        let mut client = Stand::start();
        let (mut keyboard, master) = keyboard_on_pty(client.pid());
        client.0.kill().expect("kill the client");
        client.0.wait().expect("reap it");
        // A line: the fresh terminal is in canonical mode.
        rustix::io::write(&master, b"typed\r").expect("type");
        assert_eq!(next_keys(&runtime, &mut keyboard), vec![Key::Gone]);
    }
}
