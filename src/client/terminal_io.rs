//! The attach client's terminal I/O: the keyboard in and the screen out, polled on the client's
//! own thread when the terminal allows it, on plain threads otherwise.
//!
//! fd 0 and 1 share their open file description with the user's shell, so they must stay
//! blocking. The terminal is opened a second time instead (`/proc/self/fd/N`): that description
//! is ours alone and non-blocking, so reads and writes never block the attach loop and no key
//! or screen update crosses a thread (two thread wake-ups per echoed key, measured with strace).

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot, watch};

use super::catch_up::{CANCEL, CatchUp, Chunk, Dropping};

/// Output chunks on their way to the terminal; while the terminal does not take them (flow
/// control, a stalled ssh), the client stops reading from the server and the server drops
/// this client's backlog.
const SCREEN_QUEUE: usize = 4;
const READ_SIZE: usize = 16 * 1024;

/// Our own non-blocking description of the terminal behind `fd`; `None` when `fd` is not a
/// terminal or cannot be opened again (no /proc).
fn reopen_nonblocking(fd: BorrowedFd<'_>, access: OFlags) -> Option<OwnedFd> {
    if !rustix::termios::isatty(fd) {
        return None;
    }
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let flags = access | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    rustix::fs::open(path.as_str(), flags, Mode::empty()).ok()
}

/// The keyboard, watched for input only: the terminal reports room to write each time it
/// shows output, which would wake the client for nothing (see write_room.rs).
fn keyboard_polled() -> Option<AsyncFd<OwnedFd>> {
    let own = reopen_nonblocking(std::io::stdin().as_fd(), OFlags::RDONLY)?;
    // SAFETY: a freshly opened descriptor that only this AsyncFd owns and registers.
    unsafe { AsyncFd::register_with_interest(own, tokio::io::Interest::READABLE) }.ok()
}

/// The keyboard's reader: what it read arrives on the channel (`None`: the terminal is gone).
/// A polled reader can stop and hand its terminal over (to the server, see
/// server/keyboard.rs) and start again once it is given back.
pub struct KeyboardReader {
    rx: mpsc::Receiver<Option<Vec<u8>>>,
    tx: mpsc::Sender<Option<Vec<u8>>>,
    polled: Polled,
}

enum Polled {
    /// Read on the client's thread; `stop` ends the task, which then gives the terminal back.
    Reading {
        stop: oneshot::Sender<()>,
        task: tokio::task::JoinHandle<Option<OwnedFd>>,
    },
    /// Stopped, its terminal handed over.
    Stopped(OwnedFd),
    /// Read on a thread of its own (not a terminal we can open again): it cannot stop.
    Threaded,
}

impl KeyboardReader {
    pub fn spawn() -> KeyboardReader {
        let (tx, rx) = mpsc::channel(64);
        let polled = match keyboard_polled() {
            Some(fd) => start_polled(fd, tx.clone()),
            None => {
                read_on_thread(tx.clone());
                Polled::Threaded
            }
        };
        KeyboardReader { rx, tx, polled }
    }

    /// The next read; cancellation-safe.
    pub async fn recv(&mut self) -> Option<Option<Vec<u8>>> {
        self.rx.recv().await
    }

    /// Stops reading (and watching) the keyboard, once everything read has been taken, and
    /// returns a descriptor of it to hand over; `None` when this reader cannot stop or has
    /// input not yet taken.
    pub async fn stop(&mut self) -> Option<OwnedFd> {
        if !self.rx.is_empty() {
            return None;
        }
        let (stop, task) = match std::mem::replace(&mut self.polled, Polled::Threaded) {
            Polled::Reading { stop, task } => (stop, task),
            other => {
                self.polled = other;
                return None;
            }
        };
        let _ = stop.send(());
        // The task ends at its next turn without reading: it checks `stop` first. One that
        // ended on its own said so on the channel, which the attach loop reads next.
        let fd = task.await.ok().flatten()?;
        // A reader that was waiting for room in the channel has put its last read there as it
        // ended: those keys go first, through the attach loop, so keep reading here.
        let handed = if self.rx.is_empty() {
            fd.try_clone().ok()
        } else {
            None
        };
        self.polled = Polled::Stopped(fd);
        if handed.is_none() {
            self.resume();
        }
        handed
    }

    /// Whether [`KeyboardReader::stop`] can succeed (now or once input is taken).
    pub fn can_stop(&self) -> bool {
        matches!(self.polled, Polled::Reading { .. })
    }

    /// Reads the keyboard again after [`KeyboardReader::stop`] (once whoever it was handed to
    /// let go of it).
    pub fn resume(&mut self) {
        let fd = match std::mem::replace(&mut self.polled, Polled::Threaded) {
            Polled::Stopped(fd) => fd,
            other => {
                self.polled = other;
                return;
            }
        };
        // SAFETY: our own descriptor of the terminal, registered only here.
        match unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) } {
            Ok(fd) => self.polled = start_polled(fd, self.tx.clone()),
            // Cannot watch it again (out of memory): the attach loop sees the end.
            Err(_) => {
                let _ = self.tx.try_send(None);
            }
        }
    }
}

