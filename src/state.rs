//! Session records and output logs on disk, so a session's history, metadata and notes outlive
//! the server: atomic record writes, a size-bounded output log, the last screen.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Default bound on one session's output log (both generations together).
pub const DEFAULT_LOG_LIMIT: u64 = 16 << 20;

/// Largest `--log-size`: 1 GiB of disk per session.
pub const MAX_LOG_LIMIT: u64 = 1 << 30;

/// Largest `--scrollback`, in lines: the history ring's byte budget grows with it (512 bytes a
/// line), so this holds one session's history under about 100 MiB of memory.
pub const MAX_SCROLLBACK: usize = 200_000;

/// Refuses a scrollback or log size over its bound, with a one-line reason.
pub fn check_bounds(scrollback: usize, log_limit: u64) -> Result<(), String> {
    if scrollback > MAX_SCROLLBACK {
        return Err(format!(
            "--scrollback {scrollback} is too large (at most {MAX_SCROLLBACK} lines)"
        ));
    }
    if log_limit > MAX_LOG_LIMIT {
        return Err(format!(
            "--log-size {log_limit} bytes is too large (at most 1G)"
        ));
    }
    Ok(())
}

/// The state dir: `LINGER_STATE_DIR`, else `$XDG_STATE_HOME/linger`, else
/// `~/.local/state/linger`.
pub fn state_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LINGER_STATE_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("linger"));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".local/state/linger"))
}

/// Creates the state dir (0700; parents as needed) and checks it like the runtime dir.
pub fn prepare_state_dir(dir: &Path) -> Result<(), String> {
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    crate::paths::ensure_private_dir(dir)?;
    let sessions = dir.join("sessions");
    crate::paths::ensure_private_dir(&sessions)
}

/// Why sessions are not being saved, as found when the server started.
static UNSAVED_REASON: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records why the state dir cannot be used, for every session to report (`ls --json`).
pub fn set_unsaved_reason(reason: String) {
    let _ = UNSAVED_REASON.set(reason);
}

pub fn unsaved_reason() -> String {
    UNSAVED_REASON
        .get()
        .cloned()
        .unwrap_or_else(|| "no state dir (set LINGER_STATE_DIR or HOME)".into())
}

/// Deletes a session's files (`kill`). A failure is an error for the user: the session would
/// be listed again after a restart.
pub fn remove_session_dir(name: &str, dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(format!(
            "forgot session {name} but could not delete {} ({e}); it will be listed again when \
             the server restarts: delete that directory yourself",
            dir.display()
        )),
        _ => Ok(()),
    }
}

pub fn session_dir(state: &Path, name: &str) -> PathBuf {
    state.join("sessions").join(name)
}

/// What is known about a session, written on every change.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct SessionRecord {
    pub name: String,
    pub command: Vec<String>,
    pub cwd: String,
    pub env: Vec<(String, String)>,
    /// Unix milliseconds.
    pub created_at: u64,
    /// `running`, `exited`, `killed` or `lost`.
    pub state: String,
    pub pid: u32,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Command `revive` runs when given none.
    pub resume_command: Option<Vec<String>>,
    pub notes: String,
    /// Unix milliseconds of the last record or output write: "last seen" for a lost session.
    pub updated_at: u64,
    pub scrollback: usize,
    pub log_limit: u64,
    /// `env` is the creator's whole environment (records from before it hold `-e` only).
    #[serde(default)]
    pub clear_env: bool,
    /// The terminal profile queries are answered with (from the client that attached or
    /// typed last), kept across revive.
    #[serde(default)]
    pub profile: Option<crate::term::Profile>,
    /// Prompts queued for the agent (`linger queue`), oldest first; bounded by
    /// `server::tasks::MAX_QUEUED` and `MAX_QUEUE_BYTES`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queue: Vec<String>,
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never a mix:
/// write a temporary file, fsync it, rename it over, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        if durable {
            file.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if durable && let Some(parent) = path.parent() {
        std::fs::File::open(parent)?.sync_all()?;
    }
    Ok(())
}

/// The header of the state dir's binary files (the journal, the saved redraw): an 8-byte
/// magic, then one number (u64, little-endian).
pub const TAG_LEN: usize = 16;

pub fn tag(magic: &[u8; 8], value: u64) -> [u8; TAG_LEN] {
    let mut bytes = [0u8; TAG_LEN];
    bytes[..8].copy_from_slice(magic);
    bytes[8..].copy_from_slice(&value.to_le_bytes());
    bytes
}

/// The number in `bytes`' header when it starts with `magic`.
pub fn untag(magic: &[u8; 8], bytes: &[u8]) -> Option<u64> {
    let head = bytes.get(..TAG_LEN)?;
    let mut value = [0u8; 8];
    value.copy_from_slice(&head[8..]);
    (head[..8] == magic[..]).then(|| u64::from_le_bytes(value))
}

