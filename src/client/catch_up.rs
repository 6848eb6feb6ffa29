//! Catching up: output the terminal has not shown [`LAG_LIMIT`] after it arrived is dropped,
//! with everything queued behind it here and in the server, for a fresh screen.
//!
//! Why: a terminal that takes output slower than the program writes it (a slow link, a slow
//! emulator, an ssh connection that stalls) would otherwise show ever older output: this
//! client's queue, its socket and the server's queue hold about 2.5 MiB, minutes of a slow
//! link, and a Ctrl-C or a detach takes as long to show. tmux does the same: it stops drawing
//! for a client that is behind and redraws its screen once it can.
//!
//! How: the attach loop numbers the chunks it hands to the screen writer. A chunk still not
//! written [`LAG_LIMIT`] after it arrived makes the writer say so; the loop then drops every
//! chunk handed so far (the writer cuts short the one it is writing), drops the output frames
//! that still arrive, and asks the server for a fresh screen ([`Request::Refresh`]), which
//! comes after [`Response::Fresh`]. A client continued after a stop does the same: what it
//! held is stale, and its shell wrote over the screen meanwhile.
//!
//! [`Request::Refresh`]: crate::protocol::Request::Refresh
//! [`Response::Fresh`]: crate::protocol::Response::Fresh

use std::borrow::Cow;
use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::write_room::WriteRoom;

/// How long output may wait for the terminal before the client stops showing the backlog.
/// Well above what a terminal that keeps up ever makes output wait (a flood into a local
/// terminal: a few milliseconds), well below the seconds a slow link would lag.
pub const LAG_LIMIT: Duration = Duration::from_secs(1);

/// Ends any escape sequence a chunk cut short left the terminal in.
const CANCEL: u8 = 0x18;

/// Output for the screen writer: its bytes, when they arrived, and its number.
pub struct Chunk {
    pub data: Vec<u8>,
    arrived: Instant,
    seq: u64,
}

/// The attach loop's side: numbers chunks, hears when the writer fell behind, drops.
pub struct CatchUp {
    /// The number the next chunk gets.
    next_seq: u64,
    /// Chunks numbered below this are dropped.
    drop_before: watch::Sender<u64>,
    /// One past the number of a chunk the writer found late.
    late: watch::Receiver<u64>,
    /// The number of the late chunk the writer last reported.
    late_seq: Option<u64>,
    /// A fresh screen was asked for and has not come: output frames are dropped until then.
    awaiting_fresh: bool,
}

/// The screen writer's side.
pub struct Dropping {
    drop_before: watch::Receiver<u64>,
    late: watch::Sender<u64>,
}

pub fn pair() -> (CatchUp, Dropping) {
    let (drop_tx, drop_rx) = watch::channel(0);
    let (late_tx, late_rx) = watch::channel(0);
    let catch_up = CatchUp {
        next_seq: 0,
        drop_before: drop_tx,
        late: late_rx,
        late_seq: None,
        awaiting_fresh: false,
    };
    let dropping = Dropping {
        drop_before: drop_rx,
        late: late_tx,
    };
    (catch_up, dropping)
}

impl CatchUp {
    /// `data`, which has just arrived, as the next chunk for the writer.
    pub fn chunk(&mut self, data: Vec<u8>) -> Chunk {
        let seq = self.next_seq;
        self.next_seq += 1;
        Chunk {
            data,
            arrived: Instant::now(),
            seq,
        }
    }

    /// Whether output arriving now is dropped: it was sent before the fresh screen.
    pub fn awaiting_fresh(&self) -> bool {
        self.awaiting_fresh
    }

    /// Resolves when the writer finds a chunk late that is not dropped yet. Cancellation-safe:
    /// a report stays in the watch until seen.
    pub async fn fell_behind(&mut self) {
        loop {
            if self.late.changed().await.is_err() {
                // The writer has ended: it reports nothing more.
                return std::future::pending().await;
            }
            let late = *self.late.borrow_and_update();
            if late > *self.drop_before.borrow() {
                self.late_seq = Some(late - 1);
                return;
            }
        }
    }

    /// Whether to catch up: the writer is late with a chunk, and newer output waits behind it
    /// (handed, or `waiting` for room). A late chunk with nothing behind it is the newest
    /// there is (a fresh screen the terminal is slow to take): dropping it would only ask
    /// for the same screen again, every second for as long as the terminal stalls.
    pub fn behind(&self, waiting: bool) -> bool {
        self.late_seq.is_some_and(|seq| {
            seq >= *self.drop_before.borrow() && (seq + 1 < self.next_seq || waiting)
        })
    }

    /// Drops every chunk handed to the writer so far.
    pub fn drop_handed(&mut self) {
        self.drop_before.send_replace(self.next_seq);
        self.late_seq = None;
    }

    /// Drops what was handed and starts waiting for a fresh screen; `true` when one must be
    /// asked for (none is on its way yet).
    pub fn start(&mut self) -> bool {
        self.drop_handed();
        !std::mem::replace(&mut self.awaiting_fresh, true)
    }

    /// The fresh screen follows: output is shown again.
    pub fn fresh_arrived(&mut self) {
        self.awaiting_fresh = false;
    }
}

