//! A process's line in `/proc/PID/stat`, read by field: its state, process group, controlling
//! terminal and that terminal's foreground group.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

/// The fields linger uses.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcStat {
    /// `R`, `S`, `T` (stopped), `t` (traced), `Z`...
    pub state: u8,
    pub pgrp: i32,
    /// The controlling terminal's device number (0: none), encoded as `st_rdev` is.
    pub tty_nr: u64,
    /// The foreground process group of that terminal (-1: none).
    pub tpgid: i32,
}

impl ProcStat {
    /// Parses a stat line. The fields after the command name (which may hold spaces and
    /// parentheses) start after the last ')': state, ppid, pgrp, session, tty_nr, tpgid.
    pub fn parse(line: &[u8]) -> Option<ProcStat> {
        let close = line.iter().rposition(|&b| b == b')')?;
        let rest = std::str::from_utf8(&line[close + 1..]).ok()?;
        let mut fields = rest.split_ascii_whitespace();
        let state = *fields.next()?.as_bytes().first()?;
        let _ppid = fields.next()?;
        let pgrp = fields.next()?.parse().ok()?;
        let _session = fields.next()?;
        // Printed as a signed int: the bits are the device number.
        let tty_nr = u64::from(fields.next()?.parse::<i32>().ok()? as u32);
        let tpgid = fields.next()?.parse().ok()?;
        Some(ProcStat {
            state,
            pgrp,
            tty_nr,
            tpgid,
        })
    }

    /// This process's stat now.
    pub fn ours() -> Option<ProcStat> {
        ProcStat::parse(&std::fs::read("/proc/self/stat").ok()?)
    }

    /// Reads `pid`'s stat now.
    pub fn of(pid: i32) -> Option<ProcStat> {
        ProcStat::parse(&std::fs::read(format!("/proc/{pid}/stat")).ok()?)
    }

    /// Stopped (by a signal or a tracer).
    pub fn stopped(&self) -> bool {
        matches!(self.state, b'T' | b't')
    }

    /// Exited (a zombie not yet reaped, or dead).
    pub fn exited(&self) -> bool {
        matches!(self.state, b'Z' | b'X' | b'x')
    }

    /// In the foreground of its controlling terminal.
    pub fn in_foreground(&self) -> bool {
        self.pgrp == self.tpgid
    }
}

/// `/proc/PID/stat` kept open, to be read again and again (one `pread` each) as long as the
/// process lives.
pub struct Watched(OwnedFd);

/// A stat line is about 300 bytes; a command name is at most 64.
const STAT_LINE_MAX: usize = 1024;

impl Watched {
    pub fn open(pid: i32) -> Option<Watched> {
        let path = format!("/proc/{pid}/stat");
        let flags = rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC;
        rustix::fs::open(path.as_str(), flags, rustix::fs::Mode::empty())
            .ok()
            .map(Watched)
    }

    /// The process's stat now; `None` once it has gone.
    pub fn now(&self) -> Option<ProcStat> {
        let mut buf = [0u8; STAT_LINE_MAX];
        let n = rustix::io::pread(self.0.as_fd(), &mut buf, 0).ok()?;
        ProcStat::parse(&buf[..n])
    }
}

/// Where a watched client stands in its terminal.
#[derive(Debug, PartialEq)]
pub enum Standing {
    /// Running in the foreground: the terminal is its.
    InFront,
    /// Stopped, or in the background (its shell took the terminal back).
    Behind,
    /// Exited or killed.
    Gone,
}

/// A client process looked at before its terminal is used: a look that found it in front is
/// trusted for `fresh`, so a burst of use costs one `pread`.
pub struct Looked {
    watched: Watched,
    fresh: Duration,
    seen: Option<Instant>,
}

impl Looked {
    pub fn new(watched: Watched, fresh: Duration) -> Looked {
        Looked {
            watched,
            fresh,
            seen: None,
        }
    }

    /// Where the client stands now (or within `fresh` of now).
    pub fn look(&mut self) -> Standing {
        let now = Instant::now();
        if self.seen.is_some_and(|at| now < at + self.fresh) {
            return Standing::InFront;
        }
        let Some(stat) = self.watched.now().filter(|stat| !stat.exited()) else {
            self.seen = None;
            return Standing::Gone;
        };
        let in_front = !stat.stopped() && stat.in_foreground();
        self.seen = in_front.then_some(now);
        if in_front {
            Standing::InFront
        } else {
            Standing::Behind
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_after_a_command_name_with_spaces_and_parentheses() {
        let line = b"4242 (a (b) c) T 1 4242 4000 34816 4242 4194560 0 0";
        let stat = ProcStat::parse(line).expect("parsed");
        assert_eq!(
            stat,
            ProcStat {
                state: b'T',
                pgrp: 4242,
                tty_nr: 34816,
                tpgid: 4242
            }
        );
        assert!(stat.stopped() && stat.in_foreground());
        assert!(ProcStat::parse(b"1 (x) S 0").is_none(), "too short");
    }

    #[test]
    fn this_process_reads_as_running() {
        let me = rustix::process::getpid().as_raw_nonzero().get();
        let watched = Watched::open(me).expect("open our own stat");
        let stat = watched.now().expect("read it");
        assert!(!stat.stopped());
    }
}
