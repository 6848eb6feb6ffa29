//! The `linger` binary, entered straight from the C runtime rather than through Rust's
//! `lang_start`.
//!
//! Every command is a process of its own (agents run `send`, `capture`, `wait` in loops), so
//! start-up is paid per command. `lang_start` spends most of its time finding the main thread's
//! stack for its stack-overflow message (glibc reads and parses `/proc/self/maps`), which we do
//! without: about 0.1-0.2 ms of a 1.2-1.4 ms start (docs/BENCHMARKS.md). What else it does is
//! done here: no standard descriptor is left closed, SIGPIPE is ignored (writes say EPIPE), a
//! panic ends the process with status 101, and stdout is flushed by `process::exit`. A stack
//! overflow still stops the process (guard pages), without the message.
// The test harness (`cargo test` builds this crate's tests too) brings its own `main`.
#![cfg_attr(not(test), no_main)]

#[cfg(not(test))]
#[unsafe(no_mangle)]
pub extern "C" fn main(
    _argc: std::ffi::c_int,
    _argv: *const *const std::ffi::c_char,
) -> std::ffi::c_int {
    open_standard_fds();
    // SAFETY: setting a signal's disposition to SIG_IGN, before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // The panic hook has printed the message by the time the unwinding is caught.
    let code = std::panic::catch_unwind(linger::cli::main).unwrap_or(101);
    std::process::exit(code)
}

/// Opens /dev/null on any of descriptors 0-2 that is closed, so no file this process opens
/// later becomes its stdin, stdout or stderr (and gets what was meant for them).
#[cfg(not(test))]
fn open_standard_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: poll(2) on a local array of three entries, without waiting.
    if unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) } < 0 {
        return;
    }
    for pfd in fds {
        if pfd.revents & libc::POLLNVAL != 0 {
            // SAFETY: open(2) with a constant NUL-terminated path; the lowest free descriptor,
            // the closed one, is taken and kept for the process's life.
            if unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) } < 0 {
                std::process::abort();
            }
        }
    }
}
