//! The child between `clone` and `exec`: it shares the server's memory while the server runs
//! on, so it makes its system calls straight to the kernel and touches nothing but its own
//! stack and the [`ChildArgs`] the server keeps for it.
//!
//! Why not libc: its wrappers write `errno`, and the child's `errno` is the cloning server
//! thread's own (same thread pointer, same memory). A failed call here would change the error
//! a server thread was about to read. On architectures without a raw path below, the child is
//! cloned with `CLONE_VFORK` instead, which suspends the server's thread until the exec.

use std::ffi::{c_char, c_int, c_void};

/// Whether the child may run beside the server's threads (it never writes `errno`).
pub const RUNS_BESIDE_SERVER: bool = cfg!(any(target_arch = "x86_64", target_arch = "aarch64"));

/// What the child needs; the server frees it only once the child has exec'd or exited.
#[repr(C)]
pub struct ChildArgs {
    pub path: *const c_char,
    pub argv: *const *const c_char,
    pub envp: *const *const c_char,
    pub cwd: *const c_char,
    pub tty: *const c_char,
    /// `sh <path> <args...>`: run when the file is no executable the kernel knows (a script
    /// without `#!`), as `execvp` and shells do.
    pub sh_argv: *const *const c_char,
    /// `linger: cannot start '<program>': `, written to the terminal before the reason when
    /// the exec fails, so the session's screen says why it ended.
    pub failure_prefix: *const u8,
    pub failure_prefix_len: usize,
}

/// A system call's result: the value, or minus the error number.
#[cfg(target_arch = "x86_64")]
unsafe fn syscall(nr: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes arguments valid for system call `nr`; `syscall` clobbers only
    // rcx and r11 besides rax.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a, in("rsi") b, in("rdx") c, in("r10") d,
            lateout("rcx") _, lateout("r11") _,
            options(nostack, preserves_flags)
        );
    }
    ret
}

#[cfg(target_arch = "aarch64")]
unsafe fn syscall(nr: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
    let ret: isize;
    // SAFETY: the caller passes arguments valid for system call `nr`.
    unsafe {
        std::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a as isize => ret,
            in("x1") b, in("x2") c, in("x3") d,
            options(nostack, preserves_flags)
        );
    }
    ret
}

/// Through libc: only used with `CLONE_VFORK`, where the server's thread is suspended.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn syscall(nr: libc::c_long, a: usize, b: usize, c: usize, d: usize) -> isize {
    // SAFETY: as the caller's; errno is read at once, and nothing else runs in this memory.
    unsafe {
        let ret = libc::syscall(nr, a, b, c, d);
        if ret < 0 {
            -(*libc::__errno_location() as isize)
        } else {
            ret as isize
        }
    }
}

/// The child's body, started by `clone` on its own stack with every signal blocked. They stay
/// blocked until just before the exec: a signal whose default is to dump core, delivered while
/// the child shares the server's memory, would write the server's memory to the core file (and
/// before Linux 5.16 kill the server with it); one that stops the child would hold up the
/// thread waiting for its exec. The terminal can send both (^\, ^Z) once it is the child's.
pub extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the `ChildArgs` the server keeps alive until this process has exec'd
    // or exited; every pointer in it is valid and NUL-terminated where it names a string.
    unsafe {
        let args = &*arg.cast::<ChildArgs>();
        default_signals();
        if syscall(libc::SYS_setsid, 0, 0, 0, 0) < 0 {
            exit(127);
        }
        // Opened after `setsid` without O_NOCTTY: the terminal becomes the controlling one.
        let tty = syscall(
            libc::SYS_openat,
            libc::AT_FDCWD as usize,
            args.tty as usize,
            libc::O_RDWR as usize,
            0,
        );
        if tty < 0 {
            exit(127);
        }
        for fd in 0..3 {
            if fd != tty && syscall(libc::SYS_dup3, tty as usize, fd as usize, 0, 0) < 0 {
                exit(127);
            }
        }
        if tty > 2 {
            syscall(libc::SYS_close, tty as usize, 0, 0, 0);
        }
        let entered = syscall(libc::SYS_chdir, args.cwd as usize, 0, 0, 0);
        if entered < 0 {
            fail(args, entered);
        }
        close_inherited_fds();
        take_pending_signals();
        set_mask(0);
        let mut failed = execve(args.path, args.argv, args.envp);
        if failed == -(libc::ENOEXEC as isize) {
            failed = execve(c"/bin/sh".as_ptr(), args.sh_argv, args.envp);
        }
        set_mask(!0);
        fail(args, failed)
    }
}

/// Marks every descriptor above stderr close-on-exec, so a program started by linger inherits
/// only its terminal (or the descriptors its starter set up): not the server's sockets, nor
/// whatever the process that started the server had open. One system call, so safe in any
/// child before its exec; failure (kernels before 5.11) leaves descriptors to their own flags.
pub fn close_inherited_fds() {
    const CLOSE_RANGE_CLOEXEC: usize = 1 << 2;
    // SAFETY: close_range(2) only changes descriptor flags of this process.
    unsafe {
        syscall(
            libc::SYS_close_range,
            3,
            u32::MAX as usize,
            CLOSE_RANGE_CLOEXEC,
            0,
        );
    }
}

/// Every signal's default disposition and an empty mask, for a forked child before its exec
/// (`Command::pre_exec`): what a session's program gets, see [`default_signals`].
pub fn reset_signals() {
    // SAFETY: system calls on this (forked, single-threaded) process only.
    unsafe { default_signals() };
    set_mask(0);
}

