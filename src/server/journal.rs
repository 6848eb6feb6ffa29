//! The output journal: a session's raw output that its saved screen does not cover yet, so a
//! server killed between two saves loses none of what it read. A thread of its own appends
//! each chunk as it is read (never behind the disk writer's fsyncs); once the disk writer has
//! written a screen, the journal drops what that screen covers. A server adopting the session
//! replays the journal over the saved screen.
//!
//! Positions: every byte of a session's output has an offset (counted by the session); a
//! saved screen covers the output before its mark. The file holds output from `base` on, and
//! says so in its header ([`MAGIC`] and `base`), so an adopting server skips exactly what the
//! saved screen covers even when the dead server's last "covered" never reached the file.
//!
//! Bounds: at most [`JOURNAL_LIMIT`] bytes on disk per session and [`JOURNAL_QUEUE`] bytes
//! queued per session; output past either is not journaled (a crash then can lose it).

use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
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

/// The header's first bytes; the offset of the file's first output byte follows (u64, LE).
/// A journal without it (written by an older linger) starts where its screen ends.
const MAGIC: &[u8; 8] = b"LGJRNL1\n";
const HEADER: u64 = crate::state::TAG_LEN as u64;

fn header(base: u64) -> [u8; crate::state::TAG_LEN] {
    crate::state::tag(MAGIC, base)
}

/// What an earlier server journaled: the output from `base` on (`None`: a journal without a
/// header, which starts where its saved screen ends).
#[derive(Default)]
pub struct Journaled {
    pub base: Option<u64>,
    pub bytes: Vec<u8>,
}

impl Journaled {
    /// The output after `mark` (a saved screen's), as far as the journal has it.
    pub fn after(&self, mark: u64) -> &[u8] {
        let skip = self.base.map_or(0, |base| mark.saturating_sub(base));
        self.bytes.get(skip as usize..).unwrap_or_default()
    }

    /// The offset just past the journaled output, where this server's output continues.
    pub fn end(&self) -> u64 {
        self.base.unwrap_or(0) + self.bytes.len() as u64
    }
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
    /// Closes a journal; answers once every job before it is done.
    Forget(PathBuf, std::sync::mpsc::Sender<()>),
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

