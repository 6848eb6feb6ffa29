//! Watches the keyboard the server reads for us: keys left unread for about a second mean the
//! server has stopped reading (hung, stopped, or it skipped keys typed while we were stopped),
//! and the attach loop takes its keyboard back, so the detach chord always works.
//!
//! A thread of its own, blocked in `poll`: a terminal with unread keys wakes it, and it then
//! waits [`UNREAD_GRACE`] before it looks again, so typing wakes it at most about once per
//! second and an idle terminal never.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec};
use tokio::sync::oneshot;

/// How long keys may wait unread, twice in a row, before the server is taken to have stopped
/// reading. A server reads within microseconds of a key.
const UNREAD_GRACE: Duration = Duration::from_millis(500);

/// The watch; dropping it ends the thread.
pub struct KeysWatch {
    /// Closing it wakes the thread, which then ends.
    _stop: std::io::PipeWriter,
    /// Fires once the server has left keys unread.
    pub unread: oneshot::Receiver<()>,
}

/// Starts watching `keyboard` (a descriptor of the terminal the server was given); `None` when
/// no thread or pipe can be had, and then the keys simply stay with the server.
pub fn watch(keyboard: OwnedFd) -> Option<KeysWatch> {
    let (stopped, stop) = std::io::pipe().ok()?;
    let (tx, unread) = oneshot::channel();
    std::thread::Builder::new()
        .name("keys-watch".into())
        .spawn(move || {
            if server_left_keys_unread(keyboard.as_fd(), stopped.as_fd()) {
                let _ = tx.send(());
            }
        })
        .ok()?;
    Some(KeysWatch {
        _stop: stop,
        unread,
    })
}

/// Blocks until keys stay unread through two looks [`UNREAD_GRACE`] apart (`true`), or the
/// watch is dropped or the terminal fails (`false`).
fn server_left_keys_unread(keyboard: BorrowedFd<'_>, stopped: BorrowedFd<'_>) -> bool {
    while wait_for_keys(keyboard, stopped) {
        let mut looks = [0; 2];
        for look in &mut looks {
            if !sleep_unless_stopped(stopped, UNREAD_GRACE) {
                return false;
            }
            match rustix::io::ioctl_fionread(keyboard) {
                Ok(n) => *look = n,
                Err(_) => return false,
            }
        }
        // Still there, and none of it taken: nobody is reading.
        if looks[0] > 0 && looks[1] >= looks[0] {
            return true;
        }
    }
    false
}

/// Waits until the terminal has unread keys (`true`), or the watch is dropped or the terminal
/// cannot be watched (`false`).
fn wait_for_keys(keyboard: BorrowedFd<'_>, stopped: BorrowedFd<'_>) -> bool {
    loop {
        let mut fds = [
            PollFd::from_borrowed_fd(stopped, PollFlags::IN),
            PollFd::from_borrowed_fd(keyboard, PollFlags::IN),
        ];
        match rustix::event::poll(&mut fds, None) {
            Err(rustix::io::Errno::INTR) => continue,
            // Cannot watch: stop watching (the keys stay with the server).
            Err(_) => return false,
            Ok(_) if !fds[0].revents().is_empty() => return false,
            // A hung-up terminal ends the attachment through the client's signals.
            Ok(_) => return !fds[1].revents().intersects(PollFlags::HUP | PollFlags::ERR),
        }
    }
}

/// Sleeps for `duration` (`true`) unless the watch is dropped meanwhile (`false`).
fn sleep_unless_stopped(stopped: BorrowedFd<'_>, duration: Duration) -> bool {
    let timeout = Timespec {
        tv_sec: duration.as_secs() as i64,
        tv_nsec: i64::from(duration.subsec_nanos()),
    };
    loop {
        let mut fds = [PollFd::from_borrowed_fd(stopped, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Err(rustix::io::Errno::INTR) => continue,
            Ok(0) => return true,
            _ => return false,
        }
    }
}
