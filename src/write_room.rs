//! Writing to a descriptor that the event loop watches for reading only (or not at all): the
//! write goes straight to the descriptor, and only when it has no room does a duplicate wait
//! for write readiness, registered for as long as writes keep having to wait.
//!
//! A terminal or a Unix socket reports "room to write" every time its reader takes something:
//! registered for both directions, every echoed key woke the writer's thread once more for
//! nothing (strace: an `epoll_wait` returning only `EPOLLOUT`, per key, on each side).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::task::{Context, Poll, ready};

use rustix::io::Errno;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// The wait for room to write on one descriptor; empty while writes go through.
#[derive(Debug, Default)]
pub struct WriteRoom {
    waiter: Option<AsyncFd<OwnedFd>>,
    /// The last write found no room: the next one that goes through is the wait's result, not
    /// a sign that writes flow again.
    stalled: bool,
}

impl WriteRoom {
    /// Runs `write` (a non-blocking write to `fd`), waiting for room while it says `EAGAIN`.
    pub fn poll_write(
        &mut self,
        fd: BorrowedFd<'_>,
        cx: &mut Context<'_>,
        mut write: impl FnMut() -> rustix::io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        loop {
            match write() {
                Ok(n) => {
                    self.wrote();
                    return Poll::Ready(Ok(n));
                }
                Err(Errno::INTR) => continue,
                // `poll_room` marks the stall.
                Err(Errno::AGAIN) => {}
                Err(e) => return Poll::Ready(Err(e.into())),
            }
            ready!(self.poll_room(fd, cx))?;
        }
    }

    /// Ready once `fd` may have room again after a write said `EAGAIN`. Cancellation-safe: the
    /// registration, and readiness that arrives meanwhile, stay here for the next call.
    pub fn poll_room(&mut self, fd: BorrowedFd<'_>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.stalled = true;
        let waiter = match &mut self.waiter {
            Some(waiter) => waiter,
            // Registering reports the descriptor writable at once if the reader made room
            // since the failed write, so no wake-up is lost in between.
            None => self.waiter.insert(write_waiter(fd)?),
        };
        let mut guard = ready!(waiter.poll_write_ready(cx))?;
        // Cleared before the retry: readiness that comes after it is kept.
        guard.clear_ready();
        Poll::Ready(Ok(()))
    }

    /// A write went through. Two in a row without waiting between them: writes flow again,
    /// stop hearing about every read the peer does.
    pub fn wrote(&mut self) {
        if !std::mem::take(&mut self.stalled) {
            self.waiter = None;
        }
    }

    /// Writes all of `data` to `fd` with write(2), waiting for room as needed.
    pub async fn write_all(&mut self, fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let n =
                std::future::poll_fn(|cx| self.poll_write(fd, cx, || rustix::io::write(fd, data)))
                    .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            data = &data[n..];
        }
        Ok(())
    }
}

fn write_waiter(fd: BorrowedFd<'_>) -> io::Result<AsyncFd<OwnedFd>> {
    // A duplicate: the descriptor itself may be registered (for reading) already.
    let dup = fd.as_fd().try_clone_to_owned()?;
    // SAFETY: the AsyncFd owns the duplicate, so the descriptor stays open and the same.
    unsafe { AsyncFd::register_with_interest(dup, Interest::WRITABLE) }
        .map_err(|e| e.into_parts().1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::io::{Read, Write};
    use std::os::unix::net::UnixStream;

    /// A write to a full socket waits (watching for room) until the reader takes some, then
    /// finishes; the next write that finds room stops watching; no byte is lost or reordered.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_socket_waits_for_room_and_loses_nothing() {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        ours.set_nonblocking(true).expect("nonblocking");
        let mut sent = Vec::new();
        let block = [7u8; 4096];
        loop {
            match (&ours).write(&block) {
                Ok(n) => sent.extend_from_slice(&block[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling the socket: {e}"),
            }
        }
        let mut room = WriteRoom::default();
        let tail: Vec<u8> = (0..200u8).collect();
        let reader = {
            let mut write = std::pin::pin!(room.write_all(ours.as_fd(), &tail));
            let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
            assert!(first.is_pending(), "a write to a full socket did not wait");
            let reader = std::thread::spawn(move || {
                let mut got = Vec::new();
                (&theirs).read_to_end(&mut got).map(|_| got)
            });
            write.await.expect("write after waiting");
            reader
        };
        sent.extend_from_slice(&tail);
        assert!(
            room.waiter.is_some(),
            "stopped watching right after a write that waited"
        );
        room.write_all(ours.as_fd(), b"end").await.expect("write");
        sent.extend_from_slice(b"end");
        assert!(
            room.waiter.is_none(),
            "still watching after a write that found room"
        );
        drop(ours);
        let got = reader.join().expect("reader").expect("read");
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "bytes arrived changed or out of order");
    }
}
