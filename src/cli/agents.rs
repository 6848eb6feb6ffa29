//! `events` (what happens to sessions, as it happens) and `queue` (prompts for an agent).

use super::args::QueueArgs;
use super::send::read_stdin;
use super::{Failure, existing_for, fail, print_out, usage};
use crate::client::Client;
use crate::client::agents::Streamed;
use crate::protocol::{Event, QueueOp};
use crate::server::tasks::MAX_QUEUE_BYTES;

fn rfc3339(ms: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(time).to_string()
}

/// `2026-12-01T15:50:01.123Z agent1 attention waiting: permission`
fn event_line(e: &Event) -> String {
    let mut line = format!("{} {} {}", rfc3339(e.time), e.session, e.kind);
    if let Some(state) = &e.state {
        line.push_str(&format!(" {state}"));
    }
    if let Some(reason) = &e.reason {
        line.push_str(&format!(": {reason}"));
    }
    if let Some(message) = e.message.as_ref().filter(|m| Some(*m) != e.reason.as_ref()) {
        line.push_str(&format!(" — {message}"));
    }
    line.push('\n');
    line
}

/// An event as JSON, its fields in the documented order.
#[derive(serde::Serialize)]
struct JsonEvent<'a> {
    time: String,
    session: Option<&'a str>,
    kind: &'a str,
    state: Option<&'a str>,
    reason: Option<&'a str>,
    message: Option<String>,
}

fn json_line(event: &JsonEvent) -> String {
    let mut line = serde_json::to_string(event).unwrap_or_default();
    line.push('\n');
    line
}

fn event_json(e: &Event) -> String {
    json_line(&JsonEvent {
        time: rfc3339(e.time),
        session: Some(&e.session),
        kind: &e.kind,
        state: e.state.as_deref(),
        reason: e.reason.as_deref(),
        message: e.message.clone(),
    })
}

pub(crate) async fn events(names: Vec<String>, json: bool) -> Result<i32, Failure> {
    for name in &names {
        crate::paths::validate_session_name(name).map_err(usage)?;
    }
    let client = Client::connect().await?;
    let mut stream = client.events(&names).await?;
    loop {
        let text = match stream.next().await? {
            Streamed::Event(e) if json => event_json(&e),
            Streamed::Event(e) => event_line(&e),
            Streamed::Lagged(n) if json => json_line(&JsonEvent {
                time: rfc3339(crate::server::session::unix_millis()),
                session: None,
                kind: "lagged",
                state: None,
                reason: None,
                message: Some(format!("lagged {n} events")),
            }),
            Streamed::Lagged(n) => format!("lagged {n} events\n"),
        };
        print_out(&text)?;
    }
}

pub(crate) async fn queue(args: QueueArgs) -> Result<i32, Failure> {
    let client = existing_for(&args.name).await?;
    if args.list {
        let items = client.queue(&args.name, QueueOp::List).await?;
        let text = if args.json {
            format!("{}\n", serde_json::json!(items))
        } else {
            numbered(&items)
        };
        print_out(&text)?;
        return Ok(0);
    }
    if args.clear {
        let dropped = client.queue(&args.name, QueueOp::Clear).await?;
        let s = if dropped.len() == 1 { "" } else { "s" };
        print_out(&format!("cleared {} prompt{s}\n", dropped.len()))?;
        return Ok(0);
    }
    let text = match args.text.as_slice() {
        [dash] if dash == "-" => {
            let mut data = read_stdin()?;
            if data.last() == Some(&b'\n') {
                data.pop();
            }
            String::from_utf8(data).map_err(|_| fail("the prompt on stdin is not UTF-8 text"))?
        }
        words => words.join(" "),
    };
    if text.len() > MAX_QUEUE_BYTES {
        return Err(fail(format!(
            "a prompt of {} bytes does not fit the queue (at most {} KiB); put it in a file and queue a prompt naming the file",
            text.len(),
            MAX_QUEUE_BYTES / 1024
        )));
    }
    client.queue(&args.name, QueueOp::Add(text)).await?;
    Ok(0)
}

/// `1. first prompt`, continuation lines indented under it.
fn numbered(items: &[String]) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        let label = format!("{}. ", i + 1);
        for (j, line) in item.lines().enumerate() {
            if j == 0 {
                out.push_str(&label);
            } else {
                out.push_str(&" ".repeat(label.len()));
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
