//! The per-user server: owns the runtime dir's lock and socket, the session registry, and
//! accepts connections until told to stop.

pub mod adopt;
pub mod attached;
pub mod commands;
pub mod connection;
pub mod direct;
pub mod disk;
pub mod dormant;
pub mod events;
pub mod foreground;
pub mod hooks;
pub mod journal;
pub mod keyboard;
pub mod outbox;
pub mod ownership;
pub mod rename;
pub mod revive;
pub mod screen_state;
pub mod session;
pub mod settings;
mod starting;
pub mod tasks;
pub mod transcript;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, mpsc};

use crate::log;
use commands::SessionCmd;
pub use ownership::{NotStarted, REFUSED_EXIT};

/// Sessions by name. A session removes itself when it ends; the pid guards against removing a
/// newer session that reused the name.
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<HashMap<String, SessionEntry>>>);

#[derive(Clone)]
pub struct SessionEntry {
    pub tx: mpsc::Sender<SessionCmd>,
    pub pid: u32,
    pub created_seq: u64,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionEntry>> {
        // A panic while holding this lock cannot leave the map inconsistent (single inserts and
        // removes), so a poisoned lock is still safe to use.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, name: &str) -> Option<mpsc::Sender<SessionCmd>> {
        self.lock().get(name).map(|e| e.tx.clone())
    }

    pub fn remove(&self, name: &str, pid: u32) {
        let mut map = self.lock();
        if map.get(name).is_some_and(|e| e.pid == pid) {
            map.remove(name);
        }
    }

    /// All sessions in creation order.
    pub fn all(&self) -> Vec<mpsc::Sender<SessionCmd>> {
        let map = self.lock();
        let mut entries: Vec<_> = map.values().cloned().collect();
        entries.sort_by_key(|e| e.created_seq);
        entries.into_iter().map(|e| e.tx).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Gives a reserved entry (see `Server::reserve`) its program's pid, if it is still the
    /// entry of the session behind `tx`.
    fn claim(&self, name: &str, tx: &mpsc::Sender<SessionCmd>, pid: u32) {
        if let Some(entry) = self.lock().get_mut(name)
            && entry.tx.same_channel(tx)
        {
            entry.pid = pid;
        }
    }
}

pub struct Server {
    pub registry: Registry,
    pub dir: PathBuf,
    /// Where session records and output logs live; `None` when it could not be used.
    pub store: Option<PathBuf>,
    /// The writer thread for `store`.
    pub disk: Option<disk::Disk>,
    pub shutdown: Notify,
    /// The keeper that holds every program's master; `None` when this server has none.
    pub keeper: Option<crate::keeper::link::Link>,
    next_seq: std::sync::atomic::AtomicU64,
}

/// Bound on the commands queued to one session; senders wait, so this is backpressure, not loss.
const SESSION_COMMANDS: usize = 1024;

impl Server {
    /// Starts a session; `profile` is the creating client's terminal, which the program hears
    /// from its first question on. Fails if the name is taken or the program cannot start.
    pub async fn create(
        &self,
        spec: crate::protocol::SessionSpec,
        profile: Option<crate::term::Profile>,
    ) -> Result<mpsc::Sender<SessionCmd>, String> {
        self.start(spec, None, profile).await
    }

    async fn start(
        &self,
        mut spec: crate::protocol::SessionSpec,
        earlier: Option<session::Earlier>,
        profile: Option<crate::term::Profile>,
    ) -> Result<mpsc::Sender<SessionCmd>, String> {
        session::check_spec(&spec)?;
        (spec.rows, spec.cols) = crate::protocol::clamp_size(spec.rows, spec.cols);
        let (tx, rx) = mpsc::channel(SESSION_COMMANDS);
        let name = spec.name.clone();
        // The name is taken first; starting the program then happens off the server's thread
        // and outside the registry's lock, so every other session and client goes on.
        // Commands for the new session queue in its channel until it runs.
        self.reserve(&name, &tx)?;
        let spawning = starting::start_program(spec, self.dir.clone(), self.keeper.clone()).await;
        let (started, held) = match spawning {
            Ok((spec, Ok((spawned, held)))) => (
                session::Session::spawned(spec, spawned, self.wiring(rx), earlier)
                    .map_err(|e| format!("cannot start session '{name}': {e}")),
                held,
            ),
            Ok((_, Err(e))) => (Err(e), None),
            Err(_) => (
                Err(format!(
                    "cannot start session '{name}': the thread starting it failed (see the server log)"
                )),
                None,
            ),
        };
        let mut session = match started {
            Ok(session) => session,
            Err(e) => {
                self.registry.remove(&name, 0);
                return Err(e);
            }
        };
        self.registry.claim(&name, &tx, session.pid());
        if let Some(profile) = &profile {
            session.adopt_profile(profile);
        }
        tokio::spawn(session.run());
        if let Some(held) = held {
            starting::held_by_keeper(&name, held).await;
        }
        Ok(tx)
    }

