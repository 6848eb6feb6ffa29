//! Links gcc's unwinder into the binaries (`libgcc_eh.a`) instead of loading `libgcc_s.so`.
//!
//! Every `linger` command is a process of its own (`new`, `send`, `capture`, `wait` in an
//! agent's loop), so its start-up is paid per command. Loading `libgcc_s` costs its mapping and
//! its constructor, which probes the CPU (`cpuid`, a trap under a hypervisor): about 0.18 ms of
//! a 1.25 ms start for a hello-world here (docs/BENCHMARKS.md). Rust's std asks for `gcc_s`;
//! naming the static unwinder first lets the linker resolve the unwinding symbols there and
//! drop `libgcc_s` (the link uses `--as-needed`). Panics and backtraces work the same.
//!
//! Only where it cannot go wrong: a native Linux/glibc build whose C compiler has
//! `libgcc_eh.a`. Anywhere else nothing changes.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let native = var("HOST") == var("TARGET");
    let linux_gnu = var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu";
    // A static build (`+crt-static`) links the unwinder statically already.
    let crt_static = var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static");
    if !native || !linux_gnu || crt_static {
        return;
    }
    if static_unwinder_available() {
        // `-bundle`: named on the final link (before std's `gcc_s`), not packed into the rlib.
        println!("cargo:rustc-link-lib=static:-bundle=gcc_eh");
    }
}

/// Whether the C compiler (which rustc links with) can find `libgcc_eh.a`: it prints the
/// archive's full path when it has one, and the bare name when not.
fn static_unwinder_available() -> bool {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let Ok(out) = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return false;
    };
    let printed = String::from_utf8_lossy(&out.stdout);
    let path = Path::new(printed.trim());
    out.status.success() && path.is_absolute() && path.is_file()
}
