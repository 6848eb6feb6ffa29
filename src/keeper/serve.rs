//! The keeper's loop: poll(2) over its listener, its connections and SIGCHLD; answer each
//! request at once; reap every ended child.

use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::event::{PollFd, PollFlags};
use rustix::net::RecvFlags;
use rustix::process::{Pid, WaitOptions};

use super::held::Held;
use super::wire::{self, Ended};
use super::{MAX_CONNECTIONS, note};

pub struct Keeper {
    dir: PathBuf,
    listener: OwnedFd,
    /// SIGCHLD and SIGUSR1, through a signalfd.
    signals: OwnedFd,
    /// `keeper.lock`, held for the keeper's life (`None` while another keeper holds a new one
    /// after the runtime dir was deleted).
    lock: Option<std::fs::File>,
    /// The socket file we bound (device, inode).
    socket_id: Option<(u64, u64)>,
    conns: Vec<OwnedFd>,
    held: Held,
    /// The server this keeper started, while it runs.
    server: Option<i32>,
    /// `upgrade`: the binary to start a server from once the running one has handed over.
    upgrade_to: Option<PathBuf>,
    /// Exit status of the last server (1 when it could not be started).
    last_exit: i32,
    /// The binary the running (or last) server was started from: a crashed one is restarted
    /// from it.
    server_exe: Option<PathBuf>,
    /// When the servers restarted after crashes were started, newest last; at most
    /// [`MAX_RESTARTS`] within [`RESTART_WINDOW`].
    restarts: std::collections::VecDeque<std::time::Instant>,
}

/// A server that crashes (killed by a signal, or exits with a failure) while programs are held
/// is started again at once, so their output is read and their clients can re-attach without
/// waiting for someone to type a command; a server crashing more often than this waits for one.
const MAX_RESTARTS: usize = 3;
const RESTART_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

impl Keeper {
    pub fn new(dir: PathBuf, listener: OwnedFd, signals: OwnedFd, lock: std::fs::File) -> Keeper {
        let socket_id = super::file_id(&super::socket_path(&dir));
        Keeper {
            dir,
            listener,
            signals,
            lock: Some(lock),
            socket_id,
            conns: Vec::new(),
            held: Held::default(),
            server: None,
            upgrade_to: None,
            last_exit: 0,
            server_exe: None,
            restarts: Default::default(),
        }
    }

    /// Runs until no server runs and nothing is held; returns the last server's exit status.
    pub fn serve(&mut self) -> i32 {
        while self.server.is_some() || !self.held.is_empty() {
            let mut fds = vec![
                PollFd::new(&self.signals, PollFlags::IN),
                PollFd::new(&self.listener, PollFlags::IN),
            ];
            fds.extend(self.conns.iter().map(|c| PollFd::new(c, PollFlags::IN)));
            // Only while our socket is not at its path or our lock is gone (the runtime dir
            // was deleted): look again every second, to take both back once they are free.
            let lost = rustix::event::Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            };
            let displaced = !self.owns_socket() || self.lock.is_none();
            let timeout = displaced.then_some(&lost);
            if let Err(e) = rustix::event::poll(&mut fds, timeout) {
                if e != rustix::io::Errno::INTR {
                    note(&format!("poll failed: {e}"));
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                continue;
            }
            let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
            drop(fds);
            // Connections before signals: a server that died may have left `hold`s in its
            // socket, to be read before its exit is seen (and a server restarted, which lists
            // what is held); oldest first, for the same reason. Removed after, in reverse, so
            // the indexes stay right.
            let closed: Vec<usize> = (0..self.conns.len())
                .filter(|&i| ready[i + 2] && !self.on_readable(i))
                .collect();
            for i in closed.into_iter().rev() {
                self.conns.remove(i);
            }
            if ready[0] {
                self.drain_signals();
                self.reap();
            }
            if displaced {
                self.take_back();
            }
            if ready[1] {
                self.accept();
            }
        }
        self.last_exit
    }

    /// After the runtime dir was deleted: bind again and lock again, as soon as each is free.
    fn take_back(&mut self) {
        if !self.owns_socket()
            && let Some(listener) = super::rebind(&self.dir, &mut self.lock)
        {
            self.listener = listener;
            self.socket_id = super::file_id(&super::socket_path(&self.dir));
        }
        super::relock(&self.dir, &mut self.lock);
    }

    /// Whether the socket file at our path is still the one we bound.
    pub fn owns_socket(&self) -> bool {
        self.socket_id.is_some() && super::file_id(&super::socket_path(&self.dir)) == self.socket_id
    }

    fn drain_signals(&self) {
        let mut buf = [0u8; 128 * 8];
        while matches!(rustix::io::read(&self.signals, &mut buf), Ok(n) if n > 0) {}
    }

