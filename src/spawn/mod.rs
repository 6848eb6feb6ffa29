//! Starting a session's program on a new pty, and waiting for it through a pidfd.
//!
//! The child is cloned with `CLONE_VM`, as glibc's `posix_spawn` does: no copy of the
//! server's page tables. Unlike `posix_spawn` (`CLONE_VFORK`), the server's thread does not
//! wait for the exec: the exec and the new program's start-up (a millisecond or two, ld.so
//! included) overlap `new`'s answer, and the thread frees what the child read once the kernel
//! says the child let go of the server's memory (`CLONE_CHILD_CLEARTID`). So the usual reasons
//! a program cannot start (missing, not executable, a directory, a missing `#!` interpreter, a
//! missing working directory) are checked before the clone; an exec that fails all the same
//! says why on the program's terminal. The child becomes a session leader with the pty as its
//! controlling terminal (it opens the slave by path after `setsid`), gets every signal's
//! default disposition and an empty mask (an exec keeps ignored signals: Rust ignores SIGPIPE,
//! `nohup` SIGHUP), and inherits no descriptor but its terminal.

mod child;

use std::ffi::{CString, OsStr, OsString, c_char};
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use child::ChildArgs;
pub use child::{close_inherited_fds, reset_signals};

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

/// Starts `opts.command` on a new pty of the given size. Returns once the child is cloned,
/// before its exec: the [`Launch`] must then be finished (off the async threads) before the
/// memory the child reads is freed. A program that is missing or cannot be run is an error
/// here; an exec that fails all the same (a missing `#!` interpreter, say) shows on the
/// program's terminal, and the program ends with 127 or 126, as in a shell.
pub fn spawn(opts: SpawnOptions<'_>) -> io::Result<(Spawned, Launch)> {
    let (program, _) = opts
        .command
        .split_first()
        .ok_or_else(|| io::Error::other("empty command"))?;
    let env = environment(&opts);
    let cwd = Path::new(opts.cwd);
    if !cwd.is_dir() {
        return Err(io::Error::from_raw_os_error(libc::ENOENT));
    }
    let path = find_program(program, &env, cwd)?;
    let master = crate::pty::open_master(opts.rows, opts.cols)?;
    let tty = rustix::pty::ptsname(&master, Vec::new())?;
    let envp = c_strings(env.iter().map(|(k, v)| {
        let mut pair = k.as_bytes().to_vec();
        pair.push(b'=');
        pair.extend_from_slice(v.as_bytes());
        pair
    }))?;
    let launch = Launch::new(LaunchStrings {
        path: CString::new(path.into_os_string().into_vec())?,
        cwd: CString::new(opts.cwd)?,
        tty,
        argv: c_strings(opts.command.iter().map(|a| OsStr::new(a).as_bytes()))?,
        envp,
        failure_prefix: format!("linger: cannot start '{program}': ").into_bytes(),
    });
    let pid = launch.clone_child()?;
    match watch(pid) {
        Ok(pidfd) => Ok((
            Spawned {
                master,
                child: Child {
                    pid: pid as u32,
                    pidfd,
                },
            },
            launch,
        )),
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

/// Where `program` is: itself (from the program's working directory) when it names a path,
/// else the first executable file of that name in the program's own `PATH` (as a shell would
/// look it up for it), relative directories taken from its working directory. Either way it
/// must be an executable file, so that the usual mistakes fail `new` rather than the exec.
fn find_program(program: &str, env: &[(OsString, OsString)], cwd: &Path) -> io::Result<PathBuf> {
    let runnable = |candidate: &Path| {
        rustix::fs::access(candidate, rustix::fs::Access::EXEC_OK).is_ok() && candidate.is_file()
    };
    if program.contains('/') {
        let candidate = cwd.join(program);
        let meta = candidate.metadata()?;
        let executable = rustix::fs::access(&candidate, rustix::fs::Access::EXEC_OK).is_ok();
        if meta.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        if !meta.is_file() || !executable {
            return Err(io::Error::from_raw_os_error(libc::EACCES));
        }
        return check_interpreter(&candidate).map(|()| PathBuf::from(program));
    }
    let search = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    for dir in std::env::split_paths(&search) {
        let candidate = cwd.join(dir).join(program);
        if runnable(&candidate) {
            return check_interpreter(&candidate).map(|()| candidate);
        }
    }
    Err(io::Error::from_raw_os_error(libc::ENOENT))
}

/// A script's `#!` interpreter must exist and run: the exec would fail on it after `new` had
/// answered. The line is read as the kernel reads it (its first 256 bytes; the interpreter
/// ends at a space, tab, newline or NUL). Files that cannot be read here are left to the exec.
fn check_interpreter(script: &Path) -> io::Result<()> {
    use std::io::Read;
    let mut head = Vec::with_capacity(256);
    let Ok(_) = std::fs::File::open(script).and_then(|f| f.take(256).read_to_end(&mut head)) else {
        return Ok(());
    };
    let Some(line) = head.strip_prefix(b"#!") else {
        return Ok(());
    };
    let start = line
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    let line = &line[start..];
    let end = line
        .iter()
        .position(|&b| matches!(b, b' ' | b'\t' | b'\n' | 0))
        .unwrap_or(line.len());
    // One that fills the bytes read may be cut short: the exec's to judge.
    if end == 0 || end == line.len() {
        return Ok(());
    }
    let interpreter = Path::new(OsStr::from_bytes(&line[..end]));
    // A relative one is the program's to resolve, from its own directory.
    if !interpreter.is_absolute()
        || rustix::fs::access(interpreter, rustix::fs::Access::EXEC_OK).is_ok()
    {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "its #! interpreter {:?} is missing or cannot run",
        interpreter
    )))
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

/// The strings a child is started with.
struct LaunchStrings {
    path: CString,
    cwd: CString,
    tty: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    failure_prefix: Vec<u8>,
}

/// Everything a child reads between `clone` and `exec`, at an address that does not move.
/// The strings and pointer arrays are read only by the child, through `args`.
#[allow(dead_code)]
struct LaunchData {
    strings: LaunchStrings,
    argv: Vec<*const c_char>,
    envp: Vec<*const c_char>,
    sh_argv: Vec<*const c_char>,
    args: ChildArgs,
    stack: ChildStack,
    /// The child's pid while it may still use this memory: the kernel zeroes it and wakes its
    /// futex when the child's exec (or exit) lets go of the server's memory.
    in_use: AtomicU32,
}

/// A child that may still be reading its launch memory, which lives until [`Launch::finish`]
/// (or a drop) has seen it exec or exit.
pub struct Launch {
    data: ManuallyDrop<Box<LaunchData>>,
}

/// The child's stack: it needs little (system calls only), and pages it never touches cost
/// nothing.
const CHILD_STACK: usize = 64 * 1024;

/// Memory only the child writes: allocated raw, so no Rust reference ever covers it.
struct ChildStack(std::ptr::NonNull<u8>);

impl ChildStack {
    const LAYOUT: std::alloc::Layout = match std::alloc::Layout::from_size_align(CHILD_STACK, 16) {
        Ok(layout) => layout,
        Err(_) => panic!("the child stack's layout is invalid"),
    };

    fn new() -> ChildStack {
        // SAFETY: a non-zero size.
        let base = unsafe { std::alloc::alloc(Self::LAYOUT) };
        match std::ptr::NonNull::new(base) {
            Some(base) => ChildStack(base),
            None => std::alloc::handle_alloc_error(Self::LAYOUT),
        }
    }

    /// The stack's (16-byte aligned) end, where it starts growing down.
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the allocation.
        unsafe { self.0.as_ptr().add(CHILD_STACK).cast() }
    }
}

