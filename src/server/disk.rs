//! The state dir's writer: one thread does every running session's disk work (records, output
//! logs, last screens, deletes) in order, retrying after failures, so that no async worker ever
//! waits for a disk or an fsync and no lock is held across one.
//!
//! Bounds: each session has at most one batch in the queue (the session keeps collecting into
//! its own bounded buffer while one is in flight); what could not be written is kept per session
//! up to [`MAX_UNSAVED`] bytes of output (oldest lines dropped first) plus the latest record and
//! screen, and retried every [`RETRY`] while anything is outstanding (no wake-ups otherwise).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::log;
use crate::state::{OutputLog, SessionRecord};

/// Output kept per session while it cannot be written.
pub const MAX_UNSAVED: usize = 1 << 20;
/// How often writes that failed are tried again.
const RETRY: Duration = Duration::from_secs(2);

/// What a session's last save attempt came to, and whether a batch is queued.
#[derive(Default)]
pub struct SaveStatus {
    error: Mutex<Option<String>>,
    in_flight: AtomicBool,
}

impl SaveStatus {
    /// Why the session's state is not on disk right now, if it is not.
    pub fn error(&self) -> Option<String> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set_error(&self, error: Option<String>) {
        *self.error.lock().unwrap_or_else(|p| p.into_inner()) = error;
    }

    pub fn in_flight(&self) -> bool {
        self.in_flight.load(Ordering::Acquire)
    }
}

/// One session's changes since its last batch.
pub struct Batch {
    pub name: String,
    pub dir: PathBuf,
    pub log_limit: u64,
    pub record: Option<SessionRecord>,
    /// History lines, each ended by '\n'.
    pub lines: String,
    pub screen: Option<Vec<String>>,
    /// The bytes that redraw the screen exactly, saved with it (see screen_state.rs).
    pub redraw: Option<Vec<u8>>,
    /// The output offset the screen covers up to (see journal.rs).
    pub journal_mark: u64,
    pub status: Arc<SaveStatus>,
}

