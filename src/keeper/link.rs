//! The server's side of the keeper: at start it lists what the keeper holds (to adopt it);
//! then it hands over each new program's master and says when a program's session ends or is
//! renamed, and asks how adopted programs ended. The socket is used by a thread of its own,
//! so no async worker ever waits on it.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::net::RecvFlags;
use tokio::sync::{mpsc, oneshot};

use super::held::MAX_HELD;
use super::wire::{self, Ended};
use crate::log;

/// Requests waiting for the link's thread; beyond this a `hold` is dropped (that program will
/// not survive the server, which is logged) rather than stalling a session.
pub const QUEUE: usize = 4096;

/// A program the keeper holds, as listed to a starting server.
pub struct Held {
    pub pid: i32,
    pub name: String,
    pub master: OwnedFd,
    /// How it ended while no server ran (`None`: running).
    pub ended: Option<Ended>,
}

enum Job {
    /// A line (with a descriptor); the sender, if any, hears once it is in the keeper's socket.
    Tell(String, Option<OwnedFd>, Option<oneshot::Sender<()>>),
    /// How a program ended: `None` when the keeper cannot be asked, `Some(None)` if running.
    Status(i32, oneshot::Sender<Option<Option<Ended>>>),
    Barrier(oneshot::Sender<()>),
}

/// A handle on the link's thread; cheap to clone.
#[derive(Clone)]
pub struct Link {
    tx: mpsc::Sender<Job>,
    /// The keeper's pid: it started this server, so it is our parent.
    keeper: Option<rustix::process::Pid>,
}

/// Connects to the keeper in `dir`, lists what it holds, and starts the link's thread.
pub fn connect(dir: &Path) -> std::io::Result<(Link, Vec<Held>)> {
    let (sock, _version) = wire::connect(&super::socket_path(dir))?;
    wire::send(&sock, "list", None)?;
    let mut held = Vec::new();
    loop {
        let (line, fd) = wire::recv(&sock, RecvFlags::empty())?;
        if line == "end" {
            break;
        }
        let words: Vec<&str> = line.split(' ').collect();
        let entry = match (&words[..], fd) {
            (["held", pid, name, state @ ..], Some(master)) => pid.parse().ok().map(|pid| Held {
                pid,
                name: name.to_string(),
                master,
                ended: Ended::parse(state),
            }),
            _ => None,
        };
        let entry =
            entry.ok_or_else(|| std::io::Error::other(format!("the keeper listed {line:?}")))?;
        if held.len() >= MAX_HELD {
            return Err(std::io::Error::other("the keeper listed too many programs"));
        }
        held.push(entry);
    }
    let (tx, rx) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("keeper-link".into())
        .spawn(move || serve(sock, rx))?;
    let keeper = rustix::process::getppid().filter(|p| *p != rustix::process::Pid::INIT);
    Ok((Link { tx, keeper }, held))
}

fn serve(sock: OwnedFd, mut rx: mpsc::Receiver<Job>) {
    let mut broken = false;
    while let Some(job) = rx.blocking_recv() {
        match job {
            Job::Tell(line, fd, sent) if !broken => match exchange(&sock, &line, fd, sent) {
                Ok(reply) if reply.starts_with("err ") => {
                    log::warn(&format!("keeper refused `{line}`: {}", &reply[4..]));
                }
                Ok(_) => {}
                Err(e) => {
                    broken = true;
                    log::warn(&format!(
                        "lost the keeper ({e}): programs will not survive this server"
                    ));
                }
            },
            Job::Tell(..) => {}
            Job::Status(pid, reply) => {
                let answer = (!broken)
                    .then(|| exchange(&sock, &format!("status {pid}"), None, None).ok())
                    .flatten()
                    .and_then(|r| match r.as_str() {
                        "running" => Some(None),
                        other => Ended::parse(&other.split(' ').collect::<Vec<_>>()).map(Some),
                    });
                let _ = reply.send(answer);
            }
            Job::Barrier(reply) => {
                let _ = reply.send(());
            }
        }
    }
}

fn exchange(
    sock: &OwnedFd,
    line: &str,
    fd: Option<OwnedFd>,
    sent: Option<oneshot::Sender<()>>,
) -> std::io::Result<String> {
    wire::send(sock, line, fd.as_ref().map(|f| f.as_fd()))?;
    if let Some(sent) = sent {
        let _ = sent.send(());
    }
    Ok(wire::recv(sock, RecvFlags::empty())?.0)
}

impl Link {
    fn tell(&self, line: String, fd: Option<OwnedFd>, sent: Option<oneshot::Sender<()>>) {
        if let Err(e) = self.tx.try_send(Job::Tell(line, fd, sent)) {
            let line = match e {
                mpsc::error::TrySendError::Full(Job::Tell(l, ..))
                | mpsc::error::TrySendError::Closed(Job::Tell(l, ..)) => l,
                _ => String::new(),
            };
            log::warn(&format!(
                "the keeper link is busy or gone; dropped `{line}`"
            ));
        }
    }

    /// Gives the keeper a copy of `master`, so the program outlives this server. The receiver
    /// resolves once the copy is in the keeper's socket (after everything told before was
    /// answered): from then on the keeper gets it even if this server dies at once (the
    /// kernel keeps a descriptor in flight). It errs when the copy cannot be sent.
    pub fn hold(&self, pid: u32, name: &str, master: impl AsFd) -> oneshot::Receiver<()> {
        let (sent, rx) = oneshot::channel();
        match rustix::io::fcntl_dupfd_cloexec(master, 3) {
            Ok(dup) => self.tell(format!("hold {pid} {name}"), Some(dup), Some(sent)),
            Err(e) => log::warn(&format!(
                "session {name}: cannot copy its terminal for the keeper ({e}); it will not survive the server"
            )),
        }
        rx
    }

    /// The session is over: the keeper closes its copy and forgets the program.
    pub fn release(&self, pid: u32) {
        self.tell(format!("release {pid}"), None, None);
    }

    pub fn rename(&self, pid: u32, name: &str) {
        self.tell(format!("rename {pid} {name}"), None, None);
    }

    /// How an adopted program ended: `None` when the keeper cannot say, `Some(None)` while it
    /// runs.
    pub async fn status(&self, pid: u32) -> Option<Option<Ended>> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job::Status(pid as i32, reply)).await.ok()?;
        rx.await.ok()?
    }

    /// The keeper's pid while it is still our parent (it never is once it died: we were then
    /// reparented to init or another reaper, which must not get the keeper's signals).
    pub fn pid(&self) -> Option<rustix::process::Pid> {
        self.keeper
            .filter(|k| rustix::process::getppid() == Some(*k))
    }

    /// Resolves once everything sent before was answered by the keeper.
    pub async fn flush(&self) {
        let (reply, rx) = oneshot::channel();
        if self.tx.send(Job::Barrier(reply)).await.is_ok() {
            let _ = rx.await;
        }
    }
}
