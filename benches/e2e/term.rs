//! A process on a pty, read by a thread that watches for one marker at a time.

use crate::{COLS, DEADLINE, ROWS};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

pub struct Watch {
    needle: Vec<u8>,
    armed: bool,
    found: Option<Instant>,
    /// The last `needle.len() - 1` bytes, for a marker split across reads.
    carry: Vec<u8>,
    received: u64,
    tail: Vec<u8>,
    closed: bool,
}

pub struct Shared {
    watch: Mutex<Watch>,
    changed: Condvar,
}

pub fn find(haystack: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut i = 0;
    while let Some(off) = haystack[i..].iter().position(|&b| b == first) {
        let at = i + off;
        if haystack[at + 1..].starts_with(rest) {
            return true;
        }
        i = at + 1;
    }
    false
}

impl Watch {
    fn take(&mut self, chunk: &[u8], at: Instant) -> bool {
        self.received += chunk.len() as u64;
        if self.tail.len() + chunk.len() > 8192 {
            let keep = 4096usize.saturating_sub(chunk.len());
            let drop = self.tail.len().saturating_sub(keep);
            self.tail.drain(..drop);
        }
        self.tail
            .extend_from_slice(&chunk[chunk.len().saturating_sub(4096)..]);
        if !self.armed || self.found.is_some() {
            return false;
        }
        let keep = self.needle.len().saturating_sub(1);
        let head = &chunk[..chunk.len().min(keep)];
        let mut joint = std::mem::take(&mut self.carry);
        joint.extend_from_slice(head);
        let hit = find(&joint, &self.needle) || find(chunk, &self.needle);
        if chunk.len() >= keep {
            joint.clear();
            joint.extend_from_slice(&chunk[chunk.len() - keep..]);
        } else {
            let excess = joint.len().saturating_sub(keep);
            joint.drain(..excess);
        }
        self.carry = joint;
        if hit {
            self.found = Some(at);
        }
        hit
    }
}

/// Primary device attributes: the question, and a VT220-class terminal's answer.
const DA1_QUERY: &[u8] = b"\x1b[c";
const DA1_ANSWER: &[u8] = b"\x1b[?62;22c";

pub struct Term {
    writer: File,
    child: Child,
    shared: Arc<Shared>,
    what: String,
}

impl Term {
    /// Starts `cmd` on a fresh ROWSxCOLS pty, watching for `needle` from the first byte.
    /// Returns the terminal and the instant just before the spawn.
    pub fn spawn(mut cmd: Command, what: &str, needle: Option<&str>) -> (Term, Instant) {
        let (master, slave) = linger::pty::open_pair(ROWS, COLS).expect("cannot open a pty");
        let flags = rustix::fs::fcntl_getfl(&master).expect("fcntl(F_GETFL) on the pty");
        rustix::fs::fcntl_setfl(&master, flags - rustix::fs::OFlags::NONBLOCK)
            .expect("fcntl(F_SETFL) on the pty");
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup pty slave")))
            .stdout(Stdio::from(slave.try_clone().expect("dup pty slave")))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(std::io::stdin())?;
                Ok(())
            });
        }
        let shared = Arc::new(Shared {
            watch: Mutex::new(Watch {
                needle: needle.map(|n| n.as_bytes().to_vec()).unwrap_or_default(),
                armed: needle.is_some(),
                found: None,
                carry: Vec::new(),
                received: 0,
                tail: Vec::new(),
                closed: false,
            }),
            changed: Condvar::new(),
        });
        let master: OwnedFd = master;
        let writer = File::from(master.try_clone().expect("dup pty master"));
        let reader_shared = shared.clone();
        let mut answers = File::from(master.try_clone().expect("dup pty master"));
        let mut reader = File::from(master);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let at = Instant::now();
                // Every terminal answers "what are you" (DA1); linger's attach, for one, asks
                // it last in its probe and waits for the answer before it stops reading keys.
                if find(&buf[..n], DA1_QUERY) {
                    let _ = answers.write_all(DA1_ANSWER);
                }
                let mut watch = reader_shared
                    .watch
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if watch.take(&buf[..n], at) {
                    reader_shared.changed.notify_all();
                }
            }
            let mut watch = reader_shared
                .watch
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            watch.closed = true;
            reader_shared.changed.notify_all();
        });
        let start = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        drop(cmd);
        (
            Term {
                writer,
                child,
                shared,
                what: what.to_string(),
            },
            start,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watch> {
        self.shared.watch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watches for `needle` in output that arrives from now on.
    pub fn arm(&self, needle: &[u8]) {
        let mut w = self.lock();
        w.needle = needle.to_vec();
        w.armed = true;
        w.found = None;
        w.carry.clear();
    }

    /// Waits for the armed needle; returns when the reader saw it.
    pub fn wait(&self) -> Instant {
        let start = Instant::now();
        let mut w = self.lock();
        loop {
            if let Some(at) = w.found {
                w.armed = false;
                return at;
            }
            let left = DEADLINE.checked_sub(start.elapsed());
            if w.closed || left.is_none() {
                panic!(
                    "{}: {} waiting for {:?}; last output:\n{}",
                    self.what,
                    if w.closed {
                        "output ended"
                    } else {
                        "timed out"
                    },
                    String::from_utf8_lossy(&w.needle),
                    String::from_utf8_lossy(&w.tail)
                );
            }
            w = self
                .shared
                .changed
                .wait_timeout(w, left.unwrap_or_default())
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub fn received(&self) -> u64 {
        self.lock().received
    }

    pub fn type_bytes(&self, bytes: &[u8]) {
        (&self.writer)
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("{}: cannot type into the pty: {e}", self.what));
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
