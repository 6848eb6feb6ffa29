//! Starting a session's program on a new pty, and waiting for it through a pidfd.
//!
//! The child is cloned with `CLONE_VM | CLONE_VFORK`, as glibc's `posix_spawn` does: no copy
//! of the server's page tables, and the server's thread resumes as soon as the child has
//! called `exec` (an exec failure is reported back through shared memory), where `fork` copied
//! the page tables and `std::process::Command` then waited for the exec on a pipe: `linger new`
//! answers sooner (100 creates from a shell: median 543 -> 483 ms, docs/BENCHMARKS.md). The
//! child becomes a session leader with the pty as its controlling terminal (it opens the slave
//! by path after `setsid`), gets every signal's default disposition and an empty mask (an exec
//! keeps ignored signals: Rust ignores SIGPIPE, `nohup` SIGHUP), and inherits no descriptor
//! but its terminal.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// What to start, where, with which environment, on a pty of which size.
pub struct SpawnOptions<'a> {
    pub command: &'a [String],
    pub cwd: &'a str,
    pub env: Vec<(OsString, OsString)>,
    pub env_remove: Vec<&'a str>,
    /// Start from `env` alone instead of the server's environment.
    pub clear_env: bool,
    pub rows: u16,
    pub cols: u16,
}

/// A child running on a fresh pty. The master is non-blocking; the server keeps no slave fd, so
/// the master reads EIO (end of output) once every process holding the slave has gone.
pub struct Spawned {
    pub master: OwnedFd,
    pub child: Child,
}

/// A program this server started: its pid, and a pidfd that turns readable when it ends.
pub struct Child {
    pid: u32,
    pidfd: AsyncFd<OwnedFd>,
}

impl Child {
    pub fn id(&self) -> u32 {
        self.pid
    }