impl Drop for ChildStack {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { std::alloc::dealloc(self.0.as_ptr(), Self::LAYOUT) };
    }
}

impl Launch {
    fn new(strings: LaunchStrings) -> Launch {
        let pointers = |items: &[CString]| -> Vec<*const c_char> {
            items
                .iter()
                .map(|a| a.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let argv = pointers(&strings.argv);
        let envp = pointers(&strings.envp);
        let mut sh_argv: Vec<*const c_char> = vec![c"sh".as_ptr(), strings.path.as_ptr()];
        sh_argv.extend(strings.argv.iter().skip(1).map(|a| a.as_ptr()));
        sh_argv.push(std::ptr::null());
        let args = ChildArgs {
            path: strings.path.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            cwd: strings.cwd.as_ptr(),
            tty: strings.tty.as_ptr(),
            sh_argv: sh_argv.as_ptr(),
            failure_prefix: strings.failure_prefix.as_ptr(),
            failure_prefix_len: strings.failure_prefix.len(),
        };
        Launch {
            data: ManuallyDrop::new(Box::new(LaunchData {
                strings,
                argv,
                envp,
                sh_argv,
                args,
                stack: ChildStack::new(),
                in_use: AtomicU32::new(0),
            })),
        }
    }

    /// Clones the child onto its own stack, sharing this memory (no copy of the server's page
    /// tables, as glibc's `posix_spawn`), and returns its pid without waiting for its exec.
    fn clone_child(&self) -> io::Result<libc::pid_t> {
        let data = &*self.data;
        let wait_for_exec = if child::RUNS_BESIDE_SERVER {
            0
        } else {
            libc::CLONE_VFORK
        };
        let flags = libc::CLONE_VM
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID
            | wait_for_exec
            | libc::SIGCHLD;
        let in_use = data.in_use.as_ptr().cast::<libc::pid_t>();
        // SAFETY: the stack grows down from its end. The stack, `args` and
        // everything they point to live in `self.data`, which is freed only after the kernel
        // has cleared `in_use` (the child exec'd or exited). Every signal is blocked around
        // the clone, so no handler of ours runs in the child, which resets them all to
        // default before unblocking; it makes only raw system calls (see `child`).
        unsafe {
            let top = data.stack.top();
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            let pid = libc::clone(
                child::child_main,
                top,
                flags,
                (&data.args as *const ChildArgs)
                    .cast_mut()
                    .cast::<libc::c_void>(),
                in_use,
                std::ptr::null_mut::<libc::c_void>(),
                in_use,
            );
            let clone_error = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            if pid < 0 {
                return Err(clone_error);
            }
            Ok(pid)
        }
    }

    /// Blocks until the child no longer uses the launch memory (it has exec'd or exited), then
    /// frees it. Quick: an exec takes a millisecond or so.
    pub fn finish(self) {
        drop(self);
    }

    /// Waits until the kernel says the child let go of the launch memory; false if it cannot
    /// say.
    fn released(&self) -> bool {
        use rustix::thread::futex;
        loop {
            let pid = self.data.in_use.load(Ordering::Acquire);
            if pid == 0 {
                return true;
            }
            // A shared futex, not a private one: the kernel's wake at exec is a shared one.
            match futex::wait(&self.data.in_use, futex::Flags::empty(), pid, None) {
                Ok(()) | Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => {
                    crate::log::warn(&format!(
                        "cannot wait for a new program's exec ({e}); keeping its launch memory"
                    ));
                    return false;
                }
            }
        }
    }
}

impl Drop for Launch {
    fn drop(&mut self) {
        // Memory the child may still read is never freed: kept (a few KiB) if in doubt.
        if self.released() {
            // SAFETY: dropped once, here; the child no longer uses it.
            unsafe { ManuallyDrop::drop(&mut self.data) };
        }
    }
}
