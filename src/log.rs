//! The server's log: one timestamped line per event, written by a thread of its own so that
//! logging never blocks, fails or panics in its callers. Never session output or input.
//!
//! Bounds: `server.log` rotates to `server.log.1` at [`LOG_LIMIT`] bytes (so both together stay
//! under twice that); at most [`QUEUE`] lines wait for the writer (more are counted and dropped);
//! a line repeated within [`REPEAT_WINDOW`] is written once, then as a count.

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::{Duration, Instant};

/// Size at which `server.log` is rotated.
pub const LOG_LIMIT: u64 = 1 << 20;
/// Lines waiting for the writer thread; a flood beyond this is dropped and counted.
pub const QUEUE: usize = 1024;
/// Identical lines within this window are written once and then summarised.
pub const REPEAT_WINDOW: Duration = Duration::from_secs(60);
/// Distinct lines remembered for the repeat check; the memory is cleared when it fills.
const REPEATS_TRACKED: usize = 256;

enum Msg {
    Line(&'static str, String),
    Flush(SyncSender<()>),
}

static SENDER: OnceLock<SyncSender<Msg>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Starts the writer thread. When stderr is the file at `log_file` (the server was started in
/// the background by a client), that file is rotated at the size bound; any other stderr (a
/// terminal, a pipe, `/dev/full`) is written to as is, and errors are ignored.
pub fn init(log_file: &Path) {
    let rotate = stderr_is(log_file).then(|| log_file.to_path_buf());
    let limit = test_limit().unwrap_or(LOG_LIMIT);
    let size = rotate
        .as_ref()
        .and_then(|_| rustix::fs::fstat(std::io::stderr()).ok())
        .map_or(0, |st| st.st_size as u64);
    let (tx, rx) = sync_channel(QUEUE);
    let mut writer = Writer {
        rotate,
        size,
        limit,
        repeats: HashMap::new(),
    };
    let started = std::thread::Builder::new()
        .name("log".into())
        .spawn(move || writer.run(rx));
    if started.is_ok() {
        let _ = SENDER.set(tx);
    }
}

/// Tests shrink the bound (only with `LINGER_TEST_HOOKS=1`) to reach it in a few lines.
fn test_limit() -> Option<u64> {
    if std::env::var_os("LINGER_TEST_HOOKS").is_none_or(|v| v != "1") {
        return None;
    }
    std::env::var("LINGER_TEST_LOG_LIMIT").ok()?.parse().ok()
}

fn stderr_is(path: &Path) -> bool {
    let (Ok(ours), Ok(theirs)) = (rustix::fs::fstat(std::io::stderr()), rustix::fs::stat(path))
    else {
        return false;
    };
    ours.st_dev == theirs.st_dev && ours.st_ino == theirs.st_ino
}

/// Waits (up to a second) until every line queued so far is written: before the server exits.
pub fn flush() {
    let Some(tx) = SENDER.get() else { return };
    let (ack, done) = sync_channel(1);
    if tx.try_send(Msg::Flush(ack)).is_ok() {
        let _ = done.recv_timeout(Duration::from_secs(1));
    }
}

fn line(level: &'static str, message: &str) {
    match SENDER.get() {
        Some(tx) => match tx.try_send(Msg::Line(level, message.to_string())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        },
        // Not a server (or no thread could be started): write directly, ignoring errors.
        None => write_stderr(&format_line(level, message)),
    }
}

pub fn info(message: &str) {
    line("INFO", message);
}

pub fn warn(message: &str) {
    line("WARN", message);
}

fn format_line(level: &str, message: &str) -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
    format!("{now} {level} {message}\n")
}

/// `write_all` instead of `eprintln!`, which panics when stderr is full or closed.
fn write_stderr(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

struct Writer {
    /// The log file behind stderr, when it is ours to rotate.
    rotate: Option<PathBuf>,
    size: u64,
    limit: u64,
    /// Per distinct line: when it was last written and how often it was held back since.
    repeats: HashMap<String, (Instant, u64)>,
}

impl Writer {
    fn run(&mut self, rx: Receiver<Msg>) {
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Line(level, message) => self.line(level, message),
                Msg::Flush(ack) => {
                    let _ = ack.send(());
                }
            }
            let dropped = DROPPED.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                self.write(&format_line(
                    "WARN",
                    &format!("{dropped} log lines dropped (more than {QUEUE} queued)"),
                ));
            }
        }
    }

    fn line(&mut self, level: &'static str, message: String) {
        let now = Instant::now();
        let key = format!("{level} {message}");
        let mut text = None;
        match self.repeats.get_mut(&key) {
            Some((last, held)) if now.duration_since(*last) < REPEAT_WINDOW => {
                *held += 1;
                return;
            }
            Some((last, held)) => {
                let note = if *held > 0 {
                    format!(" (and {held} more times in the last minute)")
                } else {
                    String::new()
                };
                text = Some(format_line(level, &format!("{message}{note}")));
                *last = now;
                *held = 0;
            }
            None => {
                if self.repeats.len() >= REPEATS_TRACKED {
                    self.repeats.clear();
                }
                self.repeats.insert(key, (now, 0));
            }
        }
        let text = text.unwrap_or_else(|| format_line(level, &message));
        self.write(&text);
    }

    fn write(&mut self, text: &str) {
        if self.rotate.is_some() && self.size + text.len() as u64 > self.limit {
            self.rotate();
        }
        write_stderr(text);
        self.size += text.len() as u64;
    }

    /// Moves `server.log` to `server.log.1` and points stdout and stderr at a fresh file; if
    /// that fails (full or read-only dir), empties the current file instead, so the bound holds.
    fn rotate(&mut self) {
        let Some(path) = self.rotate.clone() else {
            return;
        };
        self.size = 0;
        let mut old = path.clone().into_os_string();
        old.push(".1");
        let fresh = std::fs::rename(&path, &old).and_then(|()| {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&path)
        });
        match fresh {
            Ok(file) => {
                // SAFETY: dup2 onto our own stdout and stderr; `file` stays valid for the call.
                unsafe {
                    libc::dup2(file.as_raw_fd(), 1);
                    libc::dup2(file.as_raw_fd(), 2);
                }
            }
            Err(_) => {
                let _ = rustix::fs::ftruncate(std::io::stderr(), 0);
            }
        }
    }
}