    /// Takes `name` for a session being started (pid 0 until its program runs).
    fn reserve(&self, name: &str, tx: &mpsc::Sender<SessionCmd>) -> Result<(), String> {
        let mut map = self.registry.lock();
        if map.contains_key(name) {
            return Err(format!(
                "session '{name}' already exists (see `linger ls`; `linger kill {name}` forgets it)"
            ));
        }
        let seq = self
            .next_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        map.insert(
            name.to_string(),
            SessionEntry {
                tx: tx.clone(),
                pid: 0,
                created_seq: seq,
            },
        );
        Ok(())
    }

    fn wiring(&self, rx: mpsc::Receiver<SessionCmd>) -> session::Wiring<'_> {
        session::Wiring {
            registry: self.registry.clone(),
            rx,
            runtime_dir: &self.dir,
            save_to: self.store.as_deref().zip(self.disk.as_ref()),
            keeper: self.keeper.clone(),
        }
    }

    /// Lists the sessions found on disk at start-up (see [`scan_saved`]), adopting the
    /// programs the keeper held for them.
    fn load_saved(&self, saved: Vec<Saved>) {
        for Saved {
            dir,
            name,
            record,
            last_seen,
            adoption,
        } in saved
        {
            match (record, adoption) {
                (Ok(record), Some(adoption)) => self.adopt(dir, record, adoption),
                (Ok(record), None) => {
                    if record.state == "lost" {
                        events::emit(&record.name, "lost", Some("lost"), None, None);
                    }
                    self.add_dormant(dir, record, last_seen)
                }
                (Err(reason), _) => {
                    let (tx, rx) = mpsc::channel(SESSION_COMMANDS);
                    let dormant = dormant::Dormant::broken(
                        dir,
                        name.clone(),
                        reason,
                        last_seen,
                        self.registry.clone(),
                        rx,
                    );
                    self.register(name, tx, 0);
                    tokio::spawn(dormant.run());
                }
            }
        }
    }

    /// Lists a session started outside `start` (adopted, or without a process: pid 0).
    fn register(&self, name: String, tx: mpsc::Sender<SessionCmd>, pid: u32) {
        let seq = self
            .next_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.registry.lock().insert(
            name,
            SessionEntry {
                tx,
                pid,
                created_seq: seq,
            },
        );
    }

    /// Lists a session without a process, served from its files in `dir`.
    fn add_dormant(&self, dir: PathBuf, record: crate::state::SessionRecord, last_seen: u64) {
        let (tx, rx) = mpsc::channel(SESSION_COMMANDS);
        let name = record.name.clone();
        let dormant = dormant::Dormant::new(dir, record, last_seen, self.registry.clone(), rx);
        self.register(name, tx, 0);
        tokio::spawn(dormant.run());
    }
}

/// A session found on disk.
struct Saved {
    dir: PathBuf,
    name: String,
    /// Its record, or why that cannot be read.
    record: Result<crate::state::SessionRecord, String>,
    /// When its files were last written (unix ms).
    last_seen: u64,
    /// Its program, still running (or ended while no server ran), held by the keeper.
    adoption: Option<adopt::Adoption>,
}

