//! Synchronized output (`?2026`): a program draws a frame between BSU and ESU, and no client
//! may start from half of one. An attach (or a lagging client's fresh screen) that arrives
//! while the program is inside a frame waits for the frame's end, or at most [`FRAME_WAIT`]
//! for a program that never ends it.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Session;
use crate::server::commands::SessionCmd;

/// The longest a frame holds back an attach; terminals give up on a frame after about as long.
pub(super) const FRAME_WAIT: Duration = Duration::from_millis(150);

/// [`FRAME_WAIT`]; tests that must see an attach wait stretch it (debug builds with
/// `LINGER_TEST_HOOKS=1` only), since their own steps may take longer than a frame.
fn frame_wait() -> Duration {
    let stretched =
        cfg!(debug_assertions) && std::env::var_os("LINGER_TEST_HOOKS").is_some_and(|v| v == "1");
    std::env::var("LINGER_TEST_FRAME_WAIT_MS")
        .ok()
        .filter(|_| stretched)
        .and_then(|ms| ms.parse().ok())
        .map_or(FRAME_WAIT, Duration::from_millis)
}

/// The end of a frame as programs write it.
const FRAME_END: &[u8] = b"\x1b[?2026l";

/// Commands waiting for the program's frame to end. Bounded in time by [`FRAME_WAIT`]; in
/// number by the clients that can connect meanwhile.
#[derive(Default)]
pub(super) struct FrameWait {
    waiting: Vec<SessionCmd>,
    pub(super) deadline: Option<Instant>,
    /// Running what waited: it waits no more, even if the frame is still open (timed out).
    releasing: bool,
}

impl Session {
    /// Whether `cmd` must wait for the current frame to end; if so it is kept until then.
    pub(super) fn wait_for_frame(&mut self, cmd: SessionCmd) -> Option<SessionCmd> {
        let held = matches!(
            cmd,
            SessionCmd::Attach { .. } | SessionCmd::Resync { .. } | SessionCmd::Refresh { .. }
        );
        if !held || self.frames.releasing || !self.output_open || !self.model.synchronized() {
            return Some(cmd);
        }
        if self.frames.waiting.is_empty() {
            crate::log::info(&format!(
                "session {}: an attach waits for the program's frame to end",
                self.name
            ));
        }
        self.frames.waiting.push(cmd);
        self.frames
            .deadline
            .get_or_insert_with(|| Instant::now() + frame_wait());
        None
    }

    /// No command waits for a frame to end (output need not be split at frame ends).
    pub(super) fn frames_idle(&self) -> bool {
        self.frames.waiting.is_empty()
    }

    /// Output, split after each frame's end while commands wait for one, so they run on the
    /// state between two frames and see none of the next.
    pub(super) fn on_output_framed(&mut self, mut chunk: Bytes) {
        while !self.frames.waiting.is_empty() {
            let Some(at) = memchr::memmem::find(&chunk, FRAME_END) else {
                break;
            };
            let head = chunk.split_to(at + FRAME_END.len());
            self.on_output(head);
            if !self.model.synchronized() {
                self.release_frame_waiters();
            }
        }
        if !chunk.is_empty() {
            self.on_output(chunk);
        }
        if !self.model.synchronized() {
            self.release_frame_waiters();
        }
    }

    /// The frame ended, took too long, or the output ended: run what waited, in order.
    pub(super) fn release_frame_waiters(&mut self) {
        self.frames.deadline = None;
        self.frames.releasing = true;
        for cmd in std::mem::take(&mut self.frames.waiting) {
            self.on_command(cmd);
        }
        self.frames.releasing = false;
    }
}
