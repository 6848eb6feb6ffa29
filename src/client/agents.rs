//! Client requests for agents: the event stream and the task queue.

use crate::protocol::Stream;

use super::{Client, Error, Result, unexpected};
use crate::protocol::{self, Event, QueueOp, Request, Response};

/// What `linger events` reads, one at a time.
pub enum Streamed {
    Event(Event),
    /// This many events were dropped because the reader fell behind.
    Lagged(u64),
}

/// A subscription to the server's events.
pub struct Events {
    stream: Stream,
}

impl Events {
    /// The next event; an error when the server went away.
    pub async fn next(&mut self) -> Result<Streamed> {
        match protocol::read_response(&mut self.stream).await {
            Ok(Response::Event(e)) => Ok(Streamed::Event(e)),
            Ok(Response::Lagged(n)) => Ok(Streamed::Lagged(n)),
            Ok(Response::Error(e)) => Err(Error(e)),
            Ok(other) => Err(unexpected(other)),
            Err(e) if e.is_eof() => Err(Error("the server stopped".into())),
            Err(e) => Err(Error(format!("lost the server: {e}"))),
        }
    }
}

impl Client {
    /// Subscribes to the events of these sessions (all when none); every event from the
    /// moment this returns is seen.
    pub async fn events(&self, names: &[String]) -> Result<Events> {
        let mut stream = self.open().await?;
        let request = Request::Events {
            names: names.to_vec(),
        };
        protocol::write_frame(&mut stream, &request)
            .await
            .map_err(|e| Error(format!("lost the server: {e}")))?;
        match protocol::read_response(&mut stream).await {
            Ok(Response::Ok) => Ok(Events { stream }),
            Ok(Response::Error(e)) => Err(Error(e)),
            Ok(other) => Err(unexpected(other)),
            Err(e) => Err(Error(format!("lost the server: {e}"))),
        }
    }

    /// Adds to, lists or clears a session's task queue; answers with the queue (after an
    /// add), or what was cleared.
    pub async fn queue(&self, name: &str, op: QueueOp) -> Result<Vec<String>> {
        let request = Request::Queue {
            name: name.into(),
            op,
        };
        match self.request(&request).await? {
            Response::Queue(items) => Ok(items),
            other => Err(unexpected(other)),
        }
    }
}
