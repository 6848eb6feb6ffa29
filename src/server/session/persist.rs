//! A session's record and output log on disk: written as the session changes, failures
//! reported instead of fatal.

use std::time::{Duration, Instant};

use crate::log;
use crate::model::Model;
use crate::protocol::Response;
use crate::state::SessionRecord;

/// How often, at most, output reaches the disk; a SIGKILLed server loses at most this much.
const FLUSH_INTERVAL: Duration = Duration::from_millis(500);

/// The session's record and output log on disk. Any failure is logged once and reported in
/// `ls --json`; the session carries on in memory.
pub struct Persist {
    pub dir: Option<std::path::PathBuf>,
    pub log: Option<crate::state::OutputLog>,
    pub error: Option<String>,
    pub flush_at: Option<Instant>,
    screen_dirty: bool,
}

impl Persist {
    pub fn new(dir: Option<std::path::PathBuf>, record: &SessionRecord) -> Persist {
        let mut persist = Persist {
            dir,
            log: None,
            error: None,
            flush_at: None,
            screen_dirty: false,
        };
        let Some(dir) = persist.dir.clone() else {
            persist.error = Some(crate::state::unsaved_reason());
            return persist;
        };
        let opened = crate::state::write_record(&dir, record)
            .and_then(|()| crate::state::OutputLog::open(&dir, record.log_limit));
        match opened {
            Ok(log) => persist.log = Some(log),
            Err(e) => persist.fail(&record.name, &e),
        }
        persist
    }

    pub fn fail(&mut self, name: &str, e: &std::io::Error) {
        if self.error.is_none() {
            let dir = self
                .dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            log::warn(&format!(
                "session {name}: cannot save state in {dir} ({e}); keeping it in memory only"
            ));
            self.error = Some(format!("cannot save state in {dir}: {e}"));
        }
        self.log = None;
        self.flush_at = None;
    }

    pub fn mark_dirty(&mut self) {
        if self.log.is_some() {
            self.screen_dirty = true;
            self.flush_at
                .get_or_insert_with(|| Instant::now() + FLUSH_INTERVAL);
        }
    }

    pub fn write_record(&mut self, record: &SessionRecord) {
        if self.error.is_some() {
            return;
        }
        if let Some(dir) = self.dir.clone()
            && let Err(e) = crate::state::write_record(&dir, record)
        {
            self.fail(&record.name, &e);
        }
    }

    pub fn flush(&mut self, name: &str, model: &mut Model) {
        self.flush_at = None;
        let Some(log) = self.log.as_mut() else { return };
        log.push_lines(&model.take_fresh_lines());
        let screen = self.screen_dirty.then(|| model.screen_lines(true));
        self.screen_dirty = false;
        if let Err(e) = log.flush(screen.as_deref()) {
            self.fail(name, &e);
        }
    }

    /// Forgets the session on disk (after `kill`); an error tells `kill` it will be back.
    pub fn remove(&mut self, name: &str) -> Response {
        self.log = None;
        match self
            .dir
            .take()
            .map(|d| crate::state::remove_session_dir(name, &d))
        {
            Some(Err(e)) => Response::Error(e),
            _ => Response::Ok,
        }
    }
}
