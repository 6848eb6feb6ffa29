//! Starting a session's program off the server's async thread, and waiting (bounded) for the
//! keeper to have its terminal before `new` answers.

use std::path::PathBuf;
use std::time::Duration;

use super::session;
use crate::log;

/// How long `new` waits for the keeper to take a program's terminal before answering anyway.
const KEEPER_ACK: Duration = Duration::from_secs(1);

/// Waits (bounded) until the keeper's socket has the new program's terminal, so a server that
/// crashes once `new` or `revive` has answered leaves that program to be adopted. Sent in order
/// behind any `release`, so an ended program of the same name is gone from the keeper by then.
pub(super) async fn held_by_keeper(name: &str, held: tokio::sync::oneshot::Receiver<()>) {
    if tokio::time::timeout(KEEPER_ACK, held).await.is_err() {
        log::warn(&format!(
            "session {name}: the keeper did not take its terminal within {}s; \
             it may not survive a crash of this server",
            KEEPER_ACK.as_secs()
        ));
    }
}

/// What starting a session's program gave: its spec back, and the program with the receipt
/// of its terminal's hand-over to the keeper, or the error in the user's terms.
pub(super) type Started = (
    crate::protocol::SessionSpec,
    Result<
        (
            crate::spawn::Spawned,
            Option<tokio::sync::oneshot::Receiver<()>>,
        ),
        String,
    >,
);

/// Starts `spec`'s program on a blocking thread, and answers as soon as it is cloned: its exec
/// (a millisecond or more, and the new program's own start-up beside it) is not waited for,
/// so `linger new` answers sooner. The thread then waits for the exec to free what the child
/// read.
pub(super) fn start_program(
    spec: crate::protocol::SessionSpec,
    runtime_dir: PathBuf,
    keeper: Option<crate::keeper::link::Link>,
) -> tokio::sync::oneshot::Receiver<Started> {
    let (answer, answered) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        // The error is worded here: it may look at the disk.
        let (started, launch) = match session::spawn_program(&spec, &runtime_dir) {
            Ok((spawned, launch)) => {
                // Handed to the keeper from here, so its sending overlaps the actor's building.
                let held = keeper
                    .as_ref()
                    .map(|k| k.hold(spawned.child.id(), &spec.name, &spawned.master));
                (Ok((spawned, held)), Some(launch))
            }
            Err(e) => (Err(session::spawn_error(&spec, &e)), None),
        };
        let _ = answer.send((spec, started));
        if let Some(launch) = launch {
            launch.finish();
        }
    });
    answered
}
