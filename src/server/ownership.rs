//! Who owns what: the runtime dir's lock and socket, and the state dir's lock and owner file, so
//! exactly one server uses a state dir and a running server can always be reached again.
//!
//! A server takes an exclusive `flock` on `server.lock` in its runtime dir and on
//! `server.lock` in its state dir, and writes its pid and runtime dir to `server.owner` in the
//! state dir. A second server for the same state dir (another `LINGER_DIR` or
//! `XDG_RUNTIME_DIR`) refuses with one line naming the owner. When the owner's socket is gone
//! (a tmp cleaner, logind), the refused starter sends the owner SIGUSR1, and the owner binds its
//! socket again: a signal, so an idle server has no timer or poll to wake it.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::log;

/// Exit status of `linger server` when another server owns the state dir; the client that
/// started it then shows the server's one-line reason instead of a generic failure.
pub const REFUSED_EXIT: i32 = 3;

/// Why a server did not run.
#[derive(Debug)]
pub enum NotStarted {
    /// Something went wrong (exit status 1).
    Failed(String),
    /// Another server owns this state dir (exit status [`REFUSED_EXIT`]).
    Refused(String),
}

impl From<String> for NotStarted {
    fn from(message: String) -> Self {
        NotStarted::Failed(message)
    }
}

fn open_lock(path: &Path) -> Result<std::fs::File, String> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

fn try_lock(file: &std::fs::File) -> bool {
    rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok()
}

/// Takes the runtime dir's lock. When another server holds it but its socket is gone, asks that
/// server to bind it again before refusing, so the client that started us can reach it.
pub fn lock_runtime_dir(dir: &Path) -> Result<std::fs::File, String> {
    let file = open_lock(&crate::paths::lock_path(dir))?;
    if try_lock(&file) {
        return Ok(file);
    }
    if !reachable(dir)
        && let Some(pid) = read_pid(&crate::paths::pid_path(dir))
    {
        wake(pid);
        return Err(format!(
            "a linger server (pid {pid}) is already running for {} but its socket was gone; \
             asked it to listen again",
            dir.display()
        ));
    }
    Err(format!(
        "a linger server is already running for {}",
        dir.display()
    ))
}

/// The state dir's lock, held for the server's life.
pub struct StateLock {
    _file: std::fs::File,
}

fn owner_path(state: &Path) -> PathBuf {
    state.join("server.owner")
}

/// Takes the state dir's lock and records us as its owner. `runtime_lock` is released before a
/// refusal that wakes the owner, because the owner may need that lock to listen again.
pub fn lock_state_dir(
    state: &Path,
    runtime_dir: &Path,
    runtime_lock: &mut Option<std::fs::File>,
) -> Result<StateLock, NotStarted> {
    let file = open_lock(&state.join("server.lock"))?;
    if try_lock(&file) {
        let owner = format!("{}\n{}\n", std::process::id(), runtime_dir.display());
        if let Err(e) = crate::state::write_atomic(&owner_path(state), owner.as_bytes(), false) {
            log::warn(&format!(
                "cannot write {}: {e}",
                owner_path(state).display()
            ));
        }
        return Ok(StateLock { _file: file });
    }
    let text = crate::state::read_small(&owner_path(state)).unwrap_or_default();
    let mut lines = text.lines();
    let pid = lines.next().and_then(|p| p.trim().parse::<i32>().ok());
    let owner_dir = lines.next().map(PathBuf::from);
    let (Some(pid), Some(owner_dir)) = (pid, owner_dir) else {
        return Err(NotStarted::Refused(format!(
            "another linger server already uses the state dir {} (it did not say which); \
             stop it, or give this one its own LINGER_STATE_DIR",
            state.display()
        )));
    };
    if !reachable(&owner_dir) {
        *runtime_lock = None;
        wake(pid);
        if same_dir(&owner_dir, runtime_dir) {
            return Err(NotStarted::Failed(format!(
                "the linger server (pid {pid}) for {} had lost its socket; asked it to listen again",
                runtime_dir.display()
            )));
        }
    }
    Err(NotStarted::Refused(format!(
        "a linger server (pid {pid}, runtime dir {}) already owns the state dir {}; reach it \
         with LINGER_DIR={}, or stop it with `LINGER_DIR={} linger kill-server`",
        owner_dir.display(),
        state.display(),
        owner_dir.display(),
        owner_dir.display()
    )))
}