/// All the server's threads allocate from one heap. glibc gives every thread that allocates
/// an arena of its own (over 100 KiB of touched memory each); the server's helper threads (disk,
/// journal, log, blocking pool) allocate little and rarely, so their arenas were mostly waste.
fn one_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only tunes the allocator; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Reads every saved session before the runtime starts (this is blocking disk work): those
/// that were running when their server ended are adopted when the keeper held their program,
/// else marked lost. Unreadable records are kept with the reason, to be listed as broken; dirs
/// whose names are not session names are skipped.
fn scan_saved(store: &Path, held: &mut Vec<crate::keeper::link::Held>) -> Vec<Saved> {
    let mut saved = Vec::new();
    for (dir, record) in crate::state::load_all(store) {
        let Some(name) = dir
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| crate::paths::validate_session_name(n).is_ok())
            .map(str::to_string)
        else {
            log::warn(&format!("skipping {}: not a session name", dir.display()));
            continue;
        };
        let record = record.and_then(|r| {
            if r.name == name {
                Ok(r)
            } else {
                Err(format!("its record names another session ({:?})", r.name))
            }
        });
        let mut adoption = None;
        let record = match record {
            Ok(mut record) => {
                adoption = adopt::take_held(&dir, &mut record, held);
                if adoption.is_none() && record.state == "running" {
                    mark_lost(&dir, &mut record);
                }
                Ok(record)
            }
            Err(e) => {
                log::warn(&format!("session {name} is broken: {e}"));
                Err(e)
            }
        };
        let last_seen = crate::state::last_written(&dir);
        saved.push(Saved {
            dir,
            name,
            record,
            last_seen,
            adoption,
        });
    }
    for (dir, record, adoption) in adopt::unrecorded(store, held) {
        // A dir without a record yet was listed as broken above; the program makes it whole.
        saved.retain(|s| s.name != record.name);
        saved.push(Saved {
            dir,
            name: record.name.clone(),
            last_seen: record.updated_at,
            record: Ok(record),
            adoption: Some(adoption),
        });
    }
    saved
}

fn mark_lost(dir: &Path, record: &mut crate::state::SessionRecord) {
    record.state = "lost".into();
    if let Err(e) = crate::state::write_record(dir, record) {
        log::warn(&format!(
            "cannot mark session {} lost on disk: {e}",
            record.name
        ));
    }
    log::info(&format!(
        "session {} was running when its server died: lost",
        record.name
    ));
}

