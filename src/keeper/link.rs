//! The server's side of the keeper: at start it lists what the keeper holds (to adopt it);
//! then it hands over each new program's master and says when a program's session ends or is
//! renamed, and asks how adopted programs ended. The socket is used by two threads of its own
//! (one sends, one takes the answers in order), so no async worker ever waits on it, and no
//! request waits for the answer to the one before.

use std::collections::VecDeque;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rustix::net::RecvFlags;
use tokio::sync::{mpsc, oneshot};

use super::held::MAX_HELD;
use super::wire::{self, Ended};
use crate::log;

/// Requests waiting for the link's thread; beyond this a `hold` is dropped (that program will
/// not survive the server, which is logged) rather than stalling a session.
pub const QUEUE: usize = 4096;

/// How long `status` waits for the keeper's answer.
const STATUS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

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
    // The answers' thread waits for answers as long as the link lives (a quiet keeper is not a
    // stuck one); `status` bounds its own wait.
    rustix::net::sockopt::set_socket_timeout(&sock, rustix::net::sockopt::Timeout::Recv, None)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let shared = Arc::new(Shared {
        sock,
        broken: AtomicBool::new(false),
        awaiting: Mutex::new(VecDeque::new()),
    });
    let answers = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("keeper-answers".into())
        .spawn(move || read_answers(answers))?;
    std::thread::Builder::new()
        .name("keeper-link".into())
        .spawn(move || serve(shared, rx))?;
    let keeper = rustix::process::getppid().filter(|p| *p != rustix::process::Pid::INIT);
    Ok((Link { tx, keeper }, held))
}

/// What the link's threads share: the socket, whether it broke, and what awaits an answer.
struct Shared {
    sock: OwnedFd,
    broken: AtomicBool,
    /// Requests sent (or about to be), oldest first; the keeper answers them in order.
    awaiting: Mutex<VecDeque<Awaiting>>,
}

/// A request the keeper has yet to answer, and who waits for that answer.
struct Awaiting {
    what: Asked,
    /// `flush` callers waiting for everything up to this answer.
    barriers: Vec<oneshot::Sender<()>>,
}

enum Asked {
    Tell(String),
    Status(oneshot::Sender<Option<Option<Ended>>>),
}

impl Shared {
    fn awaiting(&self) -> std::sync::MutexGuard<'_, VecDeque<Awaiting>> {
        self.awaiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the link broken (once, with a warning) and answers everything still awaiting.
    fn break_off(&self, e: &std::io::Error) {
        if !self.broken.swap(true, Ordering::AcqRel) {
            log::warn(&format!(
                "lost the keeper ({e}): programs will not survive this server"
            ));
        }
        self.abandon_awaiting();
    }

    /// Answers everything still awaiting the keeper with "never" (the link is broken).
    fn abandon_awaiting(&self) {
        let abandoned: Vec<Awaiting> = self.awaiting().drain(..).collect();
        for pending in abandoned {
            pending.answered(None);
        }
    }
}

impl Awaiting {
    /// The keeper's answer (`None`: it will never come).
    fn answered(self, reply: Option<&str>) {
        match self.what {
            Asked::Tell(line) => {
                if let Some(why) = reply.and_then(|r| r.strip_prefix("err ")) {
                    log::warn(&format!("keeper refused `{line}`: {why}"));
                }
            }
            Asked::Status(tx) => {
                let answer = reply.and_then(|r| match r {
                    "running" => Some(None),
                    other => Ended::parse(&other.split(' ').collect::<Vec<_>>()).map(Some),
                });
                let _ = tx.send(answer);
            }
        }
        for barrier in self.barriers {
            let _ = barrier.send(());
        }
    }
}

/// Sends requests as they come, without waiting for the answers to earlier ones (a slow keeper
/// delays no `hold` behind another); [`read_answers`] takes the answers on its own thread.
fn serve(shared: Arc<Shared>, mut rx: mpsc::Receiver<Job>) {
    while let Some(job) = rx.blocking_recv() {
        let (line, fd, sent, asked) = match job {
            Job::Barrier(reply) if shared.broken.load(Ordering::Acquire) => {
                let _ = reply.send(());
                continue;
            }
            Job::Barrier(reply) => {
                match shared.awaiting().back_mut() {
                    Some(last) => last.barriers.push(reply),
                    None => {
                        let _ = reply.send(());
                    }
                }
                continue;
            }
            Job::Tell(line, fd, sent) => (line.clone(), fd, sent, Asked::Tell(line)),
            Job::Status(pid, reply) => (format!("status {pid}"), None, None, Asked::Status(reply)),
        };
        if shared.broken.load(Ordering::Acquire) {
            // Dropping `sent` and a status's reply tells their waiters.
            continue;
        }
        // Queued before it is sent, so its answer always finds it.
        shared.awaiting().push_back(Awaiting {
            what: asked,
            barriers: Vec::new(),
        });
        match wire::send(&shared.sock, &line, fd.as_ref().map(|f| f.as_fd())) {
            Ok(()) => {
                if let Some(sent) = sent {
                    let _ = sent.send(());
                }
            }
            Err(e) => shared.break_off(&e),
        }
        if shared.broken.load(Ordering::Acquire) {
            // Broken by the answers' thread after the check above: nobody will answer this.
            shared.abandon_awaiting();
        }
    }
}

/// Matches the keeper's answers, in order, with the requests sent, until the link breaks.
fn read_answers(shared: Arc<Shared>) {
    loop {
        let reply = match wire::recv(&shared.sock, RecvFlags::empty()) {
            Ok((reply, _)) => reply,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return shared.break_off(&e),
        };
        let Some(pending) = shared.awaiting().pop_front() else {
            let e = std::io::Error::other(format!("the keeper answered {reply:?} unasked"));
            return shared.break_off(&e);
        };
        pending.answered(Some(&reply));
    }
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
    /// sent): from then on the keeper gets it even if this server dies at once (the
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
        // A keeper answers at once; one that does not is stuck. Its late answer still finds
        // its place in the queue, so later answers stay matched.
        tokio::time::timeout(STATUS_WAIT, rx).await.ok()?.ok()?
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