    /// Reaps every ended child: the server, or a program orphaned to us (its status is kept
    /// while it is held; anything else is discarded).
    fn reap(&mut self) {
        while let Ok(Some((pid, status))) = rustix::process::wait(WaitOptions::NOHANG) {
            let pid = pid.as_raw_nonzero().get();
            let ended = Ended::from_wait(status);
            if self.server == Some(pid) {
                self.server = None;
                self.last_exit = match ended {
                    Some(Ended::Exited(code)) => code,
                    _ => 1,
                };
                note(&format!(
                    "server (pid {pid}) ended: {}",
                    ended.map_or("?".into(), |e| e.word())
                ));
                self.forget_gone();
                if let Some(exe) = self.upgrade_to.take() {
                    self.start_server(&exe);
                } else if ended.is_some_and(crashed) {
                    self.restart_after_crash();
                }
            } else if let Some(ended) = ended
                && self.held.ended(pid, ended)
            {
                note(&format!("program {pid} ended: {}", ended.word()));
            }
        }
    }

    /// After the server ended: programs it reaped itself before telling us (it crashed between
    /// the two) are gone without a status; holding them would keep the keeper forever.
    fn forget_gone(&mut self) {
        let gone: Vec<i32> = self
            .held
            .entries()
            .iter()
            .filter(|e| e.ended.is_none())
            .filter(|e| {
                // Signal 0 only asks whether the process exists; nothing is sent.
                Pid::from_raw(e.pid).is_some_and(|p| {
                    rustix::process::test_kill_process(p) == Err(rustix::io::Errno::SRCH)
                })
            })
            .map(|e| e.pid)
            .collect();
        for pid in gone {
            note(&format!(
                "program {pid} is gone without a status: forgotten"
            ));
            self.held.release(pid);
        }
    }

    fn accept(&mut self) {
        let Ok(conn) = rustix::net::accept_with(&self.listener, rustix::net::SocketFlags::CLOEXEC)
        else {
            return;
        };
        let uid = rustix::process::getuid();
        if !rustix::net::sockopt::socket_peercred(&conn).is_ok_and(|c| c.uid == uid) {
            note("refused a connection from another user");
            return;
        }
        // Replies are written blocking, but never for long: a peer that does not read is
        // dropped rather than stalling every program's keeper.
        let timeout = Some(std::time::Duration::from_secs(2));
        let _ = rustix::net::sockopt::set_socket_timeout(
            &conn,
            rustix::net::sockopt::Timeout::Send,
            timeout,
        );
        if self.conns.len() >= MAX_CONNECTIONS {
            let _ = wire::send(
                &conn,
                &format!("err the keeper serves {MAX_CONNECTIONS} connections already"),
                None,
            );
            return;
        }
        if wire::send(&conn, &format!("hello {}", wire::VERSION), None).is_ok() {
            self.conns.push(conn);
        }
    }

    /// Answers what connection `i` has sent so far (up to [`MESSAGES_PER_PASS`]); `false` when
    /// it is to be closed.
    fn on_readable(&mut self, i: usize) -> bool {
        // A handle of its own: answering needs `self` whole.
        let Ok(conn) = self.conns[i].try_clone() else {
            return false;
        };
        for _ in 0..MESSAGES_PER_PASS {
            let (line, fd) = match wire::recv(&conn, RecvFlags::DONTWAIT) {
                Ok(message) => message,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return false,
                Err(e) => {
                    let _ = wire::send(&conn, &format!("err {e}"), None);
                    return false;
                }
            };
            match self.answer(&conn, &line, fd) {
                Ok(()) => {}
                // The server died: it may have sent more before (its link does not wait for
                // answers), and each `hold` among them is a program to keep. Its connection
                // ends once the last message has been read.
                Err(e) if peer_gone(&e) => {}
                // Alive but not reading: a lost answer would pair every later one with the
                // wrong request.
                Err(_) => return false,
            }
        }
        true
    }

    fn answer(&mut self, conn: &OwnedFd, line: &str, fd: Option<OwnedFd>) -> std::io::Result<()> {
        let reply = |text: &str| wire::send(conn, text, None);
        let result = |r: Result<(), String>| match r {
            Ok(()) => reply("ok"),
            Err(e) => reply(&format!("err {e}")),
        };
        let words: Vec<&str> = line.split(' ').collect();
        match (&words[..], fd) {
            (["hold", pid, name], Some(fd)) => {
                let held = parse_pid(pid).and_then(|pid| self.held.hold(pid, name, fd));
                result(held)
            }
            (["release", pid], None) => result(parse_pid(pid).map(|pid| {
                self.held.release(pid);
            })),
            (["rename", pid, name], None) => {
                result(parse_pid(pid).and_then(|pid| self.held.rename(pid, name)))
            }
            (["status", pid], None) => match parse_pid(pid) {
                Ok(pid) => {
                    self.reap();
                    reply(&self.held.status(pid))
                }
                Err(e) => reply(&format!("err {e}")),
            },
            (["list"], None) => self.list(conn),
            (["start", ..], None) => {
                let started = self.start_if_none(Path::new(&line["start ".len()..]));
                reply(&started)
            }
            (["upgrade", ..], None) => reply(&self.upgrade(Path::new(&line["upgrade ".len()..]))),
            _ => {
                let shown: String = line.chars().take(40).collect();
                reply(&format!(
                    "err unknown request {shown:?} (keeper protocol {})",
                    wire::VERSION
                ))
            }
        }
    }

