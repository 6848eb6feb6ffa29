//! Keyboard input from a user's terminal: the detach chord and focus reports picked out of it,
//! by whichever side reads the keys (the attach client, or the server once the client handed
//! it the terminal; see server/keyboard.rs).

pub mod chord;
pub mod focus;

use std::os::fd::OwnedFd;

use tokio::io::unix::AsyncFdReadyGuard;

/// Reads what a ready (non-blocking) terminal has; `Some(0)` when it had nothing after all (the
/// readiness is then cleared) or the read was interrupted, `None` when it hung up (EIO) or
/// failed.
pub fn read_ready(mut guard: AsyncFdReadyGuard<'_, OwnedFd>, buf: &mut [u8]) -> Option<usize> {
    match guard.try_io(|fd| rustix::io::read(fd.get_ref(), &mut *buf).map_err(Into::into)) {
        Err(_would_block) => Some(0),
        // SIGSTOP/SIGCONT and SIGWINCH interrupt a read; the terminal is still there.
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => Some(0),
        Ok(Ok(0)) | Ok(Err(_)) => None,
        Ok(Ok(n)) => {
            // A terminal's read returns all it has: a short read emptied it, so the next read
            // would only say "would block". (tokio keeps the readiness if input arrived since
            // the guard was taken.)
            if n < buf.len() {
                guard.clear_ready();
            }
            Some(n)
        }
    }
}
