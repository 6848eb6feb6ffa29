//! `send`: text or key names into a session.

use std::io::Read;

use super::args::SendArgs;
use super::{Failure, existing_for, fail, usage};

pub(crate) fn read_stdin() -> Result<Vec<u8>, Failure> {
    let mut data = Vec::new();
    std::io::stdin()
        .read_to_end(&mut data)
        .map_err(|e| fail(format!("cannot read stdin: {e}")))?;
    Ok(data)
}

/// Text longer than this goes as a paste even on one line, so composers do not act on it early.
const LONG_TEXT: usize = 200;

pub(crate) async fn send(args: SendArgs) -> Result<i32, Failure> {
    let timeout = super::parse::duration(&args.timeout, "--timeout")?;
    let client = existing_for(&args.name).await?;
    if args.keys {
        let keys: Vec<String> = args
            .text
            .iter()
            .flat_map(|t| t.split_whitespace())
            .map(String::from)
            .collect();
        if keys.is_empty() && !args.enter {
            return Err(usage("--keys needs at least one key name"));
        }
        if !keys.is_empty() {
            client.send_keys_within(&args.name, &keys, timeout).await?;
        }
        if args.enter {
            client
                .send_within(&args.name, b"", false, true, timeout)
                .await?;
        }
        return Ok(0);
    }
    let text = if args.text.len() == 1 && args.text[0] == "-" {
        // `echo cmd | linger send s - --enter`: echo's newline is not part of the text.
        let mut data = read_stdin()?;
        if data.ends_with(b"\n") {
            data.pop();
            if data.ends_with(b"\r") {
                data.pop();
            }
        }
        data
    } else {
        args.text.join(" ").into_bytes()
    };
    if text.is_empty() && !args.enter {
        return Err(usage("nothing to send: give TEXT, - for stdin, or --enter"));
    }
    let paste = text.contains(&b'\n') || text.len() > LONG_TEXT;
    client
        .send_within(&args.name, &text, paste, args.enter, timeout)
        .await?;
    Ok(0)
}
