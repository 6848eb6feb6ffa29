//! The keeper: a small synchronous process that holds a copy of every program's pty master and
//! is the programs' reaper, so that programs outlive the server (a crash, a SIGKILL, an
//! upgrade). It starts the server as its own child; it never reads program output and never
//! signals a program. See docs/ARCHITECTURE.md, "The keeper".
//!
//! Bounds: [`held::MAX_HELD`] programs, [`MAX_CONNECTIONS`] connections, messages of at most
//! [`wire::MAX_MESSAGE`] bytes. Requests are in [`serve`]'s `answer`.

pub mod held;
pub mod link;
mod serve;
pub mod wire;

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Connections served at once; one more is told so and closed. A server uses one, each
/// starting client one for a moment.
pub const MAX_CONNECTIONS: usize = 32;
/// Set in the server's environment by the keeper that started it (never passed to programs).
pub const ENV: &str = "LINGER_KEEPER";

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("keeper.sock")
}

fn lock_path(dir: &Path) -> PathBuf {
    dir.join("keeper.lock")
}

pub fn pid_path(dir: &Path) -> PathBuf {
    dir.join("keeper.pid")
}

/// One line for the log (the keeper's stderr is the server log).
pub(crate) fn note(line: &str) {
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now());
    eprintln!("{now} keeper[{}]: {line}", std::process::id());
}

/// `linger keeper`: keeps programs alive across servers until no server runs and nothing is
/// held. Returns the exit status: the last server's, so a client that started the keeper
/// sees why its server did not start.
pub fn run(dir: &Path) -> Result<i32, String> {
    crate::paths::ensure_private_dir(dir)?;
    let exe = std::env::current_exe()
        .map_err(|e| format!("cannot find the linger binary to start the server: {e}"))?;
    ignore_signals();
    let Some(lock) = take_lock(dir, &exe)? else {
        // Another keeper runs and started (or already had) a server.
        return Ok(0);
    };
    // SAFETY: prctl(2) with integer arguments only. (rustix's wrapper takes the flag as an
    // `Option<Pid>`, where `None` clears it.)
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "cannot become the programs' reaper (PR_SET_CHILD_SUBREAPER): {}",
            std::io::Error::last_os_error()
        ));
    }
    raise_fd_limit();
    let signals = signal_fd()?;
    let listener = bind(dir)?;
    let _ = std::fs::write(pid_path(dir), format!("{}\n", std::process::id()));
    note("started");
    let mut keeper = serve::Keeper::new(dir.to_path_buf(), listener, signals, lock);
    keeper.start_server(&exe);
    let code = keeper.serve();
    // Another keeper may have taken over the path after the runtime dir was deleted.
    if keeper.owns_socket() {
        let _ = std::fs::remove_file(socket_path(dir));
    }
    let ours = std::fs::read_to_string(pid_path(dir))
        .is_ok_and(|p| p.trim() == std::process::id().to_string());
    if ours {
        let _ = std::fs::remove_file(pid_path(dir));
    }
    note("no server runs and nothing is held: exiting");
    Ok(code)
}

