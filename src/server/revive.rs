//! Starting an ended or lost session again: check that it can start before touching it, keep
//! the previous run's last screen in the output log, and put the session back as it was when the
//! start fails anyway.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Server;
use super::commands::SessionCmd;
use super::session;
use crate::protocol::SessionSpec;
use crate::state::SessionRecord;

/// What `revive` was asked for, beyond the session's name.
pub struct ReviveRequest {
    pub command: Option<Vec<String>>,
    /// `revive -C DIR`: an absolute directory to use instead of the saved one.
    pub cwd: Option<String>,
    pub rows: u16,
    pub cols: u16,
}

impl Server {
    /// Starts an ended or lost session again, with its earlier output above the new. On any
    /// failure the session stays listed, with its output, as it was.
    pub async fn revive(&self, name: &str, req: ReviveRequest) -> Result<(), String> {
        let tx = self
            .registry
            .get(name)
            .ok_or_else(|| format!("no session named '{name}' (see `linger ls`)"))?;
        let (reply, rx) = tokio::sync::oneshot::channel();
        tx.send(SessionCmd::TakeForRevive { reply })
            .await
            .map_err(|_| format!("session '{name}' went away"))?;
        let (record, lines) = rx
            .await
            .map_err(|_| format!("session '{name}' went away"))??;
        // The old actor leaves the registry as it ends; wait for that before taking the name.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.registry.get(name).is_some() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let spec = spec_for(name, &record, req);
        let dir = self
            .store
            .as_deref()
            .map(|s| crate::state::session_dir(s, name));
        let checked = {
            let (spec, dir) = (spec.clone(), dir.clone());
            tokio::task::spawn_blocking(move || {
                check(&spec)?;
                // The screen becomes history on disk, as it does in memory below.
                Ok::<_, String>(dir.and_then(|d| fold_screen_into_log(&d)))
            })
            .await
            .map_err(|e| format!("cannot revive '{name}': {e}"))
        };
        let folded = match checked {
            Ok(Ok(folded)) => folded,
            Ok(Err(e)) | Err(e) => {
                self.put_back(name, dir, record).await;
                return Err(e);
            }
        };
        let earlier = session::Earlier {
            lines,
            notes: record.notes.clone(),
            created_at: record.created_at,
            profile: record.profile.clone(),
            queue: record.queue.clone(),
        };
        match self.start(spec, Some(earlier), None).await {
            Ok(_) => Ok(()),
            Err(e) => {
                if let Some(folded) = folded {
                    let _ = tokio::task::spawn_blocking(move || folded.undo()).await;
                }
                self.put_back(name, dir, record).await;
                Err(e)
            }
        }
    }

    /// Lists the session again from its files after a revive that did not start.
    async fn put_back(&self, name: &str, dir: Option<PathBuf>, record: SessionRecord) {
        let Some(dir) = dir else {
            crate::log::warn(&format!(
                "session {name}: revive failed and nothing was saved to restore it from"
            ));
            return;
        };
        let seen_in = dir.clone();
        let last_seen = tokio::task::spawn_blocking(move || crate::state::last_written(&seen_in))
            .await
            .unwrap_or(0);
        self.add_dormant(dir, record, last_seen);
    }
}

pub(super) fn spec_for(name: &str, record: &SessionRecord, req: ReviveRequest) -> SessionSpec {
    let command = req
        .command
        .filter(|c| !c.is_empty())
        .or_else(|| record.resume_command.clone())
        .unwrap_or_else(|| record.command.clone());
    SessionSpec {
        name: name.to_string(),
        command,
        cwd: req.cwd.unwrap_or_else(|| record.cwd.clone()),
        env: record.env.clone(),
        // A record may predate the bounds, or have been edited: hold it to them.
        scrollback: if record.scrollback == 0 {
            10_000
        } else {
            record.scrollback.min(crate::state::MAX_SCROLLBACK)
        },
        rows: req.rows,
        cols: req.cols,
        resume_command: record.resume_command.clone(),
        log_limit: record.log_limit.min(crate::state::MAX_LOG_LIMIT),
        clear_env: record.clear_env,
    }
}

