//! A session's record and output log on disk: changes collected here and handed to the state
//! dir's writer thread in batches, at most every half second; failures are reported (and
//! retried by the writer) instead of fatal.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::model::Model;
use crate::protocol::Response;
use crate::server::disk::{Batch, Disk, MAX_UNSAVED, SaveStatus, keep_newest};
use crate::state::SessionRecord;

/// How often, at most, output reaches the disk; a SIGKILLed server loses at most this much.
const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// Where a session is saved.
struct Target {
    disk: Disk,
    dir: PathBuf,
    status: Arc<SaveStatus>,
    /// Output bytes queued for the journal (bounded by `journal::JOURNAL_QUEUE`).
    journal_queued: Arc<std::sync::atomic::AtomicUsize>,
}

pub struct Persist {
    name: String,
    log_limit: u64,
    target: Option<Target>,
    /// History lines not yet handed to the writer; at most [`MAX_UNSAVED`] bytes (oldest whole
    /// lines dropped first) while the writer still works on the previous batch.
    lines: String,
    record: Option<SessionRecord>,
    screen_dirty: bool,
    pub flush_at: Option<Instant>,
    /// The next journal write empties what an earlier run left (not for an adopted program,
    /// whose journal was just replayed and is not yet covered by a saved screen).
    journal_fresh: bool,
    /// Offset of the next output byte (see journal.rs).
    journal_at: u64,
    /// Output read this turn with its offsets, not yet sent to the journal: the one or two
    /// pieces one read batch makes (see frames.rs), or a flood turn's batches (flood.rs).
    unjournaled: Vec<(u64, bytes::Bytes)>,
}

impl Persist {
    /// Starts saving `record` into `dir` through `disk`; `None` when there is no state dir.
    pub fn new(target: Option<(PathBuf, Disk)>, record: &SessionRecord) -> Persist {
        Persist {
            name: record.name.clone(),
            log_limit: record.log_limit,
            target: target.map(|(dir, disk)| Target {
                disk,
                dir,
                status: Arc::default(),
                journal_queued: Arc::default(),
            }),
            lines: String::new(),
            record: Some(record.clone()),
            screen_dirty: false,
            flush_at: Some(Instant::now()),
            journal_fresh: true,
            journal_at: 0,
            unjournaled: Vec::new(),
        }
    }

    /// Keeps the journal an earlier server left (see `journal_fresh`): its `len` bytes come
    /// before this server's output.
    pub fn keep_journal(&mut self, len: u64) {
        self.journal_fresh = false;
        self.journal_at = len;
    }

    /// Takes output just read for the journal. Its offset is counted now, so a screen saved
    /// before it is sent still says exactly which output it covers (see journal.rs).
    pub fn journal(&mut self, chunk: &bytes::Bytes) {
        if self.target.is_none() {
            return;
        }
        self.unjournaled.push((self.journal_at, chunk.clone()));
        self.journal_at += chunk.len() as u64;
    }

    /// Hands the output taken this turn to the journal's thread, so a killed server loses none
    /// of it. The session calls this once its clients were sent that output: waking the
    /// thread takes a core on a small machine, and the echo of a key should not wait for it.
    pub fn send_journal(&mut self) {
        let Some(target) = &self.target else { return };
        let journal = &target.disk.journal;
        for (at, chunk) in self.unjournaled.drain(..) {
            if journal.append(
                &target.dir,
                at,
                chunk,
                &target.journal_queued,
                self.journal_fresh,
            ) {
                self.journal_fresh = false;
            }
        }
    }

    pub fn saves(&self) -> bool {
        self.target.is_some()
    }

    /// Why the session is not (fully) on disk right now, if it is not.
    pub fn error(&self) -> Option<String> {
        match &self.target {
            Some(target) => target.status.error(),
            None => Some(crate::state::unsaved_reason()),
        }
    }

    pub fn mark_dirty(&mut self) {
        if self.target.is_some() {
            self.screen_dirty = true;
            self.flush_at
                .get_or_insert_with(|| Instant::now() + FLUSH_INTERVAL);
        }
    }

    /// Saves the record with the next batch, which goes out now.
    pub fn write_record(&mut self, record: &SessionRecord) {
        if self.target.is_some() {
            self.record = Some(record.clone());
            self.flush_at = Some(Instant::now());
        }
    }

    /// Hands what changed to the writer. Unless `last`, waits (keeping the changes, bounded)
    /// while the previous batch is still queued.
    pub fn flush(&mut self, model: &mut Model, last: bool) {
        self.flush_at = None;
        let Some(target) = &self.target else { return };
        let fresh = model.take_fresh_lines();
        if self.lines.is_empty() {
            self.lines = fresh;
        } else {
            self.lines.push_str(&fresh);
        }
        keep_newest(&mut self.lines, MAX_UNSAVED);
        if target.status.in_flight() && !last {
            self.flush_at = Some(Instant::now() + FLUSH_INTERVAL);
            return;
        }
        let screen = self.screen_dirty.then(|| model.saved_screen_lines());
        let redraw = self.screen_dirty.then(|| model.replay(false));
        self.screen_dirty = false;
        target.disk.save(Batch {
            name: self.name.clone(),
            dir: target.dir.clone(),
            log_limit: self.log_limit,
            record: self.record.take(),
            lines: std::mem::take(&mut self.lines),
            screen,
            redraw,
            journal_mark: self.journal_at,
            status: target.status.clone(),
        });
    }

    /// How the writer is doing with this session; `None` when it is not saved at all.
    pub fn status(&self) -> Option<Arc<SaveStatus>> {
        self.target.as_ref().map(|t| t.status.clone())
    }

    /// Resolves once everything handed over so far was written (or failed).
    pub fn written(&self) -> Option<oneshot::Receiver<()>> {
        self.target.as_ref().map(|t| t.disk.barrier())
    }

    /// Moves the session's files to `dir` (after `rename`); `None` when it is not saved.
    pub fn move_to(&mut self, dir: PathBuf) -> Option<oneshot::Receiver<Result<(), String>>> {
        let target = self.target.as_mut()?;
        let from = std::mem::replace(&mut target.dir, dir.clone());
        Some(target.disk.rename(from, dir))
    }

    /// Where the session is saved, if it is.
    pub fn dir(&self) -> Option<&std::path::Path> {
        self.target.as_ref().map(|t| t.dir.as_path())
    }

    pub fn set_name(&mut self, name: &str) {
        self.name = name.to_string();
    }

    /// Forgets the session on disk (after `kill`); an error tells `kill` it will be back.
    pub async fn remove(&mut self) -> Response {
        let Some(target) = self.target.take() else {
            return Response::Ok;
        };
        match target.disk.remove(&self.name, target.dir).await {
            Ok(Err(e)) => Response::Error(e),
            _ => Response::Ok,
        }
    }
}
