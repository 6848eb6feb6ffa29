//! Where linger keeps its runtime files, and the ownership and permission checks on them.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The runtime dir: `LINGER_DIR`, else `$XDG_RUNTIME_DIR/linger`, else `/tmp/linger-$UID`.
pub fn runtime_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("LINGER_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("linger");
    }
    PathBuf::from(format!(
        "/tmp/linger-{}",
        rustix::process::getuid().as_raw()
    ))
}

pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("server.sock")
}

pub fn lock_path(dir: &Path) -> PathBuf {
    dir.join("server.lock")
}

/// Holds the running server's pid, for tools and tests that watch it.
pub fn pid_path(dir: &Path) -> PathBuf {
    dir.join("server.pid")
}

pub fn log_path(dir: &Path) -> PathBuf {
    dir.join("server.log")
}

/// Creates `dir` (mode 0700) when missing, then refuses it unless it is a real directory owned
/// by us and closed to group and others. Never changes the permissions of an existing dir: a
/// loosened dir may mean someone else got in, and the user should look.
pub fn ensure_private_dir(dir: &Path) -> Result<(), String> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
    }
    check_private_dir(dir)
}

pub fn check_private_dir(dir: &Path) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("cannot inspect {}: {e}", dir.display()))?;
    if meta.file_type().is_symlink() {
        return Err(format!(
            "{} is a symbolic link; linger needs a real directory there (point LINGER_DIR or \
             LINGER_STATE_DIR at the target, or remove the link)",
            dir.display()
        ));
    }
    if !meta.file_type().is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let me = rustix::process::getuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "{} is owned by uid {}, not you (uid {me}); refusing to use it",
            dir.display(),
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} has mode {mode:03o} and is open to other users; run `chmod 700 {}` if that was not intended",
            dir.display(),
            dir.display()
        ));
    }
    Ok(())
}

/// Text as written (`ü`, not `\u{fc}`) but for control characters, escaped (`\n`): for
/// showing user-given names and commands on one line.
pub fn escape_controls(text: impl Iterator<Item = char>) -> String {
    text.flat_map(|c| {
        let shown: Vec<char> = if c.is_control() {
            c.escape_default().collect()
        } else {
            vec![c]
        };
        shown
    })
    .collect()
}

/// Session names: `[A-Za-z0-9._-]{1,64}`, not starting with `.` or `-`.
pub fn validate_session_name(name: &str) -> Result<(), String> {
    let mut shown = escape_controls(name.chars().take(40));
    if name.chars().nth(40).is_some() {
        shown.push('…');
    }
    if name.is_empty() || name.len() > 64 {
        return Err(format!(
            "invalid session name '{shown}' ({} bytes): must be 1 to 64 characters",
            name.len()
        ));
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(format!(
            "invalid session name '{shown}': must not start with '.' or '-'"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "invalid session name '{shown}': use only letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_session_name as v;

    #[test]
    fn session_names() {
        assert!(v("main").is_ok());
        assert!(v("a.b_c-1").is_ok());
        assert!(v("").is_err());
        assert!(v(".hidden").is_err());
        assert!(v("-x").is_err());
        assert!(v("a/b").is_err());
        assert!(v("..").is_err());
        assert!(v(&"x".repeat(65)).is_err());
        assert!(v("tab\there").is_err());
        let long = v(&"x".repeat(65)).expect_err("too long");
        assert!(
            long.contains(&format!("'{}…' (65 bytes)", "x".repeat(40))),
            "{long}"
        );
    }
}