/// A session's record, in its dir.
pub const RECORD_FILE: &str = "meta.json";

pub fn write_record(dir: &Path, record: &SessionRecord) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_vec_pretty(record).map_err(std::io::Error::other)?;
    write_atomic(&dir.join(RECORD_FILE), &json, true)
}

/// Largest record read back: notes are at most [`MAX_NOTES`], the rest is small.
pub const MAX_RECORD_BYTES: u64 = 1 << 20;

/// Longest notes a session keeps (`linger note`); longer ones are refused.
pub const MAX_NOTES: usize = 64 * 1024;

/// Most of a session's saved output read back for a session without a process (capture,
/// attach, revive): the newest bytes of its output log, whatever `--log-size` allowed.
pub const MAX_OUTPUT_READ: u64 = 16 << 20;

/// Most of a saved screen read back (500 rows of 1000 cells with colours fit easily).
const MAX_SCREEN_READ: u64 = 4 << 20;

/// Opens `path` for reading only if it is a regular file, so a FIFO or a device put in its
/// place never blocks the server (the open itself cannot block: `O_NONBLOCK`).
fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// The last `max` bytes of a regular file, and whether that is all of it.
fn read_tail(path: &Path, max: u64) -> std::io::Result<(Vec<u8>, bool)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = open_regular(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(max);
    file.seek(SeekFrom::Start(start))?;
    let mut bytes = Vec::new();
    file.take(max).read_to_end(&mut bytes)?;
    Ok((bytes, start == 0))
}

/// A small file (an owner or pid file) as text, if it is a regular file: never blocks on a
/// FIFO and reads at most 4 KiB.
pub fn read_small(path: &Path) -> Option<String> {
    let (bytes, _) = read_tail(path, 4096).ok()?;
    String::from_utf8(bytes).ok()
}

/// The saved screen file's bytes (at most 4 MiB), if it is a regular file.
pub fn read_screen(dir: &Path) -> Option<Vec<u8>> {
    read_tail(&screen_path(dir), MAX_SCREEN_READ)
        .ok()
        .map(|(b, _)| b)
}

pub fn read_record(dir: &Path) -> Result<SessionRecord, String> {
    let path = dir.join(RECORD_FILE);
    let (bytes, whole) = read_tail(&path, MAX_RECORD_BYTES + 1)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if !whole || bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err(format!(
            "{} is larger than {} bytes",
            path.display(),
            MAX_RECORD_BYTES
        ));
    }
    serde_json::from_slice(&bytes).map_err(|e| format!("cannot parse {}: {e}", path.display()))
}

