//! A session's exact screen, saved for a server that adopts its program: the bytes that redraw
//! it (both screens, cursor, modes, colours, title) and the output offset they cover (see
//! journal.rs), so the adopter goes on exactly where the last server stopped. `screen.txt`
//! stays the readable copy (capture and revive of a session whose program is gone).
//!
//! Bound: a redraw is a few times the screen's cells; one larger than [`MAX_REDRAW`] is not
//! read back (the adopter falls back to `screen.txt`).

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest redraw read back (a 500 × 1000 screen of coloured cells fits).
pub const MAX_REDRAW: u64 = 16 << 20;

const MAGIC: &[u8; 8] = b"LGSCRN1\n";

pub fn path(dir: &Path) -> PathBuf {
    dir.join("redraw.vt")
}

/// Saves `redraw`, which covers the output before `mark`. Blocking (the disk writer's).
pub fn write(dir: &Path, mark: u64, redraw: &[u8]) -> std::io::Result<()> {
    let mut bytes = crate::state::tag(MAGIC, mark).to_vec();
    bytes.extend_from_slice(redraw);
    crate::state::write_atomic(&path(dir), &bytes, false)
}

/// The saved redraw and its mark; `None` when there is none (an older linger saved only
/// `screen.txt`) or it cannot be read. Blocking.
pub fn read(dir: &Path) -> Option<(u64, Vec<u8>)> {
    let file = std::fs::File::open(path(dir)).ok()?;
    let mut bytes = Vec::new();
    let limit = crate::state::TAG_LEN as u64 + MAX_REDRAW;
    file.take(limit + 1).read_to_end(&mut bytes).ok()?;
    let mark = crate::state::untag(MAGIC, &bytes).filter(|_| bytes.len() as u64 <= limit)?;
    bytes.drain(..crate::state::TAG_LEN);
    Some((mark, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redraw_reads_back_with_its_mark_and_garbage_reads_as_none() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        assert!(read(dir).is_none());
        write(dir, 42, b"\x1b[Hhello").expect("write");
        assert_eq!(read(dir), Some((42, b"\x1b[Hhello".to_vec())));
        std::fs::write(path(dir), b"not ours").expect("write");
        assert!(read(dir).is_none());
    }
}
