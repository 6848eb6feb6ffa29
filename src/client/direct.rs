//! The client's half of direct output (server/direct.rs): it passes the server its terminal,
//! reports when it has written every frame relayed to it, and, when it ends the attachment
//! itself, waits until the server let go of the terminal before giving it back to the shell.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use crate::protocol::stream::{ReadHalf, WriteHalf};
use crate::protocol::{self, DIRECT_OUTPUT_MAX, FrameReader, Request, Response};

/// How long a detach waits for the server to let go of the terminal: a server that does not
/// answer in this time is hung, and the terminal is given back regardless.
const RELEASE_WAIT: Duration = Duration::from_secs(1);

/// The output relayed through this client, counted in frames.
#[derive(Default)]
pub struct Relayed {
    /// The server has our terminal.
    passed: bool,
    received: u64,
    /// Frames dropped before they reached the screen writer (see catch_up.rs): never written,
    /// done with all the same.
    dropped: u64,
    reported: u64,
    /// The last frame was small enough that, had we been drained, it would have gone direct:
    /// only then is a report worth its message (a flood's big frames never go direct).
    last_small: bool,
}

impl Relayed {
    /// Passes `terminal` to the server (best effort: without it, everything is relayed).
    pub async fn pass(&mut self, wr: &mut WriteHalf, terminal: Option<OwnedFd>) {
        let Some(terminal) = terminal else {
            return;
        };
        let frame = protocol::encode(&Request::Terminal);
        self.passed = wr.write_with_fd(&frame, terminal.as_fd()).await.is_ok();
    }

    /// Whether the server may be writing to the terminal.
    pub fn passed(&self) -> bool {
        self.passed
    }

    /// An output frame arrived.
    pub fn received(&mut self, data: &[u8]) {
        self.received += 1;
        self.last_small = data.len() <= DIRECT_OUTPUT_MAX;
    }

    /// A frame that arrived was dropped before it reached the screen writer.
    pub fn dropped(&mut self) {
        self.dropped += 1;
    }

    /// Now that the screen writer is done with `written` frames (written or dropped), the
    /// report due to the server, if any.
    pub fn report(&mut self, written: u64) -> Option<Request> {
        let done = written + self.dropped;
        let due = self.passed && done == self.received && done != self.reported && self.last_small;
        due.then(|| {
            self.reported = done;
            Request::Drained(done)
        })
    }
}

/// Ends our side of the attachment and waits until the server's side closes: its writer, the
/// only thing that writes to our terminal, is gone then, so nothing lands after the shell's
/// prompt. Output arriving meanwhile is dropped (the user detached).
pub async fn release(frames: &mut FrameReader<ReadHalf>, wr: &mut WriteHalf) {
    use tokio::io::AsyncWriteExt;
    let _ = wr.shutdown().await;
    let closed = async { while protocol::next_message::<_, Response>(frames).await.is_ok() {} };
    let _ = tokio::time::timeout(RELEASE_WAIT, closed).await;
}