    /// Resolves when the program has ended, and reaps it. Cancellation-safe: the pidfd's
    /// readiness is not consumed until the status was taken.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        loop {
            let mut ready = self.pidfd.readable().await?;
            let options =
                rustix::process::WaitIdOptions::EXITED | rustix::process::WaitIdOptions::NOHANG;
            let id = rustix::process::WaitId::PidFd(ready.get_inner().as_fd());
            match rustix::process::waitid(id, options) {
                Ok(Some(status)) => return Ok(raw_status(&status)),
                Ok(None) => ready.clear_ready(),
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// The wait(2) status word `ExitStatus` is made of.
fn raw_status(status: &rustix::process::WaitIdStatus) -> ExitStatus {
    if let Some(code) = status.exit_status() {
        return ExitStatus::from_raw((code & 0xff) << 8);
    }
    let signal = status.terminating_signal().unwrap_or(0);
    let core = if status.dumped() { 0x80 } else { 0 };
    ExitStatus::from_raw(signal | core)
}

/// Starts `opts.command` on a new pty of the given size.
pub fn spawn(opts: SpawnOptions<'_>) -> io::Result<Spawned> {
    let (program, _) = opts
        .command
        .split_first()
        .ok_or_else(|| io::Error::other("empty command"))?;
    let env = environment(&opts);
    let path = find_program(program, &env, Path::new(opts.cwd))?;
    let master = crate::pty::open_master(opts.rows, opts.cols)?;
    let slave_path = rustix::pty::ptsname(&master, Vec::new())?;
    let argv = c_strings(opts.command.iter().map(|a| OsStr::new(a).as_bytes()))?;
    let envp = c_strings(env.iter().map(|(k, v)| {
        let mut pair = k.as_bytes().to_vec();
        pair.push(b'=');
        pair.extend_from_slice(v.as_bytes());
        pair
    }))?;
    let path = CString::new(path.into_os_string().into_vec())?;
    let cwd = CString::new(opts.cwd)?;
    let pid = spawn_on(&path, &cwd, &slave_path, &argv, &envp)?;
    match watch(pid) {
        Ok(pidfd) => Ok(Spawned {
            master,
            child: Child {
                pid: pid as u32,
                pidfd,
            },
        }),
        Err(e) => {
            // A program nobody could wait for must not run on unseen: end it.
            // SAFETY: kill(2) and waitpid(2) on the child just started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
            Err(e)
        }
    }
}

/// A pidfd for `pid`, registered to say when it ends.
fn watch(pid: libc::pid_t) -> io::Result<AsyncFd<OwnedFd>> {
    let pid = rustix::process::Pid::from_raw(pid).ok_or_else(|| io::Error::other("pid 0"))?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::NONBLOCK)?;
    // SAFETY: a freshly opened descriptor that only this AsyncFd owns and registers.
    unsafe { AsyncFd::register_with_interest(pidfd, Interest::READABLE) }
        .map_err(|e| e.into_parts().1)
}

/// The program's environment: the server's (unless cleared) without `env_remove`, with `env`
/// over it.
fn environment(opts: &SpawnOptions<'_>) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = if opts.clear_env {
        Vec::new()
    } else {
        std::env::vars_os().collect()
    };
    env.retain(|(k, _)| !opts.env_remove.iter().any(|r| OsStr::new(r) == k));
    for (k, v) in &opts.env {
        env.retain(|(key, _)| key != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// Where `program` is: itself when it names a path, else the first executable file of that
/// name in the program's own `PATH` (as a shell would look it up for it), relative directories
/// taken from its working directory.
fn find_program(program: &str, env: &[(OsString, OsString)], cwd: &Path) -> io::Result<PathBuf> {
    if program.contains('/') {
        return Ok(PathBuf::from(program));
    }
    let search = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    for dir in std::env::split_paths(&search) {
        let candidate = cwd.join(dir).join(program);
        let executable = rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok();
        if executable && candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(io::Error::from_raw_os_error(libc::ENOENT))
}

fn c_strings<I, B>(items: I) -> io::Result<Vec<CString>>
where
    I: IntoIterator<Item = B>,
    B: Into<Vec<u8>>,
{
    items
        .into_iter()
        .map(|b| CString::new(b).map_err(io::Error::from))
        .collect()
}

/// What the child needs, in memory it shares with the server until it has called `exec`.
#[repr(C)]
struct ChildArgs {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    tty: *const libc::c_char,
    /// `sh <path> <args...>`: run when the file is no executable the kernel knows (a script
    /// without `#!`), as `execvp` and shells do.
    sh_argv: *const *const libc::c_char,
    /// Set by the child when a step failed (then it exits): the error number.
    errno: libc::c_int,
}

/// The child's stack: it runs on a stack of its own while the server's thread is suspended.
const CHILD_STACK: usize = 64 * 1024;

/// Starts `path` in `cwd` on the terminal at `tty` with `clone(CLONE_VM | CLONE_VFORK)`, as
/// glibc's `posix_spawn` does, with the child's set-up of our own: glibc's leaves its internal
/// signals (32, 33) ignored in the child, and an exec keeps them so. Returns the child's pid
/// once it has called `exec`, or the error of the step that failed.
fn spawn_on(
    path: &CString,
    cwd: &CString,
    tty: &CString,
    argv: &[CString],
    envp: &[CString],
) -> io::Result<libc::pid_t> {
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|e| e.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    let mut sh_argv: Vec<*const libc::c_char> = vec![c"sh".as_ptr(), path.as_ptr()];
    sh_argv.extend(argv.iter().skip(1).map(|a| a.as_ptr()));
    sh_argv.push(std::ptr::null());
    let mut args = ChildArgs {
        path: path.as_ptr(),
        argv: argv_ptrs.as_ptr(),
        envp: envp_ptrs.as_ptr(),
        cwd: cwd.as_ptr(),
        tty: tty.as_ptr(),
        sh_argv: sh_argv.as_ptr(),
        errno: 0,
    };
    let mut stack = vec![0u8; CHILD_STACK];
    // SAFETY: the stack grows down from its (16-byte aligned) end; `stack` and `args` outlive
    // the child's use of them, since CLONE_VFORK suspends this thread until the child has
    // called exec or exited. Every signal is blocked around the clone, so no handler of ours
    // runs in the child while it shares our memory; the child resets them all to default
    // before unblocking. The child makes only system calls (see `child_main`).
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(CHILD_STACK);
        let top = top.sub(top as usize % 16).cast::<libc::c_void>();
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child_main,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&mut args as *mut ChildArgs).cast::<libc::c_void>(),
        );
        let clone_error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(clone_error);
        }
        pid
    };
    // SAFETY: the child wrote this before exiting, and is gone or has exec'd: nothing else
    // writes it. Volatile: the write happened outside what the compiler can see.
    let errno = unsafe { std::ptr::read_volatile(&args.errno) };
    if errno != 0 {
        // It has exited: reap it.
        // SAFETY: waitpid(2) on our own child.
        unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) };
        return Err(io::Error::from_raw_os_error(errno));
    }
    Ok(pid)
}

/// The child between clone and exec. It shares the server's memory, so: system calls only (no
/// allocation, no locks); a failure is written to `errno` and ends the child.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the `ChildArgs` the suspended parent keeps alive; the calls below are
    // plain system calls on this (child) process.
    unsafe {
        let args = &mut *arg.cast::<ChildArgs>();
        // Default dispositions first (no handler of ours may run in here), then no mask.
        crate::pty::reset_signals();
        let step = |done: bool, args: &mut ChildArgs| {
            if !done {
                args.errno = *libc::__errno_location();
                libc::_exit(127);
            }
        };
        step(libc::setsid() >= 0, args);
        // Opened after `setsid` without O_NOCTTY: the terminal becomes the controlling one.
        let tty = libc::open(args.tty, libc::O_RDWR);
        step(tty >= 0, args);
        for fd in 0..3 {
            if fd != tty {
                step(libc::dup2(tty, fd) >= 0, args);
            }
        }
        if tty > 2 {
            libc::close(tty);
        }
        step(libc::chdir(args.cwd) == 0, args);
        crate::pty::close_inherited_fds();
        libc::execve(args.path, args.argv, args.envp);
        if *libc::__errno_location() == libc::ENOEXEC {
            libc::execve(c"/bin/sh".as_ptr(), args.sh_argv, args.envp);
        }
        step(false, args);
        127
    }
}
