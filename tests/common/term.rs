//! The user's terminal in tests: a process on a real pty, everything it printed, a screen
//! model of it (screen.rs), and a terminal's answers to the attach probe.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{DEADLINE, Screen, TERMINAL_BACKGROUND_ANSWER, contains, screen};

struct Shared {
    output: Mutex<Output_>,
    changed: Condvar,
    paused: std::sync::atomic::AtomicBool,
    /// Answers the terminal has written so far.
    answered: std::sync::atomic::AtomicUsize,
    /// The reader saw the end of the output (every process let go of the terminal), or
    /// stopped for a hang-up.
    ended: std::sync::atomic::AtomicBool,
    /// [`Term::hang_up`] asked the reader to let go of the terminal.
    hanging_up: std::sync::atomic::AtomicBool,
}

/// Everything the terminal received, and its screen model kept up to date as it arrives.
struct Output_ {
    bytes: Vec<u8>,
    parser: screen::Emulator,
}

/// A process on a pty, with everything it printed and a screen model of it.
pub struct Term {
    master: Arc<OwnedFd>,
    child: Child,
    shared: Arc<Shared>,
    rows: u16,
    cols: u16,
}

impl Term {
    pub fn spawn(cmd: Command, rows: u16, cols: u16) -> Term {
        Term::spawn_answering_after(cmd, rows, cols, Duration::ZERO)
    }

