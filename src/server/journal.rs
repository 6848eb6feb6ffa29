//! The output journal: a session's raw output that the saved screen does not cover yet, so a
//! server killed between two saves loses none of what it read. The disk writer appends each
//! chunk as it is read and empties the journal whenever it writes the session's screen; a
//! server adopting the session replays it over the saved screen.
//!
//! Bounds: at most [`JOURNAL_LIMIT`] bytes on disk per session (later chunks are dropped
//! until the next screen is written, which bounds what a crash during a flood can lose to
//! the flood's output past that), and [`JOURNAL_QUEUE`] bytes queued to the writer per
//! session (beyond that chunks are not journaled).

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Bytes a session's journal may hold on disk.
pub const JOURNAL_LIMIT: u64 = 4 << 20;
/// Bytes of one session's output waiting for the writer to journal them.
pub const JOURNAL_QUEUE: usize = 1 << 20;

pub fn path(dir: &Path) -> PathBuf {
    dir.join("journal.raw")
}

/// The writer's open journals, by session dir.
#[derive(Default)]
pub struct Journals {
    open: HashMap<PathBuf, (std::fs::File, u64)>,
}

impl Journals {
    /// Appends a chunk; `fresh` (a newly started program) first empties what an earlier run
    /// left. Failures drop the chunk: the journal only narrows what a crash can lose.
    pub fn append(&mut self, dir: &Path, bytes: &[u8], fresh: bool) {
        if fresh {
            self.open.remove(dir);
        }
        if !self.open.contains_key(dir) {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .truncate(false)
                .mode(0o600)
                .open(path(dir));
            let Ok(file) = file else { return };
            if fresh {
                let _ = file.set_len(0);
            }
            let len = file.metadata().map_or(0, |m| m.len());
            self.open.insert(dir.to_path_buf(), (file, len));
        }
        let Some((file, len)) = self.open.get_mut(dir) else {
            return;
        };
        if *len + bytes.len() as u64 > JOURNAL_LIMIT {
            return;
        }
        if file.write_all(bytes).is_ok() {
            *len += bytes.len() as u64;
        }
    }

    /// The session's screen was written: the journal's output is in it now.
    pub fn clear(&mut self, dir: &Path) {
        if let Some((file, len)) = self.open.get_mut(dir)
            && *len > 0
            && file.set_len(0).is_ok()
        {
            *len = 0;
        }
    }

    /// The session's dir is removed or renamed: close its journal.
    pub fn forget(&mut self, dir: &Path) {
        self.open.remove(dir);
    }
}

/// A session's journal, for adoption (at most [`JOURNAL_LIMIT`] bytes). Blocking.
pub fn read(dir: &Path) -> Vec<u8> {
    use std::io::Read;
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
    fn the_journal_stops_at_its_bound_and_empties_with_a_screen() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        let mut journals = Journals::default();
        let chunk = vec![b'x'; 1 << 20];
        for _ in 0..4 {
            journals.append(dir, &chunk, false);
        }
        assert_eq!(read(dir).len() as u64, JOURNAL_LIMIT);
        journals.append(dir, b"over", false);
        assert_eq!(read(dir).len() as u64, JOURNAL_LIMIT, "past the bound: dropped");
        journals.clear(dir);
        journals.append(dir, b"next", false);
        assert_eq!(read(dir), b"next");
        journals.append(dir, b"fresh", true);
        assert_eq!(read(dir), b"fresh");
    }
}
