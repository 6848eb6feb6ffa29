//! Arbitrary bytes as a session's output: the model survives and its replay rebuilds it.
//! See `checks.rs`.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(e) = checks::check_model(data) {
        panic!("{e}");
    }
});
