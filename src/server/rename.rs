//! Renaming a session: its registry entry and its directory on disk move together.

use std::path::{Path, PathBuf};

use super::Registry;

impl Registry {
    /// Moves the entry of `old` (the one with `pid`) to `new`; fails if `new` is taken.
    pub fn rename(&self, old: &str, new: &str, pid: u32) -> Result<(), String> {
        let mut map = self.lock();
        if map.contains_key(new) {
            return Err(format!("session '{new}' already exists"));
        }
        match map.remove(old) {
            Some(entry) if entry.pid == pid => {
                map.insert(new.to_string(), entry);
                Ok(())
            }
            Some(entry) => {
                map.insert(old.to_string(), entry);
                Err(format!("session '{old}' was replaced while renaming it"))
            }
            None => Err(format!("no session named '{old}'")),
        }
    }
}

/// Renames a session in the registry and, when it has one, its directory on disk; on a disk
/// failure the registry is put back. Returns the new directory.
pub fn rename_session(
    registry: &Registry,
    old: &str,
    new: &str,
    pid: u32,
    dir: Option<&Path>,
) -> Result<Option<PathBuf>, String> {
    crate::paths::validate_session_name(new)?;
    registry.rename(old, new, pid)?;
    let Some(dir) = dir else {
        return Ok(None);
    };
    let target = dir.with_file_name(new);
    let moved = if target.exists() {
        Err(format!(
            "{} already exists on disk; remove it or pick another name",
            target.display()
        ))
    } else {
        std::fs::rename(dir, &target).map_err(|e| format!("cannot rename {}: {e}", dir.display()))
    };
    if let Err(e) = moved {
        let _ = registry.rename(new, old, pid);
        return Err(e);
    }
    Ok(Some(target))
}