/// Every session record in the state dir, skipping (and reporting) unreadable ones.
pub fn load_all(state: &Path) -> Vec<(PathBuf, Result<SessionRecord, String>)> {
    let Ok(entries) = std::fs::read_dir(state.join("sessions")) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| {
            let path = e.path();
            let record = read_record(&path);
            (path, record)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("output.log")
}

fn old_log_path(dir: &Path) -> PathBuf {
    dir.join("output.log.1")
}

fn screen_path(dir: &Path) -> PathBuf {
    dir.join("screen.txt")
}

/// The saved history lines (oldest first, the newest [`MAX_OUTPUT_READ`] bytes of them) and
/// the last screen. Blocking: call it from a blocking thread.
pub fn read_output(dir: &Path) -> (Vec<String>, Vec<String>) {
    let (newer, whole) = read_tail(&log_path(dir), MAX_OUTPUT_READ).unwrap_or((Vec::new(), true));
    let (mut bytes, mut cut) = (newer, !whole);
    let room = MAX_OUTPUT_READ - bytes.len() as u64;
    if !cut && room > 0 {
        let (mut older, whole) = read_tail(&old_log_path(dir), room).unwrap_or((Vec::new(), true));
        older.extend_from_slice(&bytes);
        bytes = older;
        cut = !whole;
    }
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if cut {
        // The read started mid-line: drop the partial first line.
        let start = text.find('\n').map_or(text.len(), |i| i + 1);
        text.drain(..start);
    }
    let history = text.lines().map(str::to_string).collect();
    let screen = read_tail(&screen_path(dir), MAX_SCREEN_READ)
        .map(|(b, _)| {
            String::from_utf8_lossy(&b)
                .lines()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    (history, screen)
}

/// Modification time (unix ms) of the newest file of a session: when it was last seen.
pub fn last_written(dir: &Path) -> u64 {
    [dir.join(RECORD_FILE), log_path(dir), screen_path(dir)]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok()?.modified().ok())
        .filter_map(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis() as u64)
        .max()
        .unwrap_or(0)
}

/// Appends history lines to a session's output log and keeps its last screen. The log has two
/// generations of at most half the limit each, so the oldest output goes first and the total
/// stays under the limit.
pub struct OutputLog {
    dir: PathBuf,
    file: Option<std::fs::File>,
    bytes: u64,
    limit: u64,
    pending: Vec<u8>,
}

impl OutputLog {
    pub fn open(dir: &Path, limit: u64) -> std::io::Result<OutputLog> {
        std::fs::create_dir_all(dir)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(log_path(dir))?;
        let bytes = file.metadata()?.len();
        Ok(OutputLog {
            dir: dir.to_path_buf(),
            file: Some(file),
            bytes,
            limit: limit.max(4096),
            pending: Vec::new(),
        })
    }

    /// Queues lines already ended by '\n'; nothing touches the disk until
    /// [`OutputLog::flush`].
    pub fn push_lines(&mut self, lines: &str) {
        self.pending.extend_from_slice(lines.as_bytes());
    }

    /// Writes queued lines (rotating when the current generation is full) and the screen.
    pub fn flush(&mut self, screen: Option<&[String]>) -> std::io::Result<()> {
        let pending = std::mem::take(&mut self.pending);
        self.write_lines(&pending, screen)
    }

    /// Writes `lines` (each ended by '\n') and the screen, without queueing a copy.
    pub fn write_lines(
        &mut self,
        pending: &[u8],
        screen: Option<&[String]>,
    ) -> std::io::Result<()> {
        if !pending.is_empty() {
            let half = self.limit / 2;
            if self.bytes + pending.len() as u64 > half && self.bytes > 0 {
                self.rotate()?;
            }
            // A single burst larger than a generation keeps only its newest part.
            let keep = if pending.len() as u64 > half {
                let start = pending.len() - half as usize;
                let start = pending[start..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(start, |p| start + p + 1);
                &pending[start..]
            } else {
                pending
            };
            if let Some(file) = self.file.as_mut() {
                file.write_all(keep)?;
                self.bytes += keep.len() as u64;
            }
        }
        if let Some(screen) = screen {
            let mut text = screen.join("\n");
            text.push('\n');
            write_atomic(&screen_path(&self.dir), text.as_bytes(), false)?;
        }
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file = None;
        std::fs::rename(log_path(&self.dir), old_log_path(&self.dir))?;
        self.file = Some(
            std::fs::OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(log_path(&self.dir))?,
        );
        self.bytes = 0;
        Ok(())
    }
}

/// Resume commands for well-known agents, from each tool's documentation:
/// `claude --continue` (most recent conversation in this directory), `codex resume --last`,
/// `aider --restore-chat-history`, `gemini --resume` (latest session).
pub fn preset_resume_command(command: &[String]) -> Option<Vec<String>> {
    let program = command.first()?;
    let base = Path::new(program).file_name()?.to_str()?;
    let with = |extra: &[&str]| {
        let mut argv = vec![program.clone()];
        argv.extend(extra.iter().map(|s| s.to_string()));
        Some(argv)
    };
    // The original arguments (model, permissions, ...) stay; the resume flag goes last.
    let keep = |flag: &str| {
        let mut argv = command.to_vec();
        if !argv.iter().any(|a| a == flag) {
            argv.push(flag.into());
        }
        Some(argv)
    };
    match base {
        "claude" => keep("--continue"),
        "codex" => with(&["resume", "--last"]),
        "gemini" => keep("--resume"),
        "aider" => keep("--restore-chat-history"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_stays_under_its_limit_and_keeps_the_newest_lines() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = OutputLog::open(dir.path(), 64 * 1024).unwrap();
        for i in 0..20_000 {
            log.push_lines(&format!("line {i}\n"));
            if i % 100 == 0 {
                log.flush(None).unwrap();
            }
        }
        log.flush(Some(&["screen".to_string()])).unwrap();
        let total: u64 = ["output.log", "output.log.1"]
            .iter()
            .map(|f| {
                std::fs::metadata(dir.path().join(f))
                    .map(|m| m.len())
                    .unwrap_or(0)
            })
            .sum();
        assert!(total <= 64 * 1024, "{total}");
        let (history, screen) = read_output(dir.path());
        assert_eq!(history.last().unwrap(), "line 19999");
        assert_eq!(screen, vec!["screen"]);
    }

    #[test]
    fn presets() {
        let p = |c: &[&str]| {
            preset_resume_command(&c.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(
            p(&["/usr/bin/claude"]).unwrap(),
            vec!["/usr/bin/claude", "--continue"]
        );
        assert_eq!(
            p(&["codex", "--model", "x"]).unwrap(),
            vec!["codex", "resume", "--last"]
        );
        assert_eq!(
            p(&["aider", "--4o"]).unwrap(),
            vec!["aider", "--4o", "--restore-chat-history"]
        );
        assert_eq!(
            p(&["claude", "--model", "opus"]).unwrap(),
            vec!["claude", "--model", "opus", "--continue"]
        );
        assert!(p(&["bash"]).is_none());
    }
}
