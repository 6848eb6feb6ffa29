//! The output journal: a session's raw output that its saved screen does not cover yet, so a
//! server killed between two saves loses none of what it read. A thread of its own appends
//! each chunk as it is read (never behind the disk writer's fsyncs); once the disk writer has
//! written a screen, the journal drops what that screen covers. A server adopting the session
//! replays the journal over the saved screen.
//!
//! Positions: every byte of a session's output has an offset (counted by the session); a
//! saved screen covers the output before its mark. The file holds output from `base` on.
//!
//! Bounds: at most [`JOURNAL_LIMIT`] bytes on disk per session and [`JOURNAL_QUEUE`] bytes
//! queued per session; output past either is not journaled (a crash then can lose it).

use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes a session's journal may hold on disk.
pub const JOURNAL_LIMIT: u64 = 4 << 20;
/// Bytes of one session's output waiting to be journaled.
pub const JOURNAL_QUEUE: usize = 1 << 20;

pub fn path(dir: &Path) -> PathBuf {
    dir.join("journal.raw")
}

enum Job {
    Append {
        dir: PathBuf,
        at: u64,
        bytes: bytes::Bytes,
        fresh: bool,
        queued: Arc<AtomicUsize>,
    },
    Covered {
        dir: PathBuf,
        mark: u64,
    },
    Forget(PathBuf),
}

/// A handle to the journal thread; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Journal {
    pub fn start() -> std::io::Result<Journal> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || {
                let mut journals = Journals::default();
                while let Ok(job) = rx.recv() {
                    journals.run(job);
                }
            })?;
        Ok(Journal { jobs: tx })
    }

    /// Journals output at offset `at`, unless [`JOURNAL_QUEUE`] bytes of it wait already;
    /// `fresh` (a newly started program) first empties what an earlier run left.
    pub fn append(
        &self,
        dir: &Path,
        at: u64,
        bytes: bytes::Bytes,
        queued: &Arc<AtomicUsize>,
        fresh: bool,
    ) -> bool {
        let len = bytes.len();
        if queued.load(Ordering::Acquire) + len > JOURNAL_QUEUE {
            return false;
        }
        queued.fetch_add(len, Ordering::AcqRel);
        let job = Job::Append {
            dir: dir.to_path_buf(),
            at,
            bytes,
            fresh,
            queued: queued.clone(),
        };
        if self.jobs.send(job).is_err() {
            queued.fetch_sub(len, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// A screen covering the output before `mark` was written.
    pub fn covered(&self, dir: &Path, mark: u64) {
        let _ = self.jobs.send(Job::Covered {
            dir: dir.to_path_buf(),
            mark,
        });
    }

    /// The session's dir is removed or moved: close its journal.
    pub fn forget(&self, dir: &Path) {
        let _ = self.jobs.send(Job::Forget(dir.to_path_buf()));
    }
}

struct Open {
    file: std::fs::File,
    /// Offset of the file's first byte in the session's output.
    base: u64,
    len: u64,
}

/// The thread's open journals, by session dir. Failures drop output from the journal: it only
/// narrows what a crash can lose, it never holds the only copy of anything.
#[derive(Default)]
struct Journals {
    open: HashMap<PathBuf, Open>,
}

fn open_append(dir: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o600)
        .open(path(dir))
}

impl Journals {
    fn run(&mut self, job: Job) {
        match job {
            Job::Append {
                dir,
                at,
                bytes,
                fresh,
                queued,
            } => {
                self.append(&dir, at, &bytes, fresh);
                queued.fetch_sub(bytes.len(), Ordering::AcqRel);
            }
            Job::Covered { dir, mark } => self.covered(&dir, mark),
            Job::Forget(dir) => {
                self.open.remove(&dir);
            }
        }
    }

    fn append(&mut self, dir: &Path, at: u64, bytes: &[u8], fresh: bool) {
        if fresh {
            self.open.remove(dir);
        }
        if !self.open.contains_key(dir) {
            let Ok(file) = open_append(dir) else { return };
            if fresh {
                let _ = file.set_len(0);
            }
            let len = file.metadata().map_or(0, |m| m.len());
            let base = at.saturating_sub(len);
            self.open
                .insert(dir.to_path_buf(), Open { file, base, len });
        }
        let Some(open) = self.open.get_mut(dir) else {
            return;
        };
        if open.len + bytes.len() as u64 > JOURNAL_LIMIT {
            return;
        }
        // Output was left out before this (a bound): keep the offsets of what follows right.
        open.base = at.saturating_sub(open.len);
        if open.file.write_all(bytes).is_ok() {
            open.len += bytes.len() as u64;
        }
    }

    /// Drops the output before `mark`, keeping what came after it (read since that screen).
    fn covered(&mut self, dir: &Path, mark: u64) {
        let Some(open) = self.open.get_mut(dir) else {
            return;
        };
        let cut = mark.saturating_sub(open.base);
        if cut == 0 {
            return;
        }
        if cut >= open.len {
            if open.file.set_len(0).is_ok() {
                open.base = mark;
                open.len = 0;
            }
            return;
        }
        // The rest moves to the front through a new file, so a crash leaves one or the other.
        let mut rest = Vec::new();
        let read = open
            .file
            .seek(std::io::SeekFrom::Start(cut))
            .and_then(|_| (&open.file).take(open.len - cut).read_to_end(&mut rest));
        if read.is_err() || crate::state::write_atomic(&path(dir), &rest, false).is_err() {
            return;
        }
        if let Ok(file) = open_append(dir) {
            *open = Open {
                file,
                base: mark,
                len: rest.len() as u64,
            };
        }
    }
}

/// A session's journal, for adoption (at most [`JOURNAL_LIMIT`] bytes). Blocking.
pub fn read(dir: &Path) -> Vec<u8> {
    let Ok(file) = std::fs::File::open(path(dir)) else {
        return Vec::new();
    };
    let mut bytes = Vec::new();
    let _ = file.take(JOURNAL_LIMIT).read_to_end(&mut bytes);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_stops_at_its_bound_and_drops_what_a_screen_covers() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let mut journals = Journals::default();
        let chunk = vec![b'x'; 1 << 20];
        for i in 0..4 {
            journals.append(dir, i << 20, &chunk, i == 0);
        }
        assert_eq!(read(dir).len() as u64, JOURNAL_LIMIT);
        journals.append(dir, 4 << 20, b"over", false);
        assert_eq!(
            read(dir).len() as u64,
            JOURNAL_LIMIT,
            "past the bound: left out"
        );
        journals.covered(dir, (4 << 20) + 4);
        assert!(read(dir).is_empty());
        journals.append(dir, (4 << 20) + 4, b"abc", false);
        journals.append(dir, (4 << 20) + 7, b"def", false);
        // A screen covering "abc" keeps "def".
        journals.covered(dir, (4 << 20) + 7);
        assert_eq!(read(dir), b"def");
        journals.append(dir, (4 << 20) + 10, b"g", false);
        assert_eq!(read(dir), b"defg");
        journals.append(dir, 0, b"fresh", true);
        assert_eq!(read(dir), b"fresh");
    }
}