    /// One `held PID NAME STATE` message per program, each with its master, then `end`.
    fn list(&mut self, conn: &OwnedFd) -> std::io::Result<()> {
        self.reap();
        for entry in self.held.entries() {
            let state = entry.ended.map_or("running".into(), |e| e.word());
            let line = format!("held {} {} {state}", entry.pid, entry.name);
            wire::send(conn, &line, Some(entry.master.as_fd()))?;
        }
        wire::send(conn, "end", None)
    }

    fn start_if_none(&mut self, exe: &Path) -> String {
        // A server that just exited (`kill-server` returns once it has) may not be reaped yet:
        // its SIGCHLD can come after this request. Answering "running" for it would leave the
        // client waiting for a server nobody starts, and this keeper exiting.
        self.reap();
        if let Some(pid) = self.server.and_then(Pid::from_raw) {
            // The client found no server socket: it may have been deleted. SIGUSR1 asks the
            // server to bind it again (see server/ownership.rs); a no-op when it is there.
            if catches(pid, libc::SIGUSR1) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::USR1);
            }
            return "ok running".into();
        }
        match self.start_server(exe) {
            true => "ok started".into(),
            false => format!("err cannot start a server from {}", exe.display()),
        }
    }

    /// Asks the running server to hand over (SIGUSR2); the new one starts once it has exited.
    fn upgrade(&mut self, exe: &Path) -> String {
        let Some(pid) = self.server else {
            return self.start_if_none(exe);
        };
        let Some(server) = Pid::from_raw(pid) else {
            return format!("err the server's pid {pid} is not a process");
        };
        if !catches(server, libc::SIGUSR2) {
            return format!("err the server (pid {pid}) is still starting; try again");
        }
        self.upgrade_to = Some(exe.to_path_buf());
        match rustix::process::kill_process(server, rustix::process::Signal::USR2) {
            Ok(()) => format!("ok handing over from pid {pid}"),
            Err(e) => format!("err cannot signal the server (pid {pid}): {e}"),
        }
    }

    /// Starts the crashed server's binary again, when programs wait for it and crashes are not
    /// coming in a loop.
    fn restart_after_crash(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let Some(exe) = self.server_exe.clone() else {
            return;
        };
        let now = std::time::Instant::now();
        while self
            .restarts
            .front()
            .is_some_and(|t| now.duration_since(*t) > RESTART_WINDOW)
        {
            self.restarts.pop_front();
        }
        if self.restarts.len() >= MAX_RESTARTS {
            note(&format!(
                "the server crashed {MAX_RESTARTS} times within {}s: not restarting it; the \
                 next linger command starts one",
                RESTART_WINDOW.as_secs()
            ));
            return;
        }
        self.restarts.push_back(now);
        note("restarting the crashed server: it adopts the held programs");
        self.start_server(&exe);
    }

    /// Starts `linger server` from `exe` as our child; `false` when it cannot be started.
    pub fn start_server(&mut self, exe: &Path) -> bool {
        use std::os::unix::process::CommandExt;
        let mut cmd = std::process::Command::new(exe);
        cmd.arg("server")
            .env("LINGER_DIR", &self.dir)
            .env(super::ENV, "1")
            .stdin(std::process::Stdio::null());
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                // The server must see SIGCHLD (blocked here for the signalfd) and SIGHUP.
                crate::spawn::reset_signals();
                crate::spawn::close_inherited_fds();
                Ok(())
            });
        }
        match cmd.spawn() {
            Ok(child) => {
                let pid = child.id() as i32;
                note(&format!(
                    "started a server (pid {pid}) from {}",
                    exe.display()
                ));
                self.server = Some(pid);
                self.server_exe = Some(exe.to_path_buf());
                true
            }
            Err(e) => {
                note(&format!(
                    "cannot start a server from {}: {e}",
                    exe.display()
                ));
                self.last_exit = 1;
                false
            }
        }
    }
}

/// Whether a server's end was a crash: a signal, or a failure other than refusing to start
/// beside another server.
fn crashed(ended: Ended) -> bool {
    match ended {
        Ended::Killed(_) => true,
        Ended::Exited(code) => code != 0 && code != crate::server::REFUSED_EXIT,
    }
}

/// Whether `pid` has a handler for `signal`: a server still starting has none yet, and the
/// signal's default action would end it.
fn catches(pid: Pid, signal: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.as_raw_nonzero()));
    status
        .ok()
        .and_then(|s| {
            let mask = s
                .lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))?
                .trim()
                .to_string();
            u64::from_str_radix(&mask, 16).ok()
        })
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

fn parse_pid(word: &str) -> Result<i32, String> {
    word.parse::<i32>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("{word:?} is not a pid"))
}

/// Messages read from one connection before the others get their turn.
const MESSAGES_PER_PASS: usize = 256;

/// The other end has closed: what it sent before is still there to read.
fn peer_gone(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
    )
}