/// A hang-up of the terminal that started us, a Ctrl-C there, or a client that went away must
/// not end the keeper: programs would die with it.
fn ignore_signals() {
    // SAFETY: signal(2) with SIG_IGN for this process.
    unsafe {
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

fn open_lock(dir: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = lock_path(dir);
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

fn try_lock(file: &std::fs::File) -> bool {
    rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// Identifies the file at `path` (device and inode), to tell our socket from another's.
pub(crate) fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Takes `keeper.lock` again when its file was replaced (the runtime dir was deleted) and the
/// new one is free.
pub(crate) fn relock(dir: &Path, lock: &mut Option<std::fs::File>) {
    use std::os::unix::fs::MetadataExt;
    let held = lock
        .as_ref()
        .and_then(|f| f.metadata().ok())
        .map(|m| (m.dev(), m.ino()));
    if held.is_some() && held == file_id(&lock_path(dir)) {
        return;
    }
    if let Ok(file) = open_lock(dir)
        && try_lock(&file)
    {
        *lock = Some(file);
    }
}

/// The runtime dir was deleted (a tmp cleaner, logind): bind our socket again, so clients
/// (and the next server, which must adopt what we hold) reach us. A socket file there (ours,
/// or that of a keeper started meanwhile, which holds nothing and exits soon) is left alone.
/// Returns the new listener.
pub(crate) fn rebind(dir: &Path, lock: &mut Option<std::fs::File>) -> Option<OwnedFd> {
    if file_id(&socket_path(dir)).is_some() {
        return None;
    }
    if let Err(e) = crate::paths::ensure_private_dir(dir) {
        note(&format!("cannot listen again: {e}"));
        return None;
    }
    relock(dir, lock);
    let listener = bind(dir).map_err(|e| note(&e)).ok()?;
    let _ = std::fs::write(pid_path(dir), format!("{}\n", std::process::id()));
    note("listening again (the runtime dir was gone)");
    Some(listener)
}

/// Takes `keeper.lock`. When another keeper holds it, asks that one to start a server instead
/// and returns `None`; a keeper on its way out (its socket gone) is waited for, bounded.
fn take_lock(dir: &Path, exe: &Path) -> Result<Option<std::fs::File>, String> {
    let path = lock_path(dir);
    let file = open_lock(dir)?;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if try_lock(&file) {
            return Ok(Some(file));
        }
        if ask_start(dir, exe).is_ok() {
            return Ok(None);
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "another keeper holds {} but does not answer on {}",
                path.display(),
                socket_path(dir).display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a keeper runs for `dir`: then programs may be waiting for a server to adopt them.
pub fn runs(dir: &Path) -> bool {
    wire::connect(&socket_path(dir)).is_ok()
}

/// Asks a running keeper to start a server from `exe` unless one runs.
pub fn ask_start(dir: &Path, exe: &Path) -> std::io::Result<String> {
    let (sock, _) = wire::connect(&socket_path(dir))?;
    wire::ask(&sock, &format!("start {}", exe.display()), None)
}

/// Asks a running keeper to hand its server's sessions to a server started from `exe`. The
/// outer error: no keeper could be reached; the inner one: the keeper's refusal.
pub fn ask_upgrade(dir: &Path, exe: &Path) -> std::io::Result<Result<String, String>> {
    let (sock, _) = wire::connect(&socket_path(dir))?;
    wire::send(&sock, &format!("upgrade {}", exe.display()), None)?;
    let (reply, _) = wire::recv(&sock, rustix::net::RecvFlags::empty())?;
    Ok(match reply.strip_prefix("err ") {
        Some(refused) => Err(refused.to_string()),
        None => Ok(reply),
    })
}

/// Each held master is an open fd: make room for [`held::MAX_HELD`] of them and the
/// connections, as far as the hard limit allows.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let wanted = (held::MAX_HELD + MAX_CONNECTIONS + 64) as u64;
    let mut limit = getrlimit(Resource::Nofile);
    let current = limit.current.unwrap_or(u64::MAX);
    if current >= wanted {
        return;
    }
    limit.current = Some(limit.maximum.map_or(wanted, |max| max.min(wanted)));
    if let Err(e) = setrlimit(Resource::Nofile, limit) {
        note(&format!("cannot raise the fd limit to {wanted}: {e}"));
    }
}

/// SIGCHLD (a child ended) and SIGUSR1 (the server bound its socket again: see [`rebind`]) as
/// a readable fd for poll(2): blocked, and read through a signalfd.
fn signal_fd() -> Result<OwnedFd, String> {
    // SAFETY: sigprocmask(2) and signalfd(2) on a set built by the libc helpers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigaddset(&mut set, libc::SIGUSR1);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(format!(
                "cannot watch for ended programs (signalfd): {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Binds `keeper.sock` (we hold the lock, so a file there is a dead keeper's) for this user only.
fn bind(dir: &Path) -> Result<OwnedFd, String> {
    let path = socket_path(dir);
    let _ = std::fs::remove_file(&path);
    let fail = |e: std::io::Error| format!("cannot listen on {}: {e}", path.display());
    let sock = wire::socket().map_err(fail)?;
    let addr = rustix::net::SocketAddrUnix::new(&path).map_err(|e| fail(e.into()))?;
    rustix::net::bind(&sock, &addr).map_err(|e| fail(e.into()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    rustix::net::listen(&sock, 16).map_err(|e| fail(e.into()))?;
    crate::pty::set_nonblocking(&sock).map_err(fail)?;
    Ok(sock)
}