/// The one-line reason a refused server printed last in `log` (its stderr).
pub fn refusal(log: &Path) -> String {
    let text = std::fs::read(log).unwrap_or_default();
    let tail = &text[text.len().saturating_sub(4096)..];
    String::from_utf8_lossy(tail)
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("linger: "))
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "another linger server owns the state dir; see {}",
                log.display()
            )
        })
}

fn same_dir(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (std::fs::canonicalize(a), std::fs::canonicalize(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

fn reachable(dir: &Path) -> bool {
    std::os::unix::net::UnixStream::connect(crate::paths::socket_path(dir)).is_ok()
}

fn read_pid(path: &Path) -> Option<i32> {
    crate::state::read_small(path)?.trim().parse().ok()
}

fn wake(pid: i32) {
    if pid > 0 {
        // SAFETY: kill(2); SIGUSR1 asks a linger server to bind its socket again.
        unsafe {
            libc::kill(pid, libc::SIGUSR1);
        }
    }
}

/// The runtime dir as this server holds it: its lock, and the socket file it bound.
pub struct RuntimeDir {
    pub dir: PathBuf,
    lock: std::fs::File,
    /// Device and inode of the socket we bound, to tell it from a replacement.
    socket_id: Option<(u64, u64)>,
}

impl RuntimeDir {
    pub fn new(dir: &Path, lock: std::fs::File) -> RuntimeDir {
        RuntimeDir {
            dir: dir.to_path_buf(),
            lock,
            socket_id: None,
        }
    }

    /// Binds the socket (removing a stale one: we hold the lock) and writes the pid file.
    pub fn bind(&mut self) -> Result<tokio::net::UnixListener, String> {
        let socket = crate::paths::socket_path(&self.dir);
        match std::fs::remove_file(&socket) {
            Ok(()) => log::info("removed a stale socket"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(format!(
                    "cannot remove stale socket {}: {e}",
                    socket.display()
                ));
            }
        }
        let listener = tokio::net::UnixListener::bind(&socket)
            .map_err(|e| format!("cannot listen on {}: {e}", socket.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600));
        }
        self.socket_id = file_id(&socket);
        let _ = std::fs::write(
            crate::paths::pid_path(&self.dir),
            format!("{}\n", std::process::id()),
        );
        log::info(&format!(
            "server {} listening on {}",
            std::process::id(),
            socket.display()
        ));
        Ok(listener)
    }

    /// After SIGUSR1: binds again when our socket file is gone or replaced, re-creating the
    /// dir and its lock if they went too. `None` when nothing needed doing or it failed.
    pub fn rebind(&mut self) -> Option<tokio::net::UnixListener> {
        let socket = crate::paths::socket_path(&self.dir);
        if self.socket_id.is_some() && file_id(&socket) == self.socket_id {
            return None;
        }
        if let Err(e) = crate::paths::ensure_private_dir(&self.dir) {
            log::warn(&format!("cannot listen again: {e}"));
            return None;
        }
        let lock_path = crate::paths::lock_path(&self.dir);
        let ours = rustix::fs::fstat(&self.lock)
            .ok()
            .map(|s| (s.st_dev, s.st_ino));
        let on_disk = std::fs::metadata(&lock_path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if ours != on_disk {
            match open_lock(&lock_path) {
                Ok(file) if try_lock(&file) => self.lock = file,
                Ok(_) => {
                    log::warn(&format!(
                        "cannot listen again: another server holds {}",
                        lock_path.display()
                    ));
                    return None;
                }
                Err(e) => {
                    log::warn(&format!("cannot listen again: {e}"));
                    return None;
                }
            }
        }
        match self.bind() {
            Ok(listener) => Some(listener),
            Err(e) => {
                log::warn(&format!("cannot listen again: {e}"));
                None
            }
        }
    }

    /// Removes the socket and pid file at shutdown, if they are still ours.
    pub fn remove(&self) {
        let socket = crate::paths::socket_path(&self.dir);
        if file_id(&socket) == self.socket_id {
            let _ = std::fs::remove_file(&socket);
            let _ = std::fs::remove_file(crate::paths::pid_path(&self.dir));
        }
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}
