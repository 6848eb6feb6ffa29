//! One attached client's output queue: bounded per client and across the server, and what it
//! does at the bound (drop the backlog, resync from the model when the client catches up).
//!
//! The session pushes without ever waiting; the client's writer task pops and writes to the
//! socket. A client that stops reading (a stalled ssh, a suspended terminal) costs at most
//! [`CLIENT_QUEUE_BYTES`] here, whatever the program prints, and all clients together at most
//! [`TOTAL_QUEUE_BYTES`]; past either bound the backlog is dropped at once (freeing its memory)
//! and the client gets a fresh screen instead when it drains its socket.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::Notify;

/// Bytes of output one client may have queued before its backlog is dropped.
pub const CLIENT_QUEUE_BYTES: usize = 1 << 20;
/// Bytes of output all clients of this server together may have queued.
pub const TOTAL_QUEUE_BYTES: usize = 32 << 20;

static TOTAL_QUEUED: AtomicUsize = AtomicUsize::new(0);

/// What the session tells a client besides output; it is sent once, after queued output.
#[derive(Debug, Clone)]
pub enum Control {
    /// The program ended: the notice, and its final screen (see [`Response::Exited`]).
    ///
    /// [`Response::Exited`]: crate::protocol::Response::Exited
    Exited {
        message: String,
        screen: Bytes,
    },
    Detached,
    /// The server is handing over to a new one (`linger upgrade`).
    Upgrading,
}

/// An item for the client's writer.
#[derive(Debug)]
pub enum Outgoing {
    Output(Bytes),
    /// Ends the attachment after everything queued before it.
    End(Control),
    /// The client fell behind and its backlog was dropped: ask the session for a fresh screen.
    Resync,
    /// A full screen (an attach's replay, or a fresh one after the client fell behind or
    /// asked): output after it continues from it.
    Fresh(Bytes),
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Bytes>,
    bytes: usize,
    /// The backlog was dropped; output is discarded until the session sends a fresh screen.
    lagging: bool,
    /// The writer asked for that fresh screen already.
    resync_asked: bool,
    /// A full screen, written before the items. Outside the bounds: one screen per client,
    /// and never dropped but by a newer one (or the end of a detach).
    fresh: Option<Bytes>,
    end: Option<Control>,
    /// An end was queued (it stays set once the writer took it).
    end_queued: bool,
}

#[derive(Default)]
pub struct Outbox {
    queue: Mutex<Queue>,
    ready: Notify,
    /// Wakes [`Outbox::ended`] when the end is queued.
    ending: Notify,
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Every critical section is a few field updates that cannot panic halfway.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues live output; past a bound, drops the backlog and marks the client lagging.
    pub fn push_output(&self, data: &Bytes) {
        let mut q = self.lock();
        if q.lagging || q.end.is_some() {
            return;
        }
        let over_client = q.bytes + data.len() > CLIENT_QUEUE_BYTES;
        let over_total = TOTAL_QUEUED.load(Ordering::Relaxed) + data.len() > TOTAL_QUEUE_BYTES;
        if (over_client || over_total) && !q.items.is_empty() {
            clear(&mut q);
            q.lagging = true;
        } else {
            add(&mut q, data.clone());
        }
        drop(q);
        self.ready.notify_one();
    }

    /// Replaces everything queued with a full screen (an attach's replay, a resync, or one the
    /// client asked for), sent as [`Outgoing::Fresh`] so that the client knows where output it
    /// dropped ends, and ends any lagging. Ahead of an end already queued: a program that
    /// exited leaves its final screen.
    pub fn push_fresh(&self, screen: Bytes) {
        let mut q = self.lock();
        clear(&mut q);
        q.lagging = false;
        q.resync_asked = false;
        q.fresh = Some(screen);
        drop(q);
        self.ready.notify_one();
    }

    /// Bytes of output queued for the client's writer.
    pub fn queued(&self) -> usize {
        self.lock().bytes
    }

    /// Whether the client dropped its backlog and waits for a fresh screen.
    pub fn is_lagging(&self) -> bool {
        self.lock().lagging
    }

    /// Ends the attachment once what is queued is written: all of it when the program ended
    /// (its final screen matters), none of it otherwise. After a detach or for an upgrade
    /// (which attaches again, with a replay) it is stale, and a slow terminal would show
    /// seconds of it before the detach.
    pub fn end(&self, control: Control) {
        let mut q = self.lock();
        if q.end.is_some() {
            return;
        }
        if !matches!(control, Control::Exited { .. }) {
            clear(&mut q);
            q.fresh = None;
        }
        q.end = Some(control);
        q.end_queued = true;
        drop(q);
        self.ready.notify_one();
        self.ending.notify_waiters();
    }

    /// Returns once the session has queued the attachment's end (the writer may take long to
    /// send it, behind a slow terminal). Cancellation-safe: it only watches.
    pub async fn ended(&self) {
        loop {
            let notified = self.ending.notified();
            tokio::pin!(notified);
            // Registered before the look, so an end queued between the two is not missed.
            notified.as_mut().enable();
            if self.lock().end_queued {
                return;
            }
            notified.await;
        }
    }

