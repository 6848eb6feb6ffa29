//! Hooks: the config file's commands run on session events (`notify-send` on attention, say),
//! by one task subscribed to the event bus, never by a session.
//!
//! A hook runs through `sh -c` in its own process group, with stdin, stdout and stderr on
//! /dev/null, and is killed (the whole group) after its timeout. At most [`MAX_RUNNING`] run
//! at once; an event that finds them all busy skips its hook (logged) rather than queue
//! behind a hook that hangs. Nothing waits for a hook.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, broadcast};

use super::{events, settings};
use crate::log;
use crate::protocol::Event;

/// Hooks running at once, at most.
pub const MAX_RUNNING: usize = 8;

/// Starts the hook runner; call before anything emits events.
pub fn start() {
    let rx = events::subscribe();
    tokio::spawn(run(rx));
}

async fn run(mut rx: broadcast::Receiver<Event>) {
    let running = Arc::new(Semaphore::new(MAX_RUNNING));
    loop {
        let event = match rx.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                log::warn(&format!("hooks fell behind: {n} events got no hook"));
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if settings::due() {
            let _ = tokio::task::spawn_blocking(settings::reload_blocking).await;
        }
        let settings = settings::current();
        let Some(command) = settings.hooks.command(&event.kind) else {
            continue;
        };
        let timeout = settings.hook_timeout.unwrap_or(settings::HOOK_TIMEOUT);
        let Ok(permit) = running.clone().try_acquire_owned() else {
            log::warn(&format!(
                "hook for {} of session {} skipped: {MAX_RUNNING} hooks are still running",
                event.kind, event.session
            ));
            continue;
        };
        let command = command.to_string();
        tokio::spawn(async move {
            run_one(&command, &event, timeout).await;
            drop(permit);
        });
    }
}

async fn run_one(command: &str, event: &Event, timeout: Duration) {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .env("LINGER_SESSION", &event.session)
        .env("LINGER_EVENT", &event.kind)
        .env("LINGER_STATE", event.state.as_deref().unwrap_or(""))
        .env("LINGER_REASON", event.reason.as_deref().unwrap_or(""))
        .env("LINGER_MESSAGE", event.message.as_deref().unwrap_or(""))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let what = format!("{} hook for session {}", event.kind, event.session);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            log::warn(&format!("{what}: cannot start sh: {e}"));
            return;
        }
    };
    let pid = child.id();
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) if status.success() => {}
        Ok(Ok(status)) => log::warn(&format!("{what} failed: {status}")),
        Ok(Err(e)) => log::warn(&format!("{what}: {e}")),
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: kill(2) on the hook's own process group (it was made its leader).
                unsafe {
                    libc::kill(-(pid as i32), libc::SIGKILL);
                }
            }
            let _ = child.wait().await;
            log::warn(&format!(
                "{what} ran longer than {} and was killed",
                humantime::format_duration(timeout)
            ));
        }
    }
}
