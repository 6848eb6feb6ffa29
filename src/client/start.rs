//! Starting a server: through the keeper that holds the programs (starting the keeper first
//! when none runs), and `linger upgrade`, which hands every session to another binary.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Client, Error, Result, START_TIMEOUT};

/// How long `upgrade` waits for the old server to hand over and the new one to answer.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(30);

/// Asks the keeper in `dir` (blocking, on a blocking thread) to start a server from `exe`.
async fn ask_keeper_to_start(dir: &Path, exe: &Path) -> bool {
    let (dir, exe) = (dir.to_path_buf(), exe.to_path_buf());
    tokio::task::spawn_blocking(move || crate::keeper::ask_start(&dir, &exe))
        .await
        .is_ok_and(|r| r.is_ok())
}

/// Starts a server and waits until it accepts connections. A running keeper is asked to start
/// it (it is the keeper's child, so programs outlive it); otherwise `linger keeper` is started
/// detached (own session, stdio to the log), and it starts the server. Racing starters are
/// fine: the keeper's and the server's locks let one of each win.
pub(super) async fn start_server(dir: &Path, exe: &Path) -> Result<()> {
    let log_path = crate::paths::log_path(dir);
    let mut keeper = if ask_keeper_to_start(dir, exe).await {
        None
    } else {
        Some(spawn_keeper(dir, exe, &log_path)?)
    };
    let deadline = Instant::now() + START_TIMEOUT;
    let mut failed_at: Option<Instant> = None;
    let mut asked_at = Instant::now();
    let probe = Client::new(dir);
    loop {
        match probe.open().await {
            Ok(_) => {
                if let Some(keeper) = keeper.take() {
                    reap_later(keeper);
                }
                return Ok(());
            }
            Err(e) if e.0.contains("does not match") => return Err(e),
            Err(_) => {}
        }
        // The keeper exits with its server's status when that did not start (or lost the
        // start race to another server: give the winner a moment before calling it a failure).
        match keeper.as_mut().map(|k| k.try_wait()) {
            Some(Ok(Some(status))) if status.code() == Some(crate::server::REFUSED_EXIT) => {
                return Err(Error(crate::server::ownership::refusal(&log_path)));
            }
            Some(Ok(Some(status))) if !status.success() && failed_at.is_none() => {
                failed_at = Some(Instant::now());
            }
            _ => {}
        }
        if failed_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
            return Err(Error(format!(
                "the server failed to start; see {}",
                log_path.display()
            )));
        }
        if Instant::now() >= deadline {
            return Err(Error(format!(
                "the server did not start within {}s; see {}",
                START_TIMEOUT.as_secs(),
                log_path.display()
            )));
        }
        // A keeper that said its server runs may have been looking at one that had just
        // exited, and gone away itself since: ask again, or start a keeper.
        if keeper.is_none() && asked_at.elapsed() > REASK {
            asked_at = Instant::now();
            if !ask_keeper_to_start(dir, exe).await {
                keeper = Some(spawn_keeper(dir, exe, &log_path)?);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How long a start waits for the server a keeper promised before asking again.
const REASK: Duration = Duration::from_secs(1);

/// Starts `linger keeper` detached from this terminal, its stdio on the log.
fn spawn_keeper(dir: &Path, exe: &Path, log_path: &Path) -> Result<std::process::Child> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(log_path)
        .map_err(|e| Error(format!("cannot open {}: {e}", log_path.display())))?;
    let log_err = log
        .try_clone()
        .map_err(|e| Error(format!("cannot open the log: {e}")))?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("keeper")
        .env("LINGER_DIR", dir)
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log_err);
    // SAFETY: setsid is async-signal-safe; it detaches the keeper from our terminal.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::setsid()?;
            // The keeper is a daemon: it must not hold the caller's pipes open.
            crate::spawn::close_inherited_fds();
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| Error(format!("cannot start {}: {e}", exe.display())))
}

/// `linger upgrade`: the keeper asks the running server to hand over (it saves everything and
/// exits, leaving the programs running) and starts a server from `exe`, which adopts them.
/// Returns once the new server answers.
pub async fn upgrade(dir: &Path) -> Result<String> {
    // The binary running this command is the one on disk now (`LINGER_BIN` still wins).
    let exe = match std::env::var_os("LINGER_BIN").filter(|b| !b.is_empty()) {
        Some(bin) => PathBuf::from(bin),
        None => std::env::current_exe()
            .map_err(|e| Error(format!("cannot tell which linger binary this is: {e}")))?,
    };
    let old = read_pid(&crate::paths::pid_path(dir));
    let asked = {
        let (dir, exe) = (dir.to_path_buf(), exe.clone());
        tokio::task::spawn_blocking(move || crate::keeper::ask_upgrade(&dir, &exe))
            .await
            .map_err(|e| Error(format!("cannot ask the keeper: {e}")))?
    };
    if let Ok(Err(refused)) = asked {
        return Err(Error(format!("the keeper did not upgrade: {refused}")));
    }
    if let Err(e) = asked {
        let running = Client::existing_in(dir).await.ok().flatten().is_some();
        return Err(Error(if running {
            "the running server has no keeper (an older linger, or started by hand): its \
             sessions cannot be handed over; `linger kill-server` ends them, then any linger \
             command starts the new server"
                .into()
        } else {
            format!("cannot reach the keeper ({e}); no server is running to upgrade")
        }));
    }
    let deadline = Instant::now() + UPGRADE_TIMEOUT;
    let probe = Client::new(dir);
    loop {
        let now = read_pid(&crate::paths::pid_path(dir));
        if now.is_some() && now != old && probe.open().await.is_ok() {
            return Ok(format!(
                "sessions handed to {} (server pid {})",
                exe.display(),
                now.unwrap_or(0)
            ));
        }
        if Instant::now() >= deadline {
            return Err(Error(format!(
                "the new server did not answer within {}s; see {}",
                UPGRADE_TIMEOUT.as_secs(),
                crate::paths::log_path(dir).display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Client {
    /// Waits (bounded) until a server answers again: after an `upgrade` notice, the new one.
    pub async fn wait_for_server(&self) -> Result<()> {
        let deadline = Instant::now() + UPGRADE_TIMEOUT;
        loop {
            if self.open().await.is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error(format!(
                    "the server was upgrading and no new one answered within {}s; see {}",
                    UPGRADE_TIMEOUT.as_secs(),
                    crate::paths::log_path(&self.dir).display()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The `linger` binary to run as the server: `LINGER_BIN`, this program when it is linger, a
/// `linger` beside it (or one level up, for cargo's examples and tests), else `linger` on PATH.
pub(super) fn server_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("LINGER_BIN").filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    if let Ok(exe) = std::env::current_exe() {
        if exe.file_name().is_some_and(|n| n == "linger") {
            return Ok(exe);
        }
        let beside = exe.parent().map(|d| d.join("linger"));
        let above = exe
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("linger"));
        if let Some(found) = [beside, above].into_iter().flatten().find(|p| p.is_file()) {
            return Ok(found);
        }
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("linger"))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error("cannot find the linger binary to start the server; set LINGER_BIN".into())
        })
}

/// The server outlives us; reap it in the background if it exits while we still run, so it
/// does not linger as a zombie under a long-lived client.
fn reap_later(mut child: std::process::Child) {
    std::thread::spawn(move || {
        let _ = child.wait();
    });
}
