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
//! written [`LAG_LIMIT`] after it arrived makes the writer say so (and take it back once the
//! chunk is written). If newer output waits behind it, the loop drops every chunk handed so
//! far (the writer cuts short the one it is writing, then writes [`CANCEL`]), drops the output
//! frames that still arrive, and asks the server for a fresh screen ([`Request::Refresh`]),
//! which comes as [`Response::Fresh`]. A full screen is never reported late: cut short for a
//! newer one over a slow link, it would be cut again and again, and the terminal would never
//! show a whole screen. A client continued after a stop catches up too: what it held is
//! stale, and its shell wrote over the screen meanwhile.
//!
//! [`Request::Refresh`]: crate::protocol::Request::Refresh
//! [`Response::Fresh`]: crate::protocol::Response::Fresh

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

/// CAN: ends any escape sequence or string a chunk cut short left the terminal in (the fresh
/// screen then sets every mode anew).
pub const CANCEL: &[u8] = &[0x18];

/// Output for the screen writer: its bytes, when they arrived, and its number.
pub struct Chunk {
    pub data: Vec<u8>,
    arrived: Instant,
    seq: u64,
    /// A full screen: never reported late.
    screen: bool,
}

/// The attach loop's side: numbers chunks, hears when the writer fell behind, drops.
pub struct CatchUp {
    /// The number the next chunk gets.
    next_seq: u64,
    /// Chunks numbered below this are dropped.
    drop_before: watch::Sender<u64>,
    /// One past the number of a chunk the writer found late; 0 once it was written after all.
    late: watch::Receiver<u64>,
    /// The number of the chunk the writer found late and has not written yet.
    late_seq: Option<u64>,
    /// A fresh screen was asked for and has not come: output frames are dropped until then.
    awaiting_fresh: bool,
}

/// The screen writer's side.
pub struct Dropping {
    drop_before: watch::Receiver<u64>,
    late: watch::Sender<u64>,
    /// The chunk last reported late, until the writer is done with it.
    reported: Option<u64>,
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
        reported: None,
    };
    (catch_up, dropping)
}

impl CatchUp {
    /// `data`, which has just arrived, as the next chunk for the writer; `screen` when it is a
    /// full screen.
    pub fn chunk(&mut self, data: Vec<u8>, screen: bool) -> Chunk {
        let seq = self.next_seq;
        self.next_seq += 1;
        Chunk {
            data,
            arrived: Instant::now(),
            seq,
            screen,
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
            if late == 0 {
                // Written after all.
                self.late_seq = None;
            } else if late > *self.drop_before.borrow() {
                self.late_seq = Some(late - 1);
                return;
            }
        }
    }

    /// Whether to catch up: the writer is late with a chunk, and newer output waits behind it
    /// (handed, or `waiting` for room). A late chunk with nothing behind it is the newest
    /// there is: dropping it would only ask for the same screen again, every second for as
    /// long as the terminal stalls.
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

    /// A fresh screen came: output is shown again.
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

    /// Writes `chunk` to the terminal `fd`, and reports it late if that takes past
    /// [`LAG_LIMIT`] after it arrived (unless it is a full screen). `None`: it was dropped
    /// while being written, and was cut short (write [`CANCEL`] next).
    pub async fn write(
        &mut self,
        room: &mut WriteRoom,
        fd: BorrowedFd<'_>,
        chunk: &Chunk,
    ) -> Option<io::Result<()>> {
        let deadline = (!chunk.screen).then(|| chunk.arrived + LAG_LIMIT);
        // Cancelling the write is safe: what it wrote is on the terminal, the rest is dropped,
        // and the wait for room keeps its registration for the next write.
        let written = tokio::select! {
            biased;
            written = room.write_all(fd, &chunk.data) => Some(written),
            () = self.until_dropped(chunk.seq, deadline) => None,
        };
        if self.reported.take().is_some() && written.is_some() {
            // Written after all: newer output is no sign of lagging any more.
            self.late.send_replace(0);
        }
        written
    }

    /// Resolves once chunk `seq` is dropped; says it is late at `deadline`, if any.
    async fn until_dropped(&mut self, seq: u64, deadline: Option<Instant>) {
        while !self.dropped(seq) {
            let report = deadline.filter(|_| self.reported.is_none());
            tokio::select! {
                changed = self.drop_before.changed() => {
                    if changed.is_err() {
                        // The loop has ended: nothing is dropped any more.
                        return std::future::pending().await;
                    }
                }
                () = sleep_until_opt(report) => {
                    self.reported = Some(seq);
                    self.late.send_replace(seq + 1);
                }
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "catch_up_tests.rs"]
mod tests;
