//! The client-server socket, registered with the event loop for reading only; writes wait
//! for room only when the socket is full (see write_room.rs for why: tokio's `UnixStream`
//! woke each side once per echoed key for nothing).

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream as StdStream;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use crate::write_room::WriteRoom;
use rustix::net::{RecvFlags, SendFlags};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// A connected Unix stream socket; split it to read and write from different tasks.
#[derive(Debug)]
pub struct Stream {
    read: ReadHalf,
    write: WriteHalf,
}

/// The reading side of a split [`Stream`].
#[derive(Debug)]
pub struct ReadHalf {
    socket: Arc<AsyncFd<StdStream>>,
}

/// The writing side of a split [`Stream`]; dropping it shuts the socket down for writing, so
/// the peer reads the end even while this side still reads.
#[derive(Debug)]
pub struct WriteHalf {
    socket: Arc<AsyncFd<StdStream>>,
    room: WriteRoom,
    /// Split off: the read side may outlive this one.
    shut_on_drop: bool,
}

impl Stream {
    /// Takes over a connected socket (it is made non-blocking).
    pub fn new(socket: StdStream) -> io::Result<Stream> {
        socket.set_nonblocking(true)?;
        // SAFETY: the AsyncFd owns the socket, so the descriptor stays open and the same.
        let socket = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        let socket = Arc::new(socket);
        Ok(Stream {
            read: ReadHalf {
                socket: Arc::clone(&socket),
            },
            write: WriteHalf {
                socket,
                room: WriteRoom::default(),
                shut_on_drop: false,
            },
        })
    }

    /// Connects without blocking the event loop (a listener's full backlog makes a plain
    /// `connect` wait).
    pub async fn connect(path: &Path) -> io::Result<Stream> {
        let socket = tokio::net::UnixStream::connect(path).await?;
        Stream::new(socket.into_std()?)
    }

    /// Takes over a socket accepted by tokio's listener.
    pub fn from_tokio(socket: tokio::net::UnixStream) -> io::Result<Stream> {
        Stream::new(socket.into_std()?)
    }

    /// The uid of the process at the other end.
    pub fn peer_uid(&self) -> io::Result<u32> {
        let cred = rustix::net::sockopt::socket_peercred(self.as_fd())?;
        Ok(cred.uid.as_raw())
    }

    pub fn into_split(mut self) -> (ReadHalf, WriteHalf) {
        self.write.shut_on_drop = true;
        (self.read, self.write)
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.read.socket.get_ref().as_fd()
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.read.socket.get_ref().as_raw_fd()
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.socket.poll_read_ready(cx))?;
            // SAFETY: recv(2) only writes into the unfilled part; `assume_init` and `advance`
            // below cover only what it reported as written.
            let unfilled = unsafe { buf.unfilled_mut() };
            let unfilled_len = unfilled.len();
            let read = guard.try_io(|socket| {
                rustix::net::recv(socket.get_ref(), &mut *unfilled, RecvFlags::empty())
                    .map(|(_, len)| len)
                    .map_err(io::Error::from)
            });
            match read {
                Ok(Ok(n)) => {
                    // A short read emptied the socket: the next read would only say "would
                    // block" (readiness that arrived since the guard was taken is kept).
                    if n > 0 && n < unfilled_len {
                        guard.clear_ready();
                    }
                    // SAFETY: the kernel initialised these n bytes.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                // No data after all: the guard's readiness was cleared; wait again.
                Err(_would_block) => {}
            }
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let socket = this.socket.get_ref();
        this.room.poll_write(socket.as_fd(), cx, || {
            rustix::net::send(socket, buf, SendFlags::NOSIGNAL)
        })
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(shutdown_write(self.socket.get_ref()))
    }
}

impl Drop for WriteHalf {
    fn drop(&mut self) {
        if self.shut_on_drop {
            let _ = shutdown_write(self.socket.get_ref());
        }
    }
}

fn shutdown_write(socket: &StdStream) -> io::Result<()> {
    match socket.shutdown(std::net::Shutdown::Write) {
        // The peer is gone already: nothing left to tell it.
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(()),
        other => other,
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.write).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_shutdown(cx)
    }
}