/// Refuses what would make the program fail to start, before the session is touched.
fn check(spec: &SessionSpec) -> Result<(), String> {
    let name = &spec.name;
    let Some(program) = spec.command.first().filter(|p| !p.is_empty()) else {
        return Err(format!(
            "cannot revive '{name}': its command is empty; give one: `linger revive {name} -- CMD`"
        ));
    };
    if spec.command.iter().any(|a| a.contains('\0')) {
        return Err(format!(
            "cannot revive '{name}': its command contains a NUL byte; give another: `linger revive {name} -- CMD`"
        ));
    }
    if let Some((key, _)) = spec
        .env
        .iter()
        .find(|(k, v)| k.is_empty() || k.contains(['\0', '=']) || v.contains('\0'))
    {
        let shown: String = key
            .chars()
            .take(40)
            .flat_map(char::escape_default)
            .collect();
        return Err(format!(
            "cannot revive '{name}': its saved environment variable '{shown}' is invalid (NUL \
             byte or '='); fix or remove it in its meta.json"
        ));
    }
    let cwd = Path::new(&spec.cwd);
    match std::fs::metadata(cwd) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "cannot revive '{name}': {} is not a directory; give another with `linger revive {name} -C DIR`",
                spec.cwd
            ));
        }
        Err(e) => {
            return Err(format!(
                "cannot revive '{name}': its directory {} is unusable ({e}); give another with `linger revive {name} -C DIR`",
                spec.cwd
            ));
        }
    }
    if find_program(program, &spec.env, cwd).is_none() {
        return Err(format!(
            "cannot revive '{name}': program '{program}' not found or not executable; give another: `linger revive {name} -- CMD`"
        ));
    }
    Ok(())
}

/// Where `program` would be found: as a path (relative to the session's dir), else on `PATH`
/// (the session's own `-e PATH`, else the server's).
fn find_program(program: &str, env: &[(String, String)], cwd: &Path) -> Option<PathBuf> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.contains('/') {
        let path = cwd.join(program);
        return executable(&path).then_some(path);
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone().into())
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| cwd.join(d).join(program))
        .find(|p| executable(p))
}

/// The previous run's last screen, moved into the output log so the next run's screen does
/// not replace it; [`Folded::undo`] restores both files.
pub struct Folded {
    log: PathBuf,
    log_len: u64,
    screen: PathBuf,
    screen_bytes: Vec<u8>,
}

impl Folded {
    fn undo(self) {
        if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&self.log) {
            let _ = file.set_len(self.log_len);
        }
        let _ = crate::state::write_atomic(&self.screen, &self.screen_bytes, false);
    }
}

/// Appends the saved screen (without its blank bottom rows) to the output log and removes it.
/// The log may exceed its bound by this one screen until its next rotation. `None` when there
/// is no screen, or it cannot be moved (then it stays where it was: nothing is lost).
fn fold_screen_into_log(dir: &Path) -> Option<Folded> {
    use std::io::Write;
    let screen = dir.join("screen.txt");
    let screen_bytes = crate::state::read_screen(dir)?;
    let rows: Vec<String> = String::from_utf8_lossy(&screen_bytes)
        .lines()
        .map(str::to_string)
        .collect();
    let rows = super::transcript::without_trailing_blanks(rows);
    let log = dir.join("output.log");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&log)
        .ok()?;
    let log_len = file.metadata().ok()?.len();
    let mut text = String::new();
    for row in &rows {
        text.push_str(row);
        text.push('\n');
    }
    let folded = Folded {
        log,
        log_len,
        screen,
        screen_bytes,
    };
    if file.write_all(text.as_bytes()).is_err() || std::fs::remove_file(&folded.screen).is_err() {
        folded.undo();
        return None;
    }
    Some(folded)
}
