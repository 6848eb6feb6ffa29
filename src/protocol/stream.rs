//! The client-server socket, registered with the event loop for reading only; writes wait
//! for room only when the socket is full (see write_room.rs for why: tokio's `UnixStream`
//! woke each side once per echoed key for nothing).

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream as StdStream;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use crate::write_room::WriteRoom;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
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
    /// The last descriptor the peer passed (`SCM_RIGHTS`); one at most, an older one is closed.
    passed: Option<OwnedFd>,
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
                passed: None,
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

impl ReadHalf {
    /// The descriptor the peer passed with what was read so far, if any.
    pub fn take_passed(&mut self) -> Option<OwnedFd> {
        self.passed.take()
    }

    /// The pid of the process that connected.
    pub fn peer_pid(&self) -> io::Result<i32> {
        let cred = rustix::net::sockopt::socket_peercred(self.socket.get_ref().as_fd())?;
        Ok(cred.pid.as_raw_nonzero().get())
    }
}

/// One `recvmsg`, keeping a passed descriptor: a plain `recv` would have the kernel close it.
/// Returns the bytes read and whether a descriptor came with them: the kernel ends a read
/// after a message that carried one, so that read may be short with more data waiting.
fn receive(
    socket: &StdStream,
    into: &mut [MaybeUninit<u8>],
    passed: &mut Option<OwnedFd>,
) -> io::Result<(usize, bool)> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    // SAFETY: recvmsg(2) only writes into the buffer; the caller counts only what it reported.
    let into = unsafe { &mut *(into as *mut [MaybeUninit<u8>] as *mut [u8]) };
    let mut iov = [IoSliceMut::new(into)];
    let got = rustix::net::recvmsg(socket, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)?;
    let mut with_fd = false;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            // Dropping the others closes them: a peer passes one terminal at most.
            if let Some(fd) = fds.into_iter().last() {
                *passed = Some(fd);
                with_fd = true;
            }
        }
    }
    Ok((got.bytes, with_fd))
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut guard = ready!(this.socket.poll_read_ready(cx))?;
            // SAFETY: recvmsg(2) only writes into the unfilled part; `assume_init` and `advance`
            // below cover only what it reported as written.
            let unfilled = unsafe { buf.unfilled_mut() };
            let unfilled_len = unfilled.len();
            let passed = &mut this.passed;
            let read = guard.try_io(|socket| receive(socket.get_ref(), &mut *unfilled, passed));
            match read {
                Ok(Ok((n, with_fd))) => {
                    // A short read emptied the socket: the next read would only say "would
                    // block" (readiness that arrived since the guard was taken is kept).
                    // Not after a passed descriptor, where the kernel stops reading early.
                    if n > 0 && n < unfilled_len && !with_fd {
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

impl WriteHalf {
    /// Writes `frame` with `fd` passed alongside (`SCM_RIGHTS`, on its first byte).
    pub async fn write_with_fd(&mut self, frame: &[u8], fd: BorrowedFd<'_>) -> io::Result<()> {
        use tokio::io::AsyncWriteExt;
        let fds = [fd];
        let socket = Arc::clone(&self.socket);
        let sent = std::future::poll_fn(|cx| {
            self.room.poll_write(socket.get_ref().as_fd(), cx, || {
                let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
                let mut control = SendAncillaryBuffer::new(&mut space);
                control.push(SendAncillaryMessage::ScmRights(&fds));
                let iov = [IoSlice::new(frame)];
                rustix::net::sendmsg(socket.get_ref(), &iov, &mut control, SendFlags::NOSIGNAL)
            })
        })
        .await?;
        self.write_all(&frame[sent..]).await
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

    /// One `sendmsg` for all of `bufs`: an output frame's header and its data reach the
    /// client together, so it is not woken for the header alone.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let socket = this.socket.get_ref();
        this.room.poll_write(socket.as_fd(), cx, || {
            let mut control = SendAncillaryBuffer::default();
            rustix::net::sendmsg(socket, bufs, &mut control, SendFlags::NOSIGNAL)
        })
    }

    fn is_write_vectored(&self) -> bool {
        true
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A descriptor passed with one message reaches the reader, and so does what was sent
    /// after it: the kernel ends the read at the descriptor's message, and the reader must not
    /// take that short read for an empty socket (it waited forever for the next bytes).
    #[tokio::test(flavor = "current_thread")]
    async fn a_passed_descriptor_and_the_bytes_after_it_are_both_read() {
        let (ours, theirs) = StdStream::pair().expect("socketpair");
        let (mut rd, _wr) = Stream::new(ours).expect("stream").into_split();
        let (_their_rd, mut their_wr) = Stream::new(theirs).expect("stream").into_split();
        let (pipe_rd, _pipe_wr) = StdStream::pair().expect("socketpair");
        their_wr
            .write_with_fd(b"with-fd|", pipe_rd.as_fd())
            .await
            .expect("sendmsg");
        their_wr.write_all(b"after").await.expect("write");
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        while got.len() < b"with-fd|after".len() {
            let n = tokio::time::timeout(Duration::from_secs(5), rd.read(&mut buf))
                .await
                .expect("the bytes after the descriptor were never read")
                .expect("read");
            assert!(n > 0, "end of stream after {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"with-fd|after");
        let passed = rd.take_passed().expect("the descriptor was not received");
        let (a, b) = (
            rustix::fs::fstat(&passed).expect("fstat"),
            rustix::fs::fstat(&pipe_rd).expect("fstat"),
        );
        assert_eq!(
            (a.st_dev, a.st_ino),
            (b.st_dev, b.st_ino),
            "another file arrived"
        );
        assert!(rd.take_passed().is_none(), "taken twice");
    }
}
