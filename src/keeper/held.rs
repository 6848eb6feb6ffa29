//! What the keeper holds: one entry per program (its pid, its session's name, a duplicate of
//! its pty master, and how it ended once the keeper reaped it), bounded by [`MAX_HELD`].

use std::os::fd::OwnedFd;

use super::wire::Ended;

/// Programs held at most. Each holds one fd; the keeper raises its fd limit to fit them.
pub const MAX_HELD: usize = 4096;
/// The longest session name accepted (linger's own names are at most 64 bytes).
pub const MAX_NAME: usize = 255;

pub struct Entry {
    pub pid: i32,
    pub name: String,
    pub master: OwnedFd,
    /// Set once the keeper reaped the program (it was orphaned to the keeper and ended).
    pub ended: Option<Ended>,
}

#[derive(Default)]
pub struct Held {
    entries: Vec<Entry>,
}

/// Checks a session name as the keeper stores it: one word of printable characters.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("a name is 1 to {MAX_NAME} bytes"));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("a name has no spaces or control characters".into());
    }
    Ok(())
}

impl Held {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    fn find(&mut self, pid: i32) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.pid == pid)
    }

    /// Holds `master` for `pid`; a pid held already gets the new fd and name (the old fd is
    /// closed). Refused beyond [`MAX_HELD`].
    pub fn hold(&mut self, pid: i32, name: &str, master: OwnedFd) -> Result<(), String> {
        check_name(name)?;
        if pid <= 0 {
            return Err(format!("pid {pid} is not a process"));
        }
        if let Some(entry) = self.find(pid) {
            entry.master = master;
            entry.name = name.to_string();
            entry.ended = None;
            return Ok(());
        }
        if self.entries.len() >= MAX_HELD {
            return Err(format!(
                "the keeper holds {MAX_HELD} programs already; this one will not survive the server"
            ));
        }
        self.entries.push(Entry {
            pid,
            name: name.to_string(),
            master,
            ended: None,
        });
        Ok(())
    }

    /// Closes the keeper's copy of the master and forgets the program and its status.
    pub fn release(&mut self, pid: i32) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.pid != pid);
        self.entries.len() != before
    }

    pub fn rename(&mut self, pid: i32, name: &str) -> Result<(), String> {
        check_name(name)?;
        match self.find(pid) {
            Some(entry) => {
                entry.name = name.to_string();
                Ok(())
            }
            None => Err(format!("pid {pid} is not held")),
        }
    }

    /// Keeps how a reaped program ended, when it is held; `false` when it is not.
    pub fn ended(&mut self, pid: i32, ended: Ended) -> bool {
        match self.find(pid) {
            Some(entry) => {
                entry.ended = Some(ended);
                true
            }
            None => false,
        }
    }

    /// `running`, `exited CODE`, `killed SIG`, or `unknown` when not held.
    pub fn status(&self, pid: i32) -> String {
        match self.entries.iter().find(|e| e.pid == pid) {
            Some(Entry { ended: Some(e), .. }) => e.word(),
            Some(_) => "running".into(),
            None => "unknown".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fd() -> OwnedFd {
        rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .expect("open /dev/null")
    }

    #[test]
    fn holds_up_to_the_bound_and_refuses_one_more() {
        let mut held = Held::default();
        for pid in 1..=MAX_HELD as i32 {
            held.hold(pid, "s", fd()).expect("under the bound");
        }
        assert_eq!(held.len(), MAX_HELD);
        let refused = held.hold(MAX_HELD as i32 + 1, "s", fd());
        assert!(refused.unwrap_err().contains("4096"));
        // Holding a pid again replaces its entry, even at the bound.
        held.hold(7, "renamed", fd()).expect("replace");
        assert_eq!(held.len(), MAX_HELD);
        assert!(held.release(7));
        held.hold(MAX_HELD as i32 + 1, "s", fd())
            .expect("room again");
    }

    #[test]
    fn statuses_are_kept_until_released() {
        let mut held = Held::default();
        held.hold(10, "a", fd()).unwrap();
        assert_eq!(held.status(10), "running");
        assert!(held.ended(10, Ended::Exited(3)));
        assert!(!held.ended(11, Ended::Exited(0)), "not held: discarded");
        assert_eq!(held.status(10), "exited 3");
        held.rename(10, "b").unwrap();
        assert_eq!(held.entries()[0].name, "b");
        assert!(held.release(10));
        assert_eq!(held.status(10), "unknown");
    }

    #[test]
    fn names_are_one_bounded_word() {
        assert!(check_name(&"n".repeat(MAX_NAME)).is_ok());
        assert!(check_name(&"n".repeat(MAX_NAME + 1)).is_err());
        assert!(check_name("two words").is_err());
        assert!(check_name("").is_err());
    }
}
