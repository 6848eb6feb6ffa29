//! Commands that manage sessions and the server: kill, stop, rename, revive, note, detach,
//! kill-server, and the hidden connection test aid.

use std::time::Duration;

use super::create::working_dir;
use super::send::read_stdin;
use super::{Failure, existing_for, fail, print_out, usage};
use crate::client::Client;

fn parse_signal(signal: Option<String>) -> Result<Option<i32>, Failure> {
    signal
        .map(|s| crate::signals::parse(&s))
        .transpose()
        .map_err(usage)
}

pub(crate) async fn kill(
    name: Option<String>,
    signal: Option<String>,
    lost: bool,
    exited: bool,
) -> Result<i32, Failure> {
    let signal = parse_signal(signal)?;
    if let Some(name) = name.filter(|_| !lost && !exited) {
        existing_for(&name).await?.kill(&name, signal).await?;
        return Ok(0);
    }
    let forgotten = match super::server_if_any().await? {
        Some(client) if exited => client.kill_exited().await?,
        Some(client) => client.kill_lost().await?,
        None => 0,
    };
    print_out(&format!(
        "forgot {forgotten} {} session{}\n",
        if exited { "exited" } else { "lost" },
        if forgotten == 1 { "" } else { "s" }
    ))?;
    Ok(0)
}

pub(crate) async fn stop(name: String, signal: Option<String>) -> Result<i32, Failure> {
    let signal = parse_signal(signal)?;
    existing_for(&name).await?.stop(&name, signal).await?;
    Ok(0)
}

pub(crate) async fn rename(name: String, new_name: String) -> Result<i32, Failure> {
    crate::paths::validate_session_name(&new_name).map_err(usage)?;
    existing_for(&name).await?.rename(&name, &new_name).await?;
    Ok(0)
}

pub(crate) async fn revive(
    name: String,
    cwd: Option<String>,
    command: Vec<String>,
) -> Result<i32, Failure> {
    let client = existing_for(&name).await?;
    let (rows, cols) = crate::client::attach::terminal_size();
    let command = (!command.is_empty()).then_some(command);
    let cwd = cwd.map(|dir| working_dir(&dir)).transpose()?;
    client.revive_in(&name, command, cwd, rows, cols).await?;
    Ok(0)
}

pub(crate) async fn note(name: String, text: Vec<String>) -> Result<i32, Failure> {
    let client = existing_for(&name).await?;
    let text = match text.as_slice() {
        [] => None,
        [dash] if dash == "-" => Some(String::from_utf8_lossy(&read_stdin()?).into_owned()),
        words => Some(words.join(" ")),
    };
    if let Some(t) = text.as_ref().filter(|t| t.len() > crate::state::MAX_NOTES) {
        return Err(fail(format!(
            "notes of {} bytes are too long (at most {}); keep the details in a file and note its path",
            t.len(),
            crate::state::MAX_NOTES
        )));
    }
    let notes = client.note(&name, text.clone()).await?;
    if text.is_none() && !notes.is_empty() {
        let end = if notes.ends_with('\n') { "" } else { "\n" };
        print_out(&format!("{notes}{end}"))?;
    }
    Ok(0)
}

pub(crate) async fn detach(name: String) -> Result<i32, Failure> {
    existing_for(&name).await?.detach(&name).await?;
    Ok(0)
}

pub(crate) async fn kill_server() -> Result<i32, Failure> {
    match Client::existing().await? {
        Some(client) => {
            client.kill_server().await?;
            Ok(0)
        }
        None => Err(fail("no server is running")),
    }
}

/// `linger upgrade`: hands every session to the linger binary now on disk.
pub(crate) async fn upgrade() -> Result<i32, Failure> {
    let said = crate::client::upgrade(&crate::paths::runtime_dir()).await?;
    print_out(&format!("{said}\n"))?;
    Ok(0)
}

pub(crate) async fn debug_connect(socket: &std::path::Path) -> Result<i32, Failure> {
    let mut stream = crate::protocol::Stream::connect(socket)
        .await
        .map_err(|e| fail(format!("cannot connect to {}: {e}", socket.display())))?;
    match tokio::time::timeout(
        Duration::from_secs(5),
        crate::protocol::read_frame::<_, crate::protocol::Hello>(&mut stream),
    )
    .await
    {
        Ok(Ok(hello)) => {
            print_out(&format!("hello protocol {}\n", hello.protocol))?;
            Ok(0)
        }
        _ => {
            print_out("refused\n")?;
            Ok(3)
        }
    }
}