enum Job {
    Save(Box<Batch>),
    /// Forget a session's files (after `kill`).
    Remove {
        name: String,
        dir: PathBuf,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Answers once everything queued before it was attempted.
    Barrier(oneshot::Sender<()>),
    /// Move a session's directory (after `rename`), writing what is outstanding first.
    Rename {
        from: PathBuf,
        to: PathBuf,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// A handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Disk {
    jobs: std::sync::mpsc::Sender<Job>,
    pub journal: crate::server::journal::Journal,
}

/// What the writer keeps per session: open log, and whatever could not be written yet.
struct Files {
    name: String,
    log: Option<OutputLog>,
    log_limit: u64,
    record: Option<SessionRecord>,
    lines: String,
    screen: Option<Vec<String>>,
    redraw: Option<Vec<u8>>,
    journal_mark: u64,
    status: Arc<SaveStatus>,
}

impl Disk {
    /// Starts the writer thread. It ends once every handle is dropped and the queue is empty;
    /// [`Disk::barrier`] tells when what was queued is done.
    pub fn start() -> std::io::Result<Disk> {
        let (tx, rx) = std::sync::mpsc::channel();
        let journal = crate::server::journal::Journal::start()?;
        let covered = journal.clone();
        std::thread::Builder::new()
            .name("disk".into())
            .spawn(move || run(rx, covered))?;
        Ok(Disk { jobs: tx, journal })
    }

    /// Queues a batch; the session must not queue another while `status.in_flight()`.
    pub fn save(&self, batch: Batch) {
        batch.status.in_flight.store(true, Ordering::Release);
        let status = batch.status.clone();
        if self.jobs.send(Job::Save(Box::new(batch))).is_err() {
            status.in_flight.store(false, Ordering::Release);
        }
    }

    pub fn remove(&self, name: &str, dir: PathBuf) -> oneshot::Receiver<Result<(), String>> {
        let (reply, rx) = oneshot::channel();
        let _ = self.jobs.send(Job::Remove {
            name: name.to_string(),
            dir,
            reply,
        });
        rx
    }

    /// Moves a session's files from `from` to `to`, in order with its other writes.
    pub fn rename(&self, from: PathBuf, to: PathBuf) -> oneshot::Receiver<Result<(), String>> {
        let (reply, rx) = oneshot::channel();
        let _ = self.jobs.send(Job::Rename { from, to, reply });
        rx
    }

    /// Resolves once everything queued so far was attempted.
    pub fn barrier(&self) -> oneshot::Receiver<()> {
        let (reply, rx) = oneshot::channel();
        let _ = self.jobs.send(Job::Barrier(reply));
        rx
    }
}

fn run(rx: std::sync::mpsc::Receiver<Job>, journal: crate::server::journal::Journal) {
    let mut sessions: HashMap<PathBuf, Files> = HashMap::new();
    loop {
        let outstanding = sessions.values().any(Files::outstanding);
        let job = if outstanding {
            match rx.recv_timeout(RETRY) {
                Ok(job) => Some(job),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => None,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
            }
        } else {
            match rx.recv() {
                Ok(job) => Some(job),
                Err(_) => return,
            }
        };
        match job {
            Some(Job::Save(batch)) => {
                let status = batch.status.clone();
                sessions
                    .entry(batch.dir.clone())
                    .or_insert_with(|| Files::new(&batch))
                    .merge(*batch);
                // The session may send its next batch; this one is merged in already.
                status.in_flight.store(false, Ordering::Release);
            }
            Some(Job::Remove { name, dir, reply }) => {
                sessions.remove(&dir);
                journal.forget(&dir);
                let _ = reply.send(crate::state::remove_session_dir(&name, &dir));
            }
            Some(Job::Barrier(reply)) => {
                let _ = reply.send(());
            }
            Some(Job::Rename { from, to, reply }) => {
                journal.forget(&from);
                let _ = reply.send(move_dir(&mut sessions, &from, &to));
            }
            None => {}
        }
        for (dir, files) in sessions.iter_mut() {
            if files.outstanding()
                && let Some(mark) = files.write(dir)
            {
                journal.covered(dir, mark);
            }
        }
    }
}

impl Files {
    fn new(batch: &Batch) -> Files {
        Files {
            name: batch.name.clone(),
            log: None,
            log_limit: batch.log_limit,
            record: None,
            lines: String::new(),
            screen: None,
            redraw: None,
            journal_mark: 0,
            status: batch.status.clone(),
        }
    }

    fn merge(&mut self, batch: Batch) {
        if batch.record.is_some() {
            self.record = batch.record;
        }
        if batch.screen.is_some() {
            self.screen = batch.screen;
            self.redraw = batch.redraw;
            self.journal_mark = batch.journal_mark;
        }
        self.lines.push_str(&batch.lines);
        keep_newest(&mut self.lines, MAX_UNSAVED);
        self.log_limit = batch.log_limit;
        self.status = batch.status;
    }

    fn outstanding(&self) -> bool {
        self.record.is_some()
            || !self.lines.is_empty()
            || self.screen.is_some()
            || self.redraw.is_some()
    }

    /// Writes what is outstanding: the record first (it says what the rest belongs to), then
    /// the lines, then the screen. Keeps whatever failed for the next attempt. Returns the
    /// journal mark of the screen it wrote, if it wrote one.
    fn write(&mut self, dir: &std::path::Path) -> Option<u64> {
        let had_screen = self.screen.is_some() || self.redraw.is_some();
        let result = self.try_write(dir);
        let wrote_screen = (had_screen && result.is_ok()).then_some(self.journal_mark);
        let error = result.err().map(|e| {
            format!(
                "cannot save state in {}: {e} (retrying every {}s)",
                dir.display(),
                RETRY.as_secs()
            )
        });
        match (&error, self.status.error()) {
            (Some(e), None) => log::warn(&format!(
                "session {}: {e}; keeping it in memory meanwhile",
                self.name
            )),
            (None, Some(_)) => log::info(&format!("session {}: saving works again", self.name)),
            _ => {}
        }
        self.status.set_error(error);
        wrote_screen
    }

    fn try_write(&mut self, dir: &std::path::Path) -> std::io::Result<()> {
        if let Some(record) = &self.record {
            crate::state::write_record(dir, record)?;
            self.record = None;
        }
        // The log is created by the first output it keeps: a session that has printed
        // nothing costs its directory and record only (an inode less to allocate per `new`,
        // and no descriptor held open here for a quiet session).
        let has_output = !self.lines.is_empty() || self.screen.is_some();
        if self.log.is_none() && has_output {
            self.log = Some(OutputLog::open(dir, self.log_limit)?);
        }
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        match log.write_lines(self.lines.as_bytes(), self.screen.as_deref()) {
            Ok(()) => {
                self.lines.clear();
                self.screen = None;
            }
            Err(e) => {
                // The lines stay here for the next attempt (a line may then be written twice,
                // never lost); the handle is reopened then.
                self.log = None;
                return Err(e);
            }
        }
        // Last: a crash before it leaves the previous redraw, whose output the journal
        // still holds (it drops output only once this returned).
        if let Some(redraw) = &self.redraw {
            crate::server::screen_state::write(dir, self.journal_mark, redraw)?;
            self.redraw = None;
        }
        Ok(())
    }
}

/// Renames a session's directory, carrying what is not written yet over to the new path.
fn move_dir(
    sessions: &mut HashMap<PathBuf, Files>,
    from: &std::path::Path,
    to: &std::path::Path,
) -> Result<(), String> {
    if let Some(files) = sessions.get_mut(from) {
        let _ = files.write(from);
    }
    if to.exists() {
        return Err(format!(
            "{} already exists on disk; remove it or pick another name",
            to.display()
        ));
    }
    if from.exists() {
        std::fs::rename(from, to).map_err(|e| format!("cannot rename {}: {e}", from.display()))?;
    }
    if let Some(mut files) = sessions.remove(from) {
        // The open log points into the old path's inode, which moved; reopen by the new path.
        files.log = None;
        sessions.insert(to.to_path_buf(), files);
    }
    Ok(())
}

/// Drops whole lines from the front until `text` is at most `limit` bytes.
pub fn keep_newest(text: &mut String, limit: usize) {
    if text.len() <= limit {
        return;
    }
    let cut = text.len() - limit;
    let cut = text[cut..].find('\n').map_or(text.len(), |p| cut + p + 1);
    text.drain(..cut);
}

#[cfg(test)]
mod tests {
    use super::keep_newest;

    #[test]
    fn unsaved_output_keeps_the_newest_whole_lines() {
        let mut text = "one\ntwo\nthree\n".to_string();
        keep_newest(&mut text, 8);
        assert_eq!(text, "three\n");
        let mut text = "short\n".to_string();
        keep_newest(&mut text, 100);
        assert_eq!(text, "short\n");
    }
}