fn start_polled(fd: AsyncFd<OwnedFd>, tx: mpsc::Sender<Option<Vec<u8>>>) -> Polled {
    let (stop, stopped) = oneshot::channel();
    Polled::Reading {
        stop,
        task: tokio::spawn(read_polled(fd, tx, stopped)),
    }
}

/// Reads until the terminal is gone (`None`), or until told to stop (its descriptor).
async fn read_polled(
    fd: AsyncFd<OwnedFd>,
    tx: mpsc::Sender<Option<Vec<u8>>>,
    mut stop: oneshot::Receiver<()>,
) -> Option<OwnedFd> {
    let mut buf = vec![0u8; READ_SIZE];
    loop {
        // Stopping comes first: once told, not one more key is read here.
        let ready = tokio::select! {
            biased;
            _ = &mut stop => return Some(fd.into_inner()),
            ready = fd.readable() => ready,
        };
        let Ok(guard) = ready else {
            let _ = tx.send(None).await;
            return None;
        };
        match crate::keyboard::read_ready(guard, &mut buf) {
            Some(0) => {}
            Some(n) => {
                if tx.send(Some(buf[..n].to_vec())).await.is_err() {
                    return None;
                }
            }
            // End of input, or EIO: the terminal hung up.
            None => {
                let _ = tx.send(None).await;
                return None;
            }
        }
    }
}

/// A blocking read cannot be cancelled; the process exits when attach ends anyway.
fn read_on_thread(tx: mpsc::Sender<Option<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = vec![0u8; READ_SIZE];
        loop {
            match stdin.read(&mut buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Ok(0) | Err(_) => {
                    let _ = tx.blocking_send(None);
                    return;
                }
                Ok(n) => {
                    if tx.blocking_send(Some(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// The screen writer's handles: output goes in through `tx`; `done` fires once all of it was
/// written or dropped (`false` when the terminal failed).
pub struct Screen {
    pub tx: mpsc::Sender<Chunk>,
    /// Numbers the chunks, and drops them when the terminal falls behind.
    pub catch_up: CatchUp,
    pub done: oneshot::Receiver<bool>,
    /// How many chunks were written to the terminal (or dropped) so far.
    pub written: watch::Receiver<u64>,
    /// A non-blocking open of the terminal of our own, for the server to write small output to
    /// (see server/direct.rs); `None` when the screen is not a terminal we can open again.
    pub for_server: Option<OwnedFd>,
}

/// Writes output to the terminal without ever blocking the attach loop, so a terminal that
/// does not take output never stops it from seeing signals, keys or the end.
pub fn spawn_screen_writer() -> Screen {
    let (tx, rx) = mpsc::channel::<Chunk>(SCREEN_QUEUE);
    let (catch_up, dropping) = super::catch_up::pair();
    let (done_tx, done) = oneshot::channel();
    let (written_tx, written) = watch::channel(0);
    let stdout = std::io::stdout();
    let for_server = match reopen_nonblocking(stdout.as_fd(), OFlags::WRONLY) {
        Some(fd) => {
            // The same non-blocking open of the terminal: the server writes only while we
            // have nothing to write.
            let for_server = fd.try_clone().ok();
            tokio::spawn(write_polled(fd, rx, done_tx, (written_tx, dropping)));
            for_server
        }
        None => {
            write_on_thread(rx, done_tx, (written_tx, dropping));
            None
        }
    };
    Screen {
        tx,
        catch_up,
        done,
        written,
        for_server,
    }
}

/// Writes straight to the terminal, and waits for it to drain only when it is full. Skips
/// chunks dropped to catch up, and cuts short the one being written (see catch_up.rs).
async fn write_polled(
    fd: OwnedFd,
    mut rx: mpsc::Receiver<Chunk>,
    done: oneshot::Sender<bool>,
    (written, mut dropping): (watch::Sender<u64>, Dropping),
) {
    let mut room = crate::write_room::WriteRoom::default();
    let mut ok = true;
    while let Some(chunk) = rx.recv().await {
        // After a failure keep draining, so the loop notices through its reads.
        if ok && !dropping.is_dropped(&chunk) {
            ok = match dropping.write(&mut room, fd.as_fd(), &chunk).await {
                Some(written) => written.is_ok(),
                // Before the chunk counts as written: once all are, the server may write to
                // the terminal itself (server/direct.rs), which must not be inside a sequence.
                None => room.write_all(fd.as_fd(), CANCEL).await.is_ok(),
            };
        }
        written.send_modify(|n| *n += 1);
    }
    let _ = done.send(ok);
}

/// Not a terminal (a pipe, a file): a plain thread with blocking writes, which only skip
/// chunks dropped before their turn.
fn write_on_thread(
    mut rx: mpsc::Receiver<Chunk>,
    done: oneshot::Sender<bool>,
    (written, dropping): (watch::Sender<u64>, Dropping),
) {
    std::thread::spawn(move || {
        let mut ok = true;
        while let Some(chunk) = rx.blocking_recv() {
            if ok
                && !dropping.is_dropped(&chunk)
                && super::rawmode::write_all_stdout(&chunk.data).is_err()
            {
                ok = false;
            }
            written.send_modify(|n| *n += 1);
        }
        let _ = done.send(ok);
    });
}
