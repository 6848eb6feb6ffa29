//! Arbitrary bytes as frame bodies and as a byte stream of frames. See `checks.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = checks::check_frames(data) {
        panic!("{e}");
    }
});
