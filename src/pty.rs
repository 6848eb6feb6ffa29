//! Pseudo-terminals: open a non-blocking master (and its slave), size them, and ready a child
//! (signals, descriptors) before it runs a program.

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

/// Gives the child every signal's default disposition and an empty signal mask, as tmux does:
/// an exec keeps ignored signals and the mask, so without this a program would ignore SIGHUP
/// whenever the server was started under `nohup`, and SIGPIPE always (Rust ignores it).
/// Only async-signal-safe calls; failures (SIGKILL, SIGSTOP, libc-reserved numbers) are
/// expected and ignored.
pub fn reset_signals() {
    // SAFETY: signal(2) and sigprocmask(2) on this (forked, single-threaded) process only.
    unsafe {
        for sig in 1..=libc::SIGRTMAX() {
            libc::signal(sig, libc::SIG_DFL);
        }
        reset_reserved_signals();
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// The kernel's `struct sigaction` on these architectures.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#[repr(C)]
struct KernelSigaction {
    handler: usize,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// rt_sigaction(2) itself, which glibc's `sigaction` refuses for its own signals (32 and 33).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn raw_sigaction(sig: libc::c_int, new: Option<&KernelSigaction>) -> Option<KernelSigaction> {
    let mut old = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    let new = new.map_or(std::ptr::null(), |n| n as *const KernelSigaction);
    // SAFETY: valid pointers (or null for `new`) and the kernel's sigset size (8 bytes).
    let done = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            new,
            &mut old as *mut KernelSigaction,
            8usize,
        )
    };
    (done == 0).then_some(old)
}

/// glibc refuses to touch signals 32 and 33 (its own), but an ignored one is still inherited:
/// reset them through the system call itself.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
unsafe fn reset_reserved_signals() {
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 32..libc::SIGRTMIN() {
        raw_sigaction(sig, Some(&dfl));
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn reset_reserved_signals() {}

/// Marks every fd above stderr close-on-exec, so a program started by linger inherits only its
/// terminal: not the server's sockets, nor whatever the process that started the server had
/// open. Safe between fork and exec (one system call); failure (old kernels) is ignored.
pub fn close_inherited_fds() {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: close_range(2) only changes fd flags of this process.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3 as libc::c_uint,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        );
    }
}

pub fn resize(master: impl AsFd, rows: u16, cols: u16) -> std::io::Result<()> {
    rustix::termios::tcsetwinsize(master, winsize(rows, cols))?;
    Ok(())
}