    /// The session's dir is about to be removed or moved: closes its journal, and returns
    /// once the journal thread is done with it (nothing it does later can put a file back
    /// into the dir). Blocking: for the disk writer's thread.
    pub fn forget(&self, dir: &Path) {
        let (done, wait) = std::sync::mpsc::channel();
        if self.jobs.send(Job::Forget(dir.to_path_buf(), done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

struct Open {
    file: std::fs::File,
    /// Offset of the file's first output byte in the session's output.
    base: u64,
    /// Output bytes in the file (after the header).
    len: u64,
}

/// The thread's open journals, by session dir. Failures drop output from the journal: it only
/// narrows what a crash can lose, it never holds the only copy of anything.
#[derive(Default)]
struct Journals {
    open: HashMap<PathBuf, Open>,
}

fn open_rw(dir: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .read(true)
        .mode(0o600)
        .open(path(dir))
}

/// Opens a session's journal to go on at output offset `at`: one with our header keeps its
/// output; anything else (empty, `fresh`, or an older linger's) starts over from `at`.
fn open_at(dir: &Path, at: u64, fresh: bool) -> std::io::Result<Open> {
    let file = open_rw(dir)?;
    let size = file.metadata()?.len();
    let mut head = [0u8; HEADER as usize];
    let base = (!fresh && size >= HEADER && file.read_exact_at(&mut head, 0).is_ok())
        .then(|| crate::state::untag(MAGIC, &head))
        .flatten();
    if let Some(base) = base
        && base + (size - HEADER) == at
    {
        return Ok(Open {
            file,
            base,
            len: size - HEADER,
        });
    }
    file.set_len(0)?;
    file.write_all_at(&header(at), 0)?;
    Ok(Open {
        file,
        base: at,
        len: 0,
    })
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
            Job::Forget(dir, done) => {
                self.open.remove(&dir);
                let _ = done.send(());
            }
        }
    }

    fn append(&mut self, dir: &Path, at: u64, bytes: &[u8], fresh: bool) {
        if fresh {
            self.open.remove(dir);
        }
        if !self.open.contains_key(dir) {
            let Ok(open) = open_at(dir, at, fresh) else {
                return;
            };
            self.open.insert(dir.to_path_buf(), open);
        }
        let Some(open) = self.open.get_mut(dir) else {
            return;
        };
        if open.len == 0 && open.base != at {
            // Nothing kept: go on from here.
            if open.file.write_all_at(&header(at), 0).is_err() {
                return;
            }
            open.base = at;
        }
        // Past the bound, or after output that was left out: nothing more until a saved
        // screen covers what is kept (one file holds one unbroken run of output).
        if open.base + open.len != at || open.len + bytes.len() as u64 > JOURNAL_LIMIT {
            return;
        }
        if open.file.write_all_at(bytes, HEADER + open.len).is_ok() {
            open.len += bytes.len() as u64;
        }
    }

    /// Drops the output before `mark`, keeping what came after it (read since that screen).
    fn covered(&mut self, dir: &Path, mark: u64) {
        let Some(open) = self.open.get_mut(dir) else {
            return;
        };
        let cut = mark.saturating_sub(open.base).min(open.len);
        if cut == 0 {
            return;
        }
        let base = open.base + cut;
        if cut == open.len {
            // All covered: empty it in place.
            if open.file.set_len(HEADER).is_ok() && open.file.write_all_at(&header(base), 0).is_ok()
            {
                (open.base, open.len) = (base, 0);
            }
            return;
        }
        // The rest moves to the front through a new file, so a crash leaves one or the other.
        let mut rest = vec![0u8; (open.len - cut) as usize];
        if open.file.read_exact_at(&mut rest, HEADER + cut).is_err() {
            return;
        }
        let mut whole = header(base).to_vec();
        whole.extend_from_slice(&rest);
        if crate::state::write_atomic(&path(dir), &whole, false).is_err() {
            return;
        }
        if let Ok(file) = open_rw(dir) {
            *open = Open {
                file,
                base,
                len: rest.len() as u64,
            };
        }
    }
}

/// A session's journal, for adoption (at most [`JOURNAL_LIMIT`] bytes of output). Blocking.
pub fn read(dir: &Path) -> Journaled {
    let Ok(file) = std::fs::File::open(path(dir)) else {
        return Journaled::default();
    };
    let mut bytes = Vec::new();
    let _ = file.take(HEADER + JOURNAL_LIMIT).read_to_end(&mut bytes);
    if let Some(base) = crate::state::untag(MAGIC, &bytes) {
        bytes.drain(..HEADER as usize);
        return Journaled {
            base: Some(base),
            bytes,
        };
    }
    bytes.truncate(JOURNAL_LIMIT as usize);
    Journaled { base: None, bytes }
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
        assert_eq!(read(dir).bytes.len() as u64, JOURNAL_LIMIT);
        journals.append(dir, 4 << 20, b"over", false);
        journals.append(dir, (4 << 20) + 4, b"more", false);
        assert_eq!(
            read(dir).bytes.len() as u64,
            JOURNAL_LIMIT,
            "past the bound: left out"
        );
        journals.covered(dir, (4 << 20) + 8);
        assert!(read(dir).bytes.is_empty());
        journals.append(dir, (4 << 20) + 8, b"abc", false);
        journals.append(dir, (4 << 20) + 11, b"def", false);
        // A screen covering "abc" keeps "def", and the file says where it starts.
        journals.covered(dir, (4 << 20) + 11);
        let kept = read(dir);
        assert_eq!(
            (kept.base, &kept.bytes[..]),
            (Some((4 << 20) + 11), &b"def"[..])
        );
        journals.append(dir, (4 << 20) + 14, b"g", false);
        assert_eq!(read(dir).bytes, b"defg");
        assert_eq!(read(dir).end(), (4 << 20) + 15);
        journals.append(dir, 0, b"fresh", true);
        assert_eq!(read(dir).bytes, b"fresh");
    }

    #[test]
    fn an_adopter_skips_what_the_saved_screen_covers_even_if_covered_never_ran() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let mut journals = Journals::default();
        journals.append(dir, 100, b"n6\r\n", true);
        journals.append(dir, 104, b"n7\r\n", false);
        // The dead server saved a screen at 104 but its journal thread never dropped "n6".
        let journaled = read(dir);
        assert_eq!(journaled.after(104), b"n7\r\n");
        assert_eq!(journaled.after(90), b"n6\r\nn7\r\n");
        assert_eq!(journaled.after(200), b"");
        // An adopter goes on where the journal ends, in the same file.
        let mut next = Journals::default();
        next.append(dir, journaled.end(), b"n8\r\n", false);
        assert_eq!(read(dir).after(104), b"n7\r\nn8\r\n");
    }

    #[test]
    fn a_journal_without_a_header_is_taken_whole_then_started_over() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        std::fs::write(path(dir), b"older linger").expect("write");
        let journaled = read(dir);
        assert_eq!(
            (journaled.base, journaled.after(500)),
            (None, &b"older linger"[..])
        );
        let mut journals = Journals::default();
        journals.append(dir, journaled.end(), b"new", false);
        assert_eq!(read(dir).base, Some(12));
        assert_eq!(read(dir).bytes, b"new");
    }
}
