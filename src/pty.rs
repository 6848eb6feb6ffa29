//! Pseudo-terminals: open a non-blocking master (and its slave), and size them.

use std::os::fd::{AsFd, OwnedFd};

use rustix::pty::OpenptFlags;
use rustix::termios::Winsize;

pub fn winsize(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows.max(1),
        ws_col: cols.max(1),
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// Opens a pty master of the given size, non-blocking and close-on-exec; its slave can be
/// opened (by `ptsname` or `TIOCGPTPEER`) until it is closed.
pub fn open_master(rows: u16, cols: u16) -> std::io::Result<OwnedFd> {
    let master =
        rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    rustix::pty::grantpt(&master)?;
    rustix::pty::unlockpt(&master)?;
    resize(&master, rows, cols)?;
    set_nonblocking(&master)?;
    Ok(master)
}

/// Opens a master/slave pair with the given size; the master is non-blocking and close-on-exec.
pub fn open_pair(rows: u16, cols: u16) -> std::io::Result<(OwnedFd, OwnedFd)> {
    let master = open_master(rows, cols)?;
    let slave = rustix::pty::ioctl_tiocgptpeer(
        &master,
        OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC,
    )?;
    Ok((master, slave))
}

pub fn set_nonblocking(fd: impl AsFd) -> std::io::Result<()> {
    let flags = rustix::fs::fcntl_getfl(&fd)?;
    rustix::fs::fcntl_setfl(&fd, flags | rustix::fs::OFlags::NONBLOCK)?;
    Ok(())
}

pub fn resize(master: impl AsFd, rows: u16, cols: u16) -> std::io::Result<()> {
    rustix::termios::tcsetwinsize(master, winsize(rows, cols))?;
    Ok(())
}
