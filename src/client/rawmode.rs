//! Raw mode for the user's terminal, undone on every way out: drop, panic or signal.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Turns off what apps leave on: alternate screen, mouse modes, bracketed paste, focus events,
/// kitty keyboard flags, scroll region, hidden cursor, key modes, attributes.
pub const TERMINAL_RESET: &[u8] =
    b"\x1b[?1049l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[?1015l\
\x1b[?2004l\x1b[?1004l\x1b[<99u\x1b7\x1b[r\x1b8\x1b[?1l\x1b>\x1b[?25h\x1b[0 q\x1b[m";

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

/// Puts the terminal back; safe to call more than once.
pub fn restore() {
    if ACTIVE.swap(false, Ordering::SeqCst) {
        let mut out = std::io::stdout();
        let _ = out.write_all(TERMINAL_RESET);
        let _ = out.flush();
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
