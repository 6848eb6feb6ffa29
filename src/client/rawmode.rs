//! Raw mode for the user's terminal, undone on every way out: drop, panic or signal.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long the reset may take to reach a terminal that does not take output (flow control,
/// a dead ssh) before the client gives up on it and exits anyway.
const RESET_WRITE_WAIT: Duration = Duration::from_millis(300);

/// Turns off what apps leave on: alternate screen, mouse modes, bracketed paste, focus events,
/// kitty keyboard flags, scroll region, hidden cursor, key modes, autowrap off, insert mode, a
/// line-drawing charset, an unfinished synchronized update, modifyOtherKeys, attributes. (The
/// last SGR also undoes a terminal that took `CSI > 4 m` for plain SGR 4.)
pub const TERMINAL_RESET: &[u8] =
    b"\x1b[?1049l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[?1015l\
\x1b[?2004l\x1b[?1004l\x1b[<99u\x1b7\x1b[r\x1b8\x1b[?1l\x1b>\x1b[?25h\x1b[0 q\
\x1b[?7h\x1b[4l\x1b(B\x0f\x1b[?2026l\x1b[>4m\x1b[m";

static ACTIVE: AtomicBool = AtomicBool::new(false);

pub struct RawMode(());

impl RawMode {
    pub fn enable() -> Result<RawMode, String> {
        crossterm::terminal::enable_raw_mode()
            .map_err(|e| format!("cannot put the terminal in raw mode: {e}"))?;
        ACTIVE.store(true, Ordering::SeqCst);
        install_panic_hook();
        Ok(RawMode(()))
    }
}

/// Writes to the terminal through the raw fd: never through std's `Stdout`, whose lock a
/// blocked writer would hold, and never panicking.
pub fn write_all_stdout(mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(rustix::stdio::stdout(), data) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Puts raw mode back after the client was stopped and continued (`fg`): the shell ran the
/// terminal in its own mode meanwhile. Only while raw mode is on: never after a restore.
pub fn reapply() {
    if !ACTIVE.load(Ordering::SeqCst) {
        return;
    }
    let stdin = rustix::stdio::stdin();
    if let Ok(mut mode) = rustix::termios::tcgetattr(stdin) {
        mode.make_raw();
        let _ = rustix::termios::tcsetattr(stdin, rustix::termios::OptionalActions::Now, &mode);
    }
}

/// Puts the terminal back; safe to call more than once. The mode reset is written from a
/// thread of its own and waited for briefly, so a blocked terminal cannot keep the client
/// from exiting; cooked mode comes back either way.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = write_all_stdout(TERMINAL_RESET);
            let _ = tx.send(());
        });
        let _ = rx.recv_timeout(RESET_WRITE_WAIT);
        let _ = crossterm::terminal::disable_raw_mode();
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        restore();
    }
}

fn install_panic_hook() {
    static INSTALLED: AtomicBool = AtomicBool::new(false);
    if INSTALLED.swap(true, Ordering::SeqCst) {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore();
        previous(info);
    }));
}