/// Runs the server in this process until `kill-server` or SIGTERM/SIGINT/SIGHUP.
pub fn run(dir: &Path) -> Result<(), NotStarted> {
    one_heap();
    crate::paths::ensure_private_dir(dir)?;
    let lock = ownership::lock_runtime_dir(dir)?;
    log::init(&crate::paths::log_path(dir));
    let store = crate::state::state_dir().and_then(|d| match crate::state::prepare_state_dir(&d) {
        Ok(()) => Some(d),
        Err(e) => {
            log::warn(&format!("sessions will not be saved: {e}"));
            crate::state::set_unsaved_reason(format!("sessions are not saved: {e}"));
            None
        }
    });
    let mut runtime_lock = Some(lock);
    let state_lock = match store
        .as_deref()
        .map(|state| ownership::lock_state_dir(state, dir, &mut runtime_lock))
        .transpose()
    {
        Ok(lock) => lock,
        Err(e) => {
            log::flush();
            return Err(e);
        }
    };
    let Some(lock) = runtime_lock else {
        return Err(NotStarted::Failed("lost the runtime dir's lock".into()));
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    // A duplicate of the runtime dir's lock (flock belongs to the open file, shared by dups)
    // keeps it held until the state dir's lock is gone: a client that sees the runtime lock
    // free (`kill-server` waits for that) may start a server at once, which must find the
    // state dir free too.
    let runtime_lock_until_exit = lock
        .try_clone()
        .map_err(|e| format!("cannot duplicate the runtime dir's lock: {e}"))?;
    let runtime_dir = ownership::RuntimeDir::new(dir, lock);
    let (keeper, mut held) = adopt::keeper_link(dir);
    let saved = store
        .as_deref()
        .map(|s| scan_saved(s, &mut held))
        .unwrap_or_default();
    for unclaimed in held {
        // No running session of this server's state dir is that program: let it go (the
        // keeper closes its terminal, as a server ending it would have).
        log::warn(&format!(
            "keeper held pid {} ({}) for no running session: released",
            unclaimed.pid, unclaimed.name
        ));
        if let Some(keeper) = &keeper {
            keeper.release(unclaimed.pid as u32);
        }
    }
    settings::reload_blocking();
    let result = runtime.block_on(serve(runtime_dir, store, saved, keeper));
    runtime.shutdown_timeout(Duration::from_secs(1));
    log::flush();
    drop(state_lock);
    drop(runtime_lock_until_exit);
    result.map_err(NotStarted::Failed)
}

async fn serve(
    mut runtime_dir: ownership::RuntimeDir,
    store: Option<PathBuf>,
    saved: Vec<Saved>,
    keeper: Option<crate::keeper::link::Link>,
) -> Result<(), String> {
    let dir = runtime_dir.dir.clone();
    let mut listener = runtime_dir.bind()?;
    // Shared with the blocking thread that binds again after SIGUSR1.
    let runtime_dir = Arc::new(std::sync::Mutex::new(runtime_dir));
    let disk = store
        .as_ref()
        .map(|_| disk::Disk::start())
        .transpose()
        .map_err(|e| format!("cannot start the disk writer thread: {e}"))?;
    let server = Arc::new(Server {
        registry: Registry::default(),
        dir: dir.clone(),
        store,
        disk,
        shutdown: Notify::new(),
        keeper,
        next_seq: Default::default(),
    });
    hooks::start();
    server.load_saved(saved);
    let signal = |kind: tokio::signal::unix::SignalKind, name: &str| {
        tokio::signal::unix::signal(kind).map_err(|e| format!("cannot handle {name}: {e}"))
    };
    use tokio::signal::unix::SignalKind;
    let mut sigterm = signal(SignalKind::terminate(), "SIGTERM")?;
    let mut sigint = signal(SignalKind::interrupt(), "SIGINT")?;
    // SIGHUP (a closed terminal, `kill -HUP`) ends the server cleanly like SIGTERM: sessions
    // are ended and recorded, never left `lost`.
    let mut sighup = signal(SignalKind::hangup(), "SIGHUP")?;
    // SIGUSR1: bind the socket again if it was deleted (see ownership.rs).
    let mut sigusr1 = signal(SignalKind::user_defined1(), "SIGUSR1")?;
    // SIGUSR2, from the keeper (`linger upgrade`): hand every session to the next server.
    let mut sigusr2 = signal(SignalKind::user_defined2(), "SIGUSR2")?;
    let mut hand_over = false;
    loop {
        // Every branch is cancellation-safe: `accept`, signal and notify receives lose nothing
        // when another branch wins; the work happens in the branch bodies.
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    tokio::spawn(connection::handle(stream, server.clone()));
                }
                Err(e) => {
                    // Out of fds or similar: back off briefly instead of spinning.
                    log::warn(&format!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = sigusr1.recv() => {
                if let Some(fresh) = listen_again(&server, &runtime_dir).await {
                    listener = fresh;
                }
            }
            _ = sigusr2.recv(), if server.keeper.is_some() => {
                hand_over = true;
                break;
            }
            _ = server.shutdown.notified() => break,
            _ = sigterm.recv() => break,
            _ = sigint.recv() => break,
            _ = sighup.recv() => break,
        }
    }
    leave(&server, &runtime_dir, hand_over).await;
    Ok(())
}

/// SIGUSR1: binds the socket again if it was deleted (disk work: mkdir, lock, bind, on a
/// blocking thread), and tells the keeper, which lost its socket with the dir too.
async fn listen_again(
    server: &Server,
    runtime_dir: &Arc<std::sync::Mutex<ownership::RuntimeDir>>,
) -> Option<tokio::net::UnixListener> {
    let dir = runtime_dir.clone();
    let rebound =
        tokio::task::spawn_blocking(move || dir.lock().unwrap_or_else(|p| p.into_inner()).rebind())
            .await;
    match rebound {
        Ok(Some(fresh)) => {
            if let Some(keeper) = server.keeper.as_ref().and_then(|k| k.pid()) {
                let _ = rustix::process::kill_process(keeper, rustix::process::Signal::USR1);
            }
            Some(fresh)
        }
        Ok(None) => None,
        Err(e) => {
            log::warn(&format!("cannot listen again: {e}"));
            None
        }
    }
}

/// Stops listening, then ends every session, or (`hand_over`, for `upgrade`) saves each and
/// leaves its program running for the next server.
async fn leave(
    server: &Server,
    runtime_dir: &std::sync::Mutex<ownership::RuntimeDir>,
    hand_over: bool,
) {
    log::info(if hand_over {
        "handing the sessions over to a new server"
    } else {
        "shutting down"
    });
    // Gone before clients are told to reconnect: what answers next is the new server.
    runtime_dir
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove();
    let cmd = if hand_over {
        || SessionCmd::HandOver
    } else {
        || SessionCmd::Shutdown
    };
    end_sessions(server, cmd).await;
}

/// Ends every session like a closing terminal would (or, handing over, saves it and leaves
/// its program running), and waits (bounded) for them and for
/// what they handed to the disk writer.
async fn end_sessions(server: &Server, cmd: fn() -> SessionCmd) {
    for tx in server.registry.all() {
        let _ = tx.send(cmd()).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(4);
    while !server.registry.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some(disk) = &server.disk {
        let _ = tokio::time::timeout(Duration::from_secs(5), disk.barrier()).await;
    }
    // Releases and holds reach the keeper before we exit: it must not keep ended programs.
    if let Some(keeper) = &server.keeper {
        let _ = tokio::time::timeout(Duration::from_secs(5), keeper.flush()).await;
    }
}