    /// Like [`Term::spawn`], for a terminal that answers queries `delay` late (a slow link).
    pub fn spawn_answering_after(mut cmd: Command, rows: u16, cols: u16, delay: Duration) -> Term {
        let (master, slave) = linger::pty::open_pair(rows, cols).expect("pty");
        let flags = rustix::fs::fcntl_getfl(&master).expect("getfl");
        rustix::fs::fcntl_setfl(&master, flags - rustix::fs::OFlags::NONBLOCK).expect("setfl");
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave));
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(std::io::stdin())?;
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on pty");
        drop(cmd);
        let master = Arc::new(master);
        let shared = Arc::new(Shared {
            output: Mutex::new(Output_ {
                bytes: Vec::new(),
                parser: screen::Emulator::new(rows, cols),
            }),
            changed: Condvar::new(),
            paused: Default::default(),
            answered: Default::default(),
            ended: Default::default(),
            hanging_up: Default::default(),
        });
        let (reader_fd, reader_shared) = (master.clone(), shared.clone());
        std::thread::spawn(move || read_terminal(&reader_fd, &reader_shared, delay));
        Term {
            master,
            child,
            shared,
            rows,
            cols,
        }
    }

    /// How many times the terminal answered queries so far.
    pub fn answers_written(&self) -> usize {
        self.shared.answered.load(Ordering::SeqCst)
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Whether the process on this terminal is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops (or resumes) reading the terminal, like a terminal that takes no output (a
    /// stalled ssh): the program's writes block once the pty's buffer is full.
    pub fn pause_reading(&self, paused: bool) {
        self.shared
            .paused
            .store(paused, std::sync::atomic::Ordering::SeqCst);
        self.shared.changed.notify_all();
    }

    pub fn write(&self, bytes: &[u8]) {
        let mut file = std::fs::File::from(self.master.try_clone().expect("dup"));
        file.write_all(bytes).expect("write to pty");
    }

    pub fn output(&self) -> Vec<u8> {
        self.shared
            .output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .bytes
            .clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output()).into_owned()
    }

    /// The screen as the user's terminal would show it.
    pub fn screen(&self) -> Screen {
        self.shared
            .output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .parser
            .screen()
    }

    /// What the user's terminal scrolled into its own scrollback, oldest first.
    pub fn scrollback(&self) -> Vec<String> {
        self.shared
            .output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .parser
            .scrollback()
    }

    pub fn screen_text(&self) -> String {
        self.screen().contents()
    }

    /// Waits until everything printed so far satisfies `pred`.
    pub fn wait_output(&self, what: &str, pred: impl Fn(&[u8]) -> bool) {
        self.wait_until(what, |o| pred(&o.bytes));
    }

    fn wait_until(&self, what: &str, pred: impl Fn(&Output_) -> bool) {
        let start = Instant::now();
        let mut guard = self.shared.output.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if pred(&guard) {
                return;
            }
            let left = DEADLINE.checked_sub(start.elapsed()).unwrap_or_else(|| {
                let tail = &guard.bytes[guard.bytes.len().saturating_sub(4000)..];
                panic!(
                    "timed out waiting for {what}; screen:\n{}\nlast output:\n{}",
                    guard.parser.screen().contents(),
                    String::from_utf8_lossy(tail)
                )
            });
            guard = self
                .shared
                .changed
                .wait_timeout(guard, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    pub fn wait_text(&self, needle: &str) {
        self.wait_output(&format!("{needle:?}"), |o| {
            String::from_utf8_lossy(o).contains(needle)
        });
    }

    /// Waits until the emulated screen satisfies `pred`.
    pub fn wait_screen(&self, what: &str, pred: impl Fn(&Screen) -> bool) {
        self.wait_until(what, |o| pred(&o.parser.screen()));
    }

    /// Resizes the terminal: its screen first (reflowing as alacritty does), then the pty.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.shared
            .output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .parser
            .resize(rows, cols);
        rustix::termios::tcsetwinsize(&*self.master, linger::pty::winsize(rows, cols))
            .expect("resize");
        self.rows = rows;
        self.cols = cols;
    }

    /// Waits for the process to exit.
    /// Waits until the client exits and its last output was read (what it printed on its way
    /// out is on the screen then).
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.wait_output_end();
                return status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "client did not exit; output:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most a second: a program the client started may hold the terminal too) until
    /// the reader has seen the end of the output.
    fn wait_output_end(&self) {
        self.wait_reader_done(Duration::from_secs(1));
    }

    /// Waits at most `within` until the reader has stopped; whether it has.
    fn wait_reader_done(&self, within: Duration) -> bool {
        let until = Instant::now() + within;
        let mut out = self.shared.output.lock().unwrap_or_else(|p| p.into_inner());
        while !self.shared.ended.load(Ordering::SeqCst) && Instant::now() < until {
            out = self
                .shared
                .changed
                .wait_timeout(out, Duration::from_millis(20))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        self.shared.ended.load(Ordering::SeqCst)
    }

    /// Whether the terminal's output ended: every process that had the terminal open (the
    /// client, and anything it passed the terminal to) has closed it.
    pub fn output_ended(&self) -> bool {
        self.shared.ended.load(Ordering::SeqCst)
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    pub fn master_fd(&self) -> i32 {
        self.master.as_raw_fd()
    }

    /// Closes the terminal, as when ssh drops or the window is closed: the reader lets go of
    /// it, then the last descriptor of the pty's master is closed, so the kernel hangs up the
    /// terminal and sends SIGHUP to the process on it.
    pub fn hang_up(&self) {
        self.shared.hanging_up.store(true, Ordering::SeqCst);
        assert!(self.wait_reader_done(DEADLINE), "the reader did not let go");
        // dup2 over the master closes it and leaves the number to /dev/null, which the
        // OwnedFd then closes as usual.
        let null = std::fs::File::open("/dev/null").expect("open /dev/null");
        // SAFETY: dup2(2) onto a descriptor this Term owns.
        let rc = unsafe { libc::dup2(null.as_raw_fd(), self.master.as_raw_fd()) };
        assert!(rc >= 0, "dup2 over the pty's master");
    }
}

impl Drop for Term {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The terminal's side of the pty: keeps what the program printed and its screen up to date,
/// and answers the attach probe, until every process has let go of the terminal.
fn read_terminal(master: &Arc<OwnedFd>, shared: &Arc<Shared>, delay: Duration) {
    let mut file = std::fs::File::from(master.try_clone().expect("dup"));
    let mut buf = [0u8; 65536];
    loop {
        while shared.paused.load(Ordering::SeqCst) {
            let guard = shared.output.lock().unwrap_or_else(|p| p.into_inner());
            let _ = shared
                .changed
                .wait_timeout(guard, Duration::from_millis(20));
        }
        if !wait_readable(&file, &shared.hanging_up) {
            break;
        }
        let n = match file.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut out = shared.output.lock().unwrap_or_else(|p| p.into_inner());
        out.bytes.extend_from_slice(&buf[..n]);
        out.parser.process(&buf[..n]);
        drop(out);
        answer_probe(&buf[..n], &file, master, shared, delay);
        shared.changed.notify_all();
    }
    drop(file);
    shared.ended.store(true, Ordering::SeqCst);
    shared.changed.notify_all();
}

/// Waits until the terminal has something to read (or hung up); false once a hang-up was
/// asked for, looked at every 20 ms.
fn wait_readable(file: &std::fs::File, hanging_up: &std::sync::atomic::AtomicBool) -> bool {
    use rustix::event::{PollFd, PollFlags, Timespec};
    let timeout = Timespec {
        tv_sec: 0,
        tv_nsec: 20_000_000,
    };
    loop {
        if hanging_up.load(Ordering::SeqCst) {
            return false;
        }
        let mut fds = [PollFd::new(file, PollFlags::IN)];
        match rustix::event::poll(&mut fds, Some(&timeout)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            _ => return true,
        }
    }
}

/// Like a real terminal, answers the attach probe's background colour query and its DA1
/// sentinel, in that order; the emulator answers nothing else. (Programs' queries never get
/// here: linger answers them.)
fn answer_probe(
    received: &[u8],
    mut file: &std::fs::File,
    master: &Arc<OwnedFd>,
    shared: &Arc<Shared>,
    delay: Duration,
) {
    let mut answer = Vec::new();
    if contains(received, b"\x1b]11;?") {
        answer.extend_from_slice(TERMINAL_BACKGROUND_ANSWER);
    }
    if contains(received, b"\x1b[c") {
        answer.extend_from_slice(b"\x1b[?62;22c");
    }
    if answer.is_empty() {
        return;
    }
    if delay.is_zero() {
        let _ = file.write_all(&answer);
        shared.answered.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let mut out = std::fs::File::from(master.try_clone().expect("dup"));
    let shared = shared.clone();
    // A slow terminal's answer is late by its nature, not a wait for anything: nothing waits
    // on this thread.
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        let _ = out.write_all(&answer);
        shared.answered.fetch_add(1, Ordering::SeqCst);
    });
}
