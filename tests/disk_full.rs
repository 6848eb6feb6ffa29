//! A state dir on a full disk: the session carries on, `ls` says why it is not saved while that
//! lasts, and saving resumes by itself once there is room (needs root for a small tmpfs; skips
//! visibly otherwise).

mod common;

use common::{Env, eventually};

/// A small tmpfs mounted as the test's state dir (linger itself runs through `common::Env`,
/// which gives every command its own `LINGER_DIR`, `LINGER_STATE_DIR` and `HOME`).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn persist_error(env: &Env, name: &str) -> Option<String> {
    common::listed(env, name)?["persist_error"]
        .as_str()
        .map(String::from)
}

#[test]
fn saving_resumes_once_a_full_disk_has_room_again() {
    let env = Env::new();
    let Some(_tmpfs) = Tmpfs::mount(&env.state, "1m") else {
        eprintln!(
            "SKIPPED saving_resumes_once_a_full_disk_has_room_again: needs root to mount a tmpfs"
        );
        return;
    };
    // Fill the disk almost up, then let the program's output do the rest.
    let filler = env.state.join("filler");
    let _ = std::fs::write(&filler, vec![b'f'; 900 * 1024]);
    env.ok(&[
        "new",
        "-d",
        "full",
        "--scrollback",
        "100000",
        "--",
        "sh",
        "-c",
        "seq 1 100000; echo FLOOD-DONE; read go; echo AFTER-ROOM; exec sleep 1000",
    ]);
    let reason = eventually("the disk to fill and ls to say so", || {
        persist_error(&env, "full")
    });
    assert!(reason.contains("No space left"), "{reason}");
    // The session is unaffected.
    env.ok(&["wait", "full", "--text", "FLOOD-DONE", "--timeout", "20s"]);
    let refused = env.run(&["note", "full", "remember this"]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a note that could not be saved says so"
    );
    std::fs::remove_file(&filler).expect("free the room");
    eventually("saving to resume by itself", || {
        persist_error(&env, "full").is_none().then_some(())
    });
    env.ok(&["note", "full", "remember this"]);
    let record =
        std::fs::read_to_string(env.state.join("sessions/full/meta.json")).expect("the record");
    assert!(record.contains("remember this"), "{record}");
    env.ok(&["send", "full", "--enter", "go"]);
    eventually("new output to reach the log", || {
        let log = std::fs::read_to_string(env.state.join("sessions/full/screen.txt")).ok()?;
        log.contains("AFTER-ROOM").then_some(())
    });
}