    /// The next thing to write, waiting for one.
    pub async fn next(&self) -> Outgoing {
        loop {
            {
                let mut q = self.lock();
                if let Some(screen) = q.fresh.take() {
                    return Outgoing::Fresh(screen);
                }
                if let Some(data) = q.items.pop_front() {
                    q.bytes -= data.len();
                    TOTAL_QUEUED.fetch_sub(data.len(), Ordering::Relaxed);
                    return Outgoing::Output(data);
                }
                if let Some(control) = q.end.take() {
                    return Outgoing::End(control);
                }
                if q.lagging && !q.resync_asked {
                    q.resync_asked = true;
                    return Outgoing::Resync;
                }
            }
            // A push between the unlock and here leaves a permit, so nothing is missed.
            self.ready.notified().await;
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        clear(&mut self.lock());
    }
}

fn add(q: &mut Queue, data: Bytes) {
    q.bytes += data.len();
    TOTAL_QUEUED.fetch_add(data.len(), Ordering::Relaxed);
    q.items.push_back(data);
}

fn clear(q: &mut Queue) {
    TOTAL_QUEUED.fetch_sub(q.bytes, Ordering::Relaxed);
    q.bytes = 0;
    q.items.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    #[test]
    fn a_stalled_client_keeps_at_most_its_bound_then_resyncs() {
        let outbox = Outbox::default();
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        for _ in 0..1000 {
            outbox.push_output(&chunk);
        }
        assert!(outbox.lock().bytes <= CLIENT_QUEUE_BYTES);
        assert!(outbox.is_lagging() || outbox.lock().bytes <= CLIENT_QUEUE_BYTES);
        // Whatever was kept drains first, then the writer asks for a fresh screen, once.
        let outcome = block_on(async {
            let mut outputs = 0;
            loop {
                match outbox.next().await {
                    Outgoing::Output(_) => outputs += 1,
                    Outgoing::Resync => break outputs,
                    Outgoing::End(_) | Outgoing::Fresh(_) => panic!("only output was queued"),
                }
            }
        });
        assert!(outcome <= CLIENT_QUEUE_BYTES / chunk.len());
        outbox.push_output(&chunk);
        assert_eq!(
            outbox.lock().bytes,
            0,
            "output is dropped until the fresh screen"
        );
        outbox.push_fresh(Bytes::from_static(b"screen"));
        outbox.push_output(&chunk);
        block_on(async {
            assert!(matches!(outbox.next().await, Outgoing::Fresh(d) if d == "screen"));
            assert!(matches!(outbox.next().await, Outgoing::Output(d) if d.len() == chunk.len()));
        });
    }

    /// A detach or an upgrade ends the attachment at once: what was queued is stale. The end
    /// of the program waits for what was queued: the final screen matters.
    #[test]
    fn only_the_program_s_end_waits_for_the_queue() {
        let chunk = Bytes::from_static(b"output");
        let exited = || Control::Exited {
            message: "bye".into(),
            screen: Bytes::new(),
        };
        for (control, kept) in [
            (Control::Detached, false),
            (Control::Upgrading, false),
            (exited(), true),
        ] {
            let outbox = Outbox::default();
            outbox.push_output(&chunk);
            outbox.end(control);
            block_on(async {
                if kept {
                    assert!(matches!(outbox.next().await, Outgoing::Output(_)));
                }
                assert!(matches!(outbox.next().await, Outgoing::End(_)));
            });
        }
    }

    /// A fresh screen replaces the queue, lagging or not; output after it follows, an end
    /// queued before it stays last, and it is outside the queue's bound.
    #[test]
    fn a_fresh_screen_replaces_the_queue() {
        let outbox = Outbox::default();
        let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
        for _ in 0..100 {
            outbox.push_output(&chunk);
        }
        assert!(outbox.is_lagging(), "past its bound, the client lags");
        outbox.end(Control::Exited {
            message: "bye".into(),
            screen: Bytes::new(),
        });
        outbox.push_fresh(Bytes::from_static(b"screen"));
        assert!(!outbox.is_lagging());
        assert_eq!(outbox.queued(), 0, "only the screen is left");
        outbox.push_output(&Bytes::from_static(b"after"));
        block_on(async {
            assert!(matches!(outbox.next().await, Outgoing::Fresh(d) if d == "screen"));
            assert!(matches!(
                outbox.next().await,
                Outgoing::End(Control::Exited { .. })
            ));
        });
    }

    #[test]
    fn ended_returns_once_the_end_is_queued_even_after_the_writer_took_it() {
        block_on(async {
            let outbox = std::sync::Arc::new(Outbox::default());
            let not_yet = tokio::select! {
                biased;
                _ = outbox.ended() => false,
                _ = std::future::ready(()) => true,
            };
            assert!(not_yet, "ended before any end");
            let waiting = tokio::spawn({
                let outbox = std::sync::Arc::clone(&outbox);
                async move { outbox.ended().await }
            });
            tokio::task::yield_now().await;
            outbox.end(Control::Upgrading);
            waiting.await.expect("the waiting task");
            assert!(matches!(
                outbox.next().await,
                Outgoing::End(Control::Upgrading)
            ));
            outbox.ended().await;
        });
    }
}