unsafe fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> isize {
    // SAFETY: as `child_main`'s.
    unsafe {
        syscall(
            libc::SYS_execve,
            path as usize,
            argv as usize,
            envp as usize,
            0,
        )
    }
}

/// Every signal's default disposition, as tmux gives its children: an exec keeps ignored
/// signals, so without this a program would ignore SIGHUP whenever the server was started
/// under `nohup`, and SIGPIPE always (Rust ignores it). The kernel's call, not glibc's: glibc
/// refuses its own signals (32, 33), which an exec would also keep ignored.
unsafe fn default_signals() {
    // The kernel's `struct sigaction` with SIG_DFL (0), no flags and an empty mask: all zero
    // whatever its layout, and at most 32 bytes on every architecture.
    let default = [0usize; 4];
    for sig in 1..=64 {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: a valid sigaction buffer and the kernel's sigset size.
            unsafe {
                syscall(
                    libc::SYS_rt_sigaction,
                    sig as usize,
                    default.as_ptr() as usize,
                    0,
                    SIGSET_SIZE,
                );
            }
        }
    }
}

/// The kernel's signal set: one bit per signal, 1 to 64.
const SIGSET_SIZE: usize = std::mem::size_of::<u64>();

fn bit(sig: c_int) -> u64 {
    1 << (sig - 1)
}

/// Sets the signal mask (the program starts with an empty one: an exec keeps it).
fn set_mask(mask: u64) {
    // SAFETY: a valid sigset of the kernel's size.
    unsafe {
        syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK as usize,
            &mask as *const u64 as usize,
            0,
            SIGSET_SIZE,
        );
    }
}

/// Takes the signals that arrived while the child was being set up and whose default would
/// dump core or stop it, before the mask opens. One that would dump core ends the child as
/// that signal's exit status says (128 + its number, as a shell reports it), without the core;
/// stops are dropped (the program has not started). Others (SIGTERM, SIGINT, SIGHUP, SIGKILL)
/// end the child the ordinary way once the mask opens.
fn take_pending_signals() {
    const DUMPS_CORE: [c_int; 10] = [
        libc::SIGQUIT,
        libc::SIGILL,
        libc::SIGTRAP,
        libc::SIGABRT,
        libc::SIGBUS,
        libc::SIGFPE,
        libc::SIGSEGV,
        libc::SIGXCPU,
        libc::SIGXFSZ,
        libc::SIGSYS,
    ];
    const STOPS: [c_int; 3] = [libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU];
    let set = DUMPS_CORE
        .iter()
        .chain(&STOPS)
        .fold(0u64, |set, &s| set | bit(s));
    let now = [0usize; 2];
    loop {
        // SAFETY: a valid set and zero timeout; no siginfo wanted.
        let sig = unsafe {
            syscall(
                libc::SYS_rt_sigtimedwait,
                &set as *const u64 as usize,
                0,
                now.as_ptr() as usize,
                SIGSET_SIZE,
            )
        };
        if sig <= 0 {
            return;
        }
        if DUMPS_CORE.contains(&(sig as c_int)) {
            exit(128 + sig as c_int);
        }
    }
}

/// Tells the terminal why the program did not start, and ends the child as a shell would:
/// 127 when there is no such file, 126 when there is one that cannot run.
unsafe fn fail(args: &ChildArgs, result: isize) -> ! {
    let errno = (-result) as c_int;
    // SAFETY: stderr is the terminal, and the prefix is the server's, kept alive with `args`.
    unsafe {
        write_all(args.failure_prefix, args.failure_prefix_len);
        let reason = reason(errno);
        write_all(reason.as_ptr(), reason.len());
        write_all(b"\r\n".as_ptr(), 2);
    }
    exit(if errno == libc::ENOENT { 127 } else { 126 })
}

unsafe fn write_all(mut bytes: *const u8, mut len: usize) {
    while len > 0 {
        // SAFETY: `bytes` has `len` readable bytes.
        let n = unsafe { syscall(libc::SYS_write, 2, bytes as usize, len, 0) };
        if n == -(libc::EINTR as isize) {
            continue;
        }
        if n <= 0 {
            return;
        }
        // SAFETY: the kernel wrote at most `len` bytes.
        bytes = unsafe { bytes.add(n as usize) };
        len -= n as usize;
    }
}

fn exit(code: c_int) -> ! {
    loop {
        // SAFETY: exit_group(2) ends this process (the child) and never returns.
        unsafe { syscall(libc::SYS_exit_group, code as usize, 0, 0, 0) };
    }
}

/// An exec failure in words, without `strerror` (which may lock and translate).
fn reason(errno: c_int) -> &'static [u8] {
    match errno {
        libc::ENOENT => b"No such file or directory (or its #! interpreter)",
        libc::EACCES => b"Permission denied",
        libc::ENOEXEC => b"Exec format error",
        libc::ETXTBSY => b"Text file busy",
        libc::E2BIG => b"Argument list too long",
        libc::ENOMEM => b"Cannot allocate memory",
        libc::ELOOP => b"Too many levels of symbolic links",
        libc::ENAMETOOLONG => b"File name too long",
        libc::ENOTDIR => b"Not a directory",
        libc::EISDIR => b"Is a directory",
        libc::EPERM => b"Operation not permitted",
        libc::ELIBBAD => b"Accessing a corrupted shared library",
        libc::EIO => b"Input/output error",
        _ => b"the system refused to run it",
    }
}
