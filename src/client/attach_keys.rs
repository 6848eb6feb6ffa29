//! The keyboard during an attach: the probe's answers and focus reports picked out, the keys
//! through the detach chord's matcher to the server.

use std::time::Instant;

use super::attach::Ending;
use super::terminal_io::KeyboardReader;
use crate::keyboard::chord::{Action, ChordMatcher};
use crate::keyboard::focus::Piece;
use crate::protocol::stream::WriteHalf;
use crate::protocol::{self, Request};

/// The keyboard, with the probe's answers picked out of it.
pub(super) struct Keyboard<'a> {
    pub(super) rx: &'a mut KeyboardReader,
    pub(super) prober: &'a mut super::probe::Prober,
    /// Keys for the server not sent yet: typed before the attach started, or while the
    /// server went away (an upgrade hands the session to a new one), for the next attachment.
    /// While any wait here, the keyboard is not read.
    pub(super) typed: Vec<u8>,
    pub(super) focus: crate::keyboard::focus::FocusFilter,
}

impl Keyboard<'_> {
    /// Takes the probe's answers and focus reports out of `bytes`, tells the server what they
    /// said (unless read-only) and sends the keys on, all in the order they came; `Some` when
    /// the keys detached.
    pub(super) async fn deliver(
        &mut self,
        bytes: &[u8],
        wr: &mut WriteHalf,
        matcher: &mut ChordMatcher,
        read_only: bool,
    ) -> Option<Ending> {
        let typed = self.prober.feed(bytes);
        if let Some(profile) = self.prober.take_profile().filter(|_| !read_only) {
            // A server that stopped listening has its last word (the exit notice) waiting in
            // the socket: the read side says how this ends.
            let _ = protocol::write_frame(wr, &Request::Profile(profile)).await;
        }
        for piece in self.focus.feed(&typed) {
            match piece {
                Piece::Keys(keys) => {
                    let actions = matcher.feed(&keys, Instant::now());
                    if let Some(ending) = send_keys(wr, actions, read_only, &mut self.typed).await {
                        return Some(ending);
                    }
                }
                Piece::Focus(focused) if !read_only => {
                    let _ = protocol::write_frame(wr, &Request::Focus(focused)).await;
                }
                Piece::Focus(_) => {}
            }
        }
        None
    }

    /// The terminal's profile, once it answered the probe's sentinel (before `deadline`).
    pub(super) async fn await_profile(
        &mut self,
        deadline: Instant,
    ) -> Option<crate::term::Profile> {
        while !self.prober.finished() {
            match tokio::time::timeout_at(deadline.into(), self.rx.recv()).await {
                Ok(Some(Some(bytes))) => {
                    let typed = self.prober.feed(&bytes);
                    self.typed.extend_from_slice(&typed);
                }
                _ => break,
            }
        }
        self.prober.take_profile()
    }

    /// Drops input until the terminal answered the probe's sentinel, or `deadline`.
    pub(super) async fn settle(&mut self, deadline: Instant) {
        while !self.prober.finished() {
            match tokio::time::timeout_at(deadline.into(), self.rx.recv()).await {
                Ok(Some(Some(bytes))) => {
                    self.prober.feed(&bytes);
                }
                _ => return,
            }
        }
    }
}

/// Sends what the chord matcher let through; `Some` when the attachment should end. Keys the
/// server cannot take (it has gone: the program ended, or an upgrade handed the session on)
/// go to `unsent`, and so does every key after them, in order.
pub(super) async fn send_keys(
    wr: &mut WriteHalf,
    actions: Vec<Action>,
    read_only: bool,
    unsent: &mut Vec<u8>,
) -> Option<Ending> {
    for action in actions {
        match action {
            Action::Detach => return Some(Ending::Detached),
            Action::Forward(_) if read_only => {}
            Action::Forward(bytes) if !unsent.is_empty() => unsent.extend_from_slice(&bytes),
            Action::Forward(bytes) => {
                let input = Request::Input(bytes);
                // The server's last word (its exit notice, the upgrade) is still in the
                // socket: the read side says how this ends.
                if protocol::write_frame(wr, &input).await.is_err()
                    && let Request::Input(bytes) = input
                {
                    unsent.extend_from_slice(&bytes);
                }
            }
        }
    }
    None
}