impl Dropping {
    /// Whether chunk number `seq` was dropped.
    fn dropped(&mut self, seq: u64) -> bool {
        seq < *self.drop_before.borrow_and_update()
    }

    /// Whether `chunk` was dropped (for a writer that cannot be interrupted).
    pub fn is_dropped(&self, chunk: &Chunk) -> bool {
        chunk.seq < *self.drop_before.borrow()
    }

    /// Writes `chunk` to the terminal `fd` (after a CAN when the chunk before was cut short:
    /// the terminal may be inside an escape sequence, which CAN ends), and reports it late if
    /// that takes past [`LAG_LIMIT`] after it arrived. `None`: it was dropped while being
    /// written, and was cut short.
    pub async fn write(
        &mut self,
        room: &mut WriteRoom,
        fd: BorrowedFd<'_>,
        chunk: &Chunk,
        after_cut: bool,
    ) -> Option<io::Result<()>> {
        let data = if after_cut {
            let mut prefixed = Vec::with_capacity(chunk.data.len() + 1);
            prefixed.push(CANCEL);
            prefixed.extend_from_slice(&chunk.data);
            Cow::Owned(prefixed)
        } else {
            Cow::Borrowed(&chunk.data[..])
        };
        // Cancelling the write is safe: what it wrote is on the terminal, the rest is dropped,
        // and the wait for room keeps its registration for the next write.
        tokio::select! {
            biased;
            written = room.write_all(fd, &data) => Some(written),
            () = self.until_dropped(chunk.seq, chunk.arrived + LAG_LIMIT) => None,
        }
    }

    /// Resolves once chunk `seq` is dropped; says it is late at `deadline`.
    async fn until_dropped(&mut self, seq: u64, deadline: Instant) {
        let mut reported = false;
        while !self.dropped(seq) {
            tokio::select! {
                changed = self.drop_before.changed() => {
                    if changed.is_err() {
                        // The loop has ended: nothing is dropped any more.
                        return std::future::pending().await;
                    }
                }
                () = tokio::time::sleep_until(deadline), if !reported => {
                    reported = true;
                    self.late.send_replace(seq + 1);
                }
            }
        }
    }
}

/// What a writer that cut a chunk short writes before it ends (see [`Dropping::write`]).
pub const CUT_END: &[u8] = &[CANCEL];

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk the terminal does not take is reported late once, after the limit; dropping
    /// it ends its write; chunks handed before the drop are dropped, later ones are not.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_late_chunk_is_reported_then_cut_short_when_dropped() {
        let (mut catch_up, mut dropping) = pair();
        let (ours, _theirs) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        ours.set_nonblocking(true).expect("nonblocking");
        use std::os::fd::AsFd;
        let big = vec![b'x'; 8 << 20];
        let first = catch_up.chunk(big);
        let second = catch_up.chunk(b"next".to_vec());
        let writer = async {
            let mut room = WriteRoom::default();
            let cut = dropping.write(&mut room, ours.as_fd(), &first, false).await;
            (cut.is_none(), dropping.is_dropped(&second))
        };
        let looker = async {
            let start = Instant::now();
            catch_up.fell_behind().await;
            let waited = start.elapsed();
            assert!(
                catch_up.behind(false),
                "a newer chunk waits behind the late one"
            );
            assert!(catch_up.start(), "the first catch-up asks for a screen");
            assert!(!catch_up.start(), "one screen is asked for at a time");
            waited
        };
        let ((cut, second_dropped), waited) = tokio::join!(writer, looker);
        assert!(cut, "the write ends when its chunk is dropped");
        assert!(second_dropped, "everything handed before the drop goes");
        assert!(waited >= LAG_LIMIT, "reported late after {waited:?}");
        let third = catch_up.chunk(Vec::new());
        assert!(
            !dropping.is_dropped(&third),
            "output after the drop is kept"
        );
        assert!(!catch_up.behind(true), "what was late is gone");
        assert!(
            catch_up.awaiting_fresh(),
            "output is dropped until the screen"
        );
        catch_up.fresh_arrived();
        assert!(!catch_up.awaiting_fresh());
    }

    /// A late chunk with nothing newer behind it is left to finish: dropping the newest
    /// output there is would only fetch the same screen again.
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_late_chunk_with_nothing_behind_it_is_left_to_finish() {
        let (mut catch_up, mut dropping) = pair();
        let (ours, _theirs) = std::os::unix::net::UnixStream::pair().expect("socketpair");
        ours.set_nonblocking(true).expect("nonblocking");
        use std::os::fd::AsFd;
        let only = catch_up.chunk(vec![b'x'; 8 << 20]);
        let mut room = WriteRoom::default();
        let write = dropping.write(&mut room, ours.as_fd(), &only, false);
        tokio::pin!(write);
        tokio::select! {
            _ = &mut write => panic!("nobody reads: the write cannot finish"),
            () = catch_up.fell_behind() => {}
        }
        assert!(!catch_up.behind(false), "nothing newer: no catch-up");
        assert!(catch_up.behind(true), "output arriving now is newer");
    }
}
