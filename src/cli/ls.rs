//! `ls`: the session table and its JSON form.

use std::time::Duration;

use super::{Failure, print_out};
use crate::client::Client;
use crate::protocol::{SessionInfo, SessionState};

fn age(now_ms: u64, then_ms: u64) -> String {
    let secs = now_ms.saturating_sub(then_ms) / 1000;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d", secs / 86_400),
    }
}

/// Latest time RFC 3339 can write (9999-12-31T23:59:59.999Z), in unix milliseconds.
const MAX_RFC3339_MS: u64 = 253_402_300_799_999;

/// A timestamp for JSON; `None` (null) for one past year 9999, which only a damaged or
/// hand-edited record can hold (humantime panics on those).
fn rfc3339(ms: u64) -> Option<String> {
    if ms > MAX_RFC3339_MS {
        return None;
    }
    let time = std::time::UNIX_EPOCH.checked_add(Duration::from_millis(ms))?;
    Some(humantime::format_rfc3339_millis(time).to_string())
}

/// The state as one word; the exit code and signal are fields of their own.
fn state_word(state: &SessionState) -> &'static str {
    match state {
        SessionState::Running => "running",
        SessionState::Exited(_) => "exited",
        SessionState::Killed(_) => "killed",
        SessionState::Lost => "lost",
        SessionState::Broken => "broken",
    }
}

/// The COMMAND column: what the terminal runs in the foreground when that is another process
/// than the session's own (a shell running vim shows vim). The session's own process keeps
/// its command as given: `/proc` would show `node .../claude` for `claude`.
fn command_cell(s: &SessionInfo) -> String {
    let command = match &s.foreground {
        Some(fg) if !fg.command.is_empty() && fg.pid != s.pid => fg.command.join(" "),
        _ => s.command.join(" "),
    };
    // One row per session: a newline or tab in a script shows escaped (`--json` has it as is).
    crate::paths::escape_controls(command.chars())
}

fn session_json(s: &SessionInfo) -> serde_json::Value {
    let (exit_code, signal) = match s.state {
        SessionState::Exited(code) => (Some(code), None),
        SessionState::Killed(sig) => (None, Some(crate::signals::name(sig))),
        SessionState::Running | SessionState::Lost | SessionState::Broken => (None, None),
    };
    let running = s.state == SessionState::Running;
    serde_json::json!({
        "name": s.name,
        "state": state_word(&s.state),
        "pid": running.then_some(s.pid),
        "command": s.command,
        "cwd": s.cwd,
        "clients": s.clients,
        "created_at": rfc3339(s.created_at),
        "last_output_at": rfc3339(s.last_output_at),
        "exit_code": exit_code,
        "signal": signal,
        "rows": s.rows,
        "cols": s.cols,
        "last_seen_at": (s.state == SessionState::Lost).then(|| rfc3339(s.last_output_at)),
        "notes": s.notes,
        "resume_command": s.resume_command,
        "persist_error": s.persist_error,
        "broken_reason": (s.state == SessionState::Broken).then_some(&s.persist_error),
        "foreground": s.foreground.as_ref().map(|f| serde_json::json!({
            "pid": f.pid,
            "command": f.command,
            "cwd": f.cwd,
        })),
        "agent": s.agent.as_ref().map(|a| serde_json::json!({
            "kind": a.kind,
            "state": a.state.label(),
            "reason": a.reason,
            "since": rfc3339(a.since),
        })),
        "queue": s.queue,
    })
}

/// `waiting: permission`, `working 3m`, `idle 12s`; `-` when the program does not run.
fn agent_cell(s: &SessionInfo, now: u64) -> String {
    let Some(agent) = &s.agent else {
        return "-".into();
    };
    match (&agent.reason, agent.state) {
        (Some(reason), crate::protocol::AgentState::Waiting) => format!("waiting: {reason}"),
        (_, state) => format!("{} {}", state.label(), age(now, agent.since)),
    }
}

/// `has NAME`: exit 0 when the session exists in any state, 1 when not; prints nothing.
pub(crate) async fn has(name: &str) -> Result<i32, Failure> {
    if crate::paths::validate_session_name(name).is_err() {
        return Ok(1);
    }
    let sessions = match Client::existing().await? {
        Some(client) => client.list().await?,
        None => {
            return Ok(if super::saved_names().iter().any(|n| n == name) {
                0
            } else {
                1
            });
        }
    };
    Ok(if sessions.iter().any(|s| s.name == name) {
        0
    } else {
        1
    })
}

pub(crate) async fn ls(json: bool) -> Result<i32, Failure> {
    // Starting the server (only when sessions are saved) is what turns sessions of a dead
    // server into `lost` ones.
    let sessions = match super::server_if_any().await? {
        Some(client) => client.list().await?,
        None => Vec::new(),
    };
    if json {
        let list: Vec<_> = sessions.iter().map(session_json).collect();
        print_out(&format!("{}\n", serde_json::Value::Array(list)))?;
        return Ok(0);
    }
    if sessions.is_empty() {
        return Ok(0);
    }
    let now = crate::server::session::unix_millis();
    let rows: Vec<[String; 9]> = sessions
        .iter()
        .map(|s| {
            let running = s.state == SessionState::Running;
            let dash = || "-".to_string();
            [
                s.name.clone(),
                s.state.label(),
                if running { s.pid.to_string() } else { dash() },
                s.clients.to_string(),
                age(now, s.created_at),
                if running {
                    age(now, s.last_output_at)
                } else {
                    dash()
                },
                agent_cell(s, now),
                if s.queue > 0 {
                    s.queue.to_string()
                } else {
                    dash()
                },
                command_cell(s),
            ]
        })
        .collect();
    let header = [
        "NAME", "STATE", "PID", "CLIENTS", "CREATED", "IDLE", "AGENT", "QUEUE", "COMMAND",
    ];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut print = |cells: &[&str]| {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    print(&header);
    for row in &rows {
        let cells: Vec<&str> = row.iter().map(String::as_str).collect();
        print(&cells);
    }
    print_out(&out)?;
    Ok(0)
}
