//! The event bus: what happens to sessions (created, agent state, attention, exit, queue),
//! pushed by the server to `linger events` subscribers and to the hooks.
//!
//! Bounds: one broadcast ring of [`CAPACITY`] events shared by every subscriber. A subscriber
//! that falls behind (its client does not read) loses the oldest events and is told how many
//! (`lagged N events`); nobody ever waits for it. Idle subscribers sleep on the ring: no
//! polling, no wake-ups.

use std::sync::OnceLock;

use crate::protocol::stream::{ReadHalf, WriteHalf};
use tokio::sync::broadcast;

use crate::protocol::{self, Event, FrameReader, Request, Response};

/// Events kept for subscribers that are behind.
pub const CAPACITY: usize = 1024;

/// One bus per server process.
fn bus() -> &'static broadcast::Sender<Event> {
    static BUS: OnceLock<broadcast::Sender<Event>> = OnceLock::new();
    BUS.get_or_init(|| broadcast::channel(CAPACITY).0)
}

/// Publishes an event; without subscribers it goes nowhere.
pub fn emit(
    session: &str,
    kind: &str,
    state: Option<&str>,
    reason: Option<&str>,
    message: Option<&str>,
) {
    let event = Event {
        time: crate::server::session::unix_millis(),
        session: session.to_string(),
        kind: kind.to_string(),
        state: state.map(String::from),
        reason: reason.map(String::from),
        message: message.map(String::from),
    };
    // An error only means that nobody listens.
    let _ = bus().send(event);
}

/// A new subscriber: it sees every event emitted from now on.
pub fn subscribe() -> broadcast::Receiver<Event> {
    bus().subscribe()
}

/// `linger events`: subscribes, says so (`Ok`), then writes the events of the sessions named
/// (all when none) until the client goes away.
pub async fn stream(mut rd: FrameReader<ReadHalf>, mut wr: WriteHalf, names: Vec<String>) {
    let mut rx = subscribe();
    if protocol::write_frame(&mut wr, &Response::Ok).await.is_err() {
        return;
    }
    loop {
        // Both branches are cancellation-safe: a broadcast receive loses nothing when the
        // other branch wins, and the frame reader keeps a partly read frame.
        let response = tokio::select! {
            event = rx.recv() => match event {
                Ok(e) if names.is_empty() || names.contains(&e.session) => Response::Event(e),
                Ok(_) => continue,
                Err(broadcast::error::RecvError::Lagged(n)) => Response::Lagged(n),
                Err(broadcast::error::RecvError::Closed) => return,
            },
            // Anything, or EOF, from a subscriber means it has gone.
            _ = protocol::next_message::<_, Request>(&mut rd) => return,
        };
        // While this write waits for a slow client, the ring moves on without it.
        if protocol::write_frame(&mut wr, &response).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_that_falls_behind_is_told_how_many_it_lost() {
        let mut rx = subscribe();
        for i in 0..CAPACITY + 5 {
            emit("s", "state", None, None, Some(&i.to_string()));
        }
        assert_eq!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(5))
        );
        let next = rx.try_recv().expect("the oldest event kept");
        assert_eq!(next.message.as_deref(), Some("5"));
    }
}
