//! Typing into a session: text (streamed in chunks, as a paste when asked) and named keys.

use std::time::Duration;

use super::{Client, Error, Result, SEND_TIMEOUT, unexpected};
use crate::protocol::{self, Request, Response};

impl Client {
    /// Writes text as input; as a bracketed paste when `paste` and the app enabled it; with
    /// `enter`, a separate Enter once the app has read the text. Returns once every byte was
    /// written to the program's terminal; fails if the program did not take it all within
    /// [`SEND_TIMEOUT`].
    pub async fn send(&self, name: &str, text: &[u8], paste: bool, enter: bool) -> Result<()> {
        self.send_within(name, text, paste, enter, SEND_TIMEOUT)
            .await
    }

    /// [`Client::send`] with a timeout of the caller's choosing.
    pub async fn send_within(
        &self,
        name: &str,
        text: &[u8],
        paste: bool,
        enter: bool,
        timeout: Duration,
    ) -> Result<()> {
        let request = Request::Send {
            name: name.into(),
            len: text.len() as u64,
            paste,
            enter,
            timeout_ms: timeout.as_millis().try_into().unwrap_or(u64::MAX),
        };
        let stream = self.open().await?;
        let (rd, mut wr) = stream.into_split();
        let mut rd = rd;
        let writing = async {
            protocol::write_frame(&mut wr, &request).await?;
            for chunk in text.chunks(protocol::SEND_CHUNK) {
                protocol::write_frame(&mut wr, &Request::SendData(chunk.to_vec())).await?;
            }
            std::future::pending::<std::io::Result<()>>().await
        };
        // The server may answer before taking all the text (an error, a timeout): read the
        // reply while writing, and after a failed write.
        let reading = protocol::read_response(&mut rd);
        tokio::pin!(reading);
        let response = tokio::select! {
            response = &mut reading => response,
            _ = writing => reading.await,
        };
        match response {
            Ok(Response::Ok) => Ok(()),
            Ok(Response::Error(e)) => Err(Error(e)),
            Ok(other) => Err(unexpected(other)),
            Err(e) => Err(Error(format!("lost the server: {e}"))),
        }
    }

    /// Types named keys, within [`SEND_TIMEOUT`].
    pub async fn send_keys(&self, name: &str, keys: &[String]) -> Result<()> {
        self.send_keys_within(name, keys, SEND_TIMEOUT).await
    }

    /// Types named keys. Like a text send, the keys wait in line behind earlier sends, and
    /// fail after `timeout` without progress once their turn came: the wait for the reply
    /// is the server's, not bounded here.
    pub async fn send_keys_within(
        &self,
        name: &str,
        keys: &[String],
        timeout: Duration,
    ) -> Result<()> {
        let request = Request::SendKeys {
            name: name.into(),
            keys: keys.to_vec(),
            timeout_ms: timeout.as_millis().try_into().unwrap_or(u64::MAX),
        };
        match self.request_unbounded(&request).await? {
            Response::Ok => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}
