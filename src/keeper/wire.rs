//! The keeper's wire format: one `SOCK_SEQPACKET` message per request or reply, a line of text
//! with at most one file descriptor attached. Message boundaries come from the socket type, so
//! a line never needs framing and an fd always travels with the line it belongs to.
//!
//! This format must stay compatible forever: an old keeper keeps running across upgrades and
//! newer servers talk to it. Add requests; never change what an existing one means.

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags,
    SendAncillaryBuffer, SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};

/// The protocol version the keeper announces (`hello 1`) on every connection.
pub const VERSION: u32 = 1;
/// The longest message either side accepts, in bytes; a longer one is refused (the sender gets
/// an error, the connection is closed). Fits a `PATH_MAX` executable path with its command.
pub const MAX_MESSAGE: usize = 4200;

/// How a held program ended, as `waitpid` reported it to the keeper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Killed(i32),
}

impl Ended {
    pub fn from_wait(status: rustix::process::WaitStatus) -> Option<Ended> {
        if let Some(code) = status.exit_status() {
            Some(Ended::Exited(code))
        } else {
            status.terminating_signal().map(Ended::Killed)
        }
    }

    /// `exited CODE` or `killed SIGNAL`.
    pub fn word(self) -> String {
        match self {
            Ended::Exited(code) => format!("exited {code}"),
            Ended::Killed(sig) => format!("killed {sig}"),
        }
    }

    /// Reads what [`Ended::word`] wrote; `None` for `running` (or anything else).
    pub fn parse(words: &[&str]) -> Option<Ended> {
        match words {
            ["exited", code] => code.parse().ok().map(Ended::Exited),
            ["killed", sig] => sig.parse().ok().map(Ended::Killed),
            _ => None,
        }
    }

    /// The raw wait status, as `ExitStatus::from_raw` takes it.
    pub fn raw(self) -> i32 {
        match self {
            Ended::Exited(code) => (code & 0xff) << 8,
            Ended::Killed(sig) => sig & 0x7f,
        }
    }
}

/// A new, close-on-exec seqpacket socket.
pub fn socket() -> std::io::Result<OwnedFd> {
    Ok(rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Connects to the keeper's socket at `path` and reads its greeting; returns the connection
/// and the keeper's protocol version.
pub fn connect(path: &Path) -> std::io::Result<(OwnedFd, u32)> {
    let fd = socket()?;
    rustix::net::connect(&fd, &SocketAddrUnix::new(path)?)?;
    // A keeper answers at once; one that does not is stuck, and waiting on it would hang
    // whoever asked (a client starting a server, or the server itself).
    let timeout = Some(std::time::Duration::from_secs(5));
    rustix::net::sockopt::set_socket_timeout(&fd, rustix::net::sockopt::Timeout::Recv, timeout)?;
    rustix::net::sockopt::set_socket_timeout(&fd, rustix::net::sockopt::Timeout::Send, timeout)?;
    let (hello, _) = recv(&fd, RecvFlags::empty())?;
    let version = match hello.split(' ').collect::<Vec<_>>()[..] {
        ["hello", v] => v.parse().ok(),
        _ => None,
    };
    let version = version.ok_or_else(|| {
        std::io::Error::other(format!("the keeper greeted with {hello:?}, not `hello N`"))
    })?;
    Ok((fd, version))
}

/// Sends one line, with `fd` attached when given.
pub fn send(sock: impl AsFd, line: &str, fd: Option<BorrowedFd<'_>>) -> std::io::Result<()> {
    if line.len() > MAX_MESSAGE {
        return Err(std::io::Error::other(format!(
            "a keeper message is at most {MAX_MESSAGE} bytes; this one is {}",
            line.len()
        )));
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(fd) = fd {
        fds = [fd];
        control.push(SendAncillaryMessage::ScmRights(&fds));
    }
    let iov = [IoSlice::new(line.as_bytes())];
    rustix::net::sendmsg(sock, &iov, &mut control, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// Receives one message: its line and the fd attached to it, if any. End of stream is
/// `UnexpectedEof`; a message longer than [`MAX_MESSAGE`], or with more than one fd, is an
/// error (extra fds are closed, never kept).
pub fn recv(sock: impl AsFd, flags: RecvFlags) -> std::io::Result<(String, Option<OwnedFd>)> {
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let got = rustix::net::recvmsg(
        sock,
        &mut iov,
        &mut control,
        flags | RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fd = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = message {
            for received in fds {
                if fd.is_none() {
                    fd = Some(received);
                }
            }
        }
    }
    if got.bytes == 0 && fd.is_none() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if got.flags.contains(ReturnFlags::TRUNC) || got.bytes > MAX_MESSAGE {
        return Err(std::io::Error::other(format!(
            "a keeper message is at most {MAX_MESSAGE} bytes"
        )));
    }
    if got.flags.contains(ReturnFlags::CTRUNC) {
        return Err(std::io::Error::other(
            "a keeper message carries at most one fd",
        ));
    }
    let line = String::from_utf8(buf[..got.bytes].to_vec())
        .map_err(|_| std::io::Error::other("a keeper message is not UTF-8"))?;
    Ok((line, fd))
}

/// Sends `line` and returns the reply line (for requests answered by one line).
pub fn ask(sock: impl AsFd, line: &str, fd: Option<BorrowedFd<'_>>) -> std::io::Result<String> {
    send(&sock, line, fd)?;
    let (reply, _) = recv(&sock, RecvFlags::empty())?;
    match reply.strip_prefix("err ") {
        Some(e) => Err(std::io::Error::other(e.to_string())),
        None => Ok(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (OwnedFd, OwnedFd) {
        rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .expect("socketpair")
    }

    #[test]
    fn a_message_at_the_bound_passes_and_one_over_is_refused() {
        let (a, b) = pair();
        let line = "x".repeat(MAX_MESSAGE);
        send(&a, &line, None).expect("send at the bound");
        assert_eq!(recv(&b, RecvFlags::empty()).expect("recv").0, line);
        assert!(send(&a, &format!("{line}x"), None).is_err());
        // A sender that ignores the bound is refused by the receiver.
        let long = "y".repeat(MAX_MESSAGE + 10);
        rustix::net::send(&a, long.as_bytes(), SendFlags::empty()).expect("raw send");
        assert!(recv(&b, RecvFlags::empty()).is_err());
    }

    #[test]
    fn an_fd_travels_with_its_line() {
        let (a, b) = pair();
        let (r, _w) = rustix::pipe::pipe().expect("pipe");
        send(&a, "hold 1 x", Some(r.as_fd())).expect("send");
        let (line, fd) = recv(&b, RecvFlags::empty()).expect("recv");
        assert_eq!(line, "hold 1 x");
        assert!(fd.is_some());
    }

    #[test]
    fn ended_round_trips() {
        for ended in [Ended::Exited(3), Ended::Killed(9)] {
            let word = ended.word();
            let words: Vec<&str> = word.split(' ').collect();
            assert_eq!(Ended::parse(&words), Some(ended));
        }
    }
}
