//! `log`: a session's transcript as logical lines (history, then the screen), and with `-f`
//! the lines that complete after it, until the session ends.

use std::io::Write;
use std::time::Duration;

use super::args::LogArgs;
use super::{Failure, existing_for};
use crate::protocol::Capture;

/// How often `log -f` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// New lines in one look past which the next look comes at once: under a flood, lines leave
/// the history (10,000 by default) within a few polls.
const BUSY_LOOK: usize = 1000;

/// Prints the lines of `cap` numbered from `from` and before `until`; returns the number of
/// the next line to print, or `None` once stdout is gone (a closed pipe ends `log`).
fn print_lines(cap: &Capture, from: u64, until: u64) -> Option<u64> {
    let mut out = std::io::stdout().lock();
    let mut next = from;
    let history = cap.history.iter().map(|l| (l.line, &l.text));
    for (line, text) in history.chain(cap.lines.iter().map(|l| (l.line, &l.text))) {
        if line < next || line >= until {
            continue;
        }
        writeln!(out, "{text}").ok()?;
        next = line + 1;
    }
    out.flush().ok()?;
    Some(next)
}

pub(crate) async fn log(args: LogArgs) -> Result<i32, Failure> {
    let client = existing_for(&args.name).await?;
    let mut cap = client
        .capture(&args.name, Some(usize::MAX), None, args.ansi)
        .await?;
    if !args.follow {
        print_lines(&cap, 0, u64::MAX);
        return Ok(0);
    }
    let mut next = 0;
    loop {
        // Lines above the cursor's are complete; the rest only once the session has ended.
        let until = if cap.running {
            cap.cursor_line
        } else {
            u64::MAX
        };
        let Some(after) = print_lines(&cap, next, until) else {
            return Ok(0);
        };
        next = after;
        if !cap.running {
            return Ok(0);
        }
        if cap.history.len() + cap.lines.len() < BUSY_LOOK {
            tokio::time::sleep(FOLLOW_POLL).await;
        }
        cap = match client
            .capture(&args.name, None, Some(next), args.ansi)
            .await
        {
            Ok(cap) => cap,
            // Killed (and so forgotten) while followed: that is its end too.
            Err(e) if e.0.starts_with("no session named") => {
                eprintln!(
                    "linger: session '{}' is no longer there (killed or renamed); stopped following",
                    args.name
                );
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        };
        report_gap(&cap, next);
    }
}

/// Says on stderr which lines left the history before this follower read them.
fn report_gap(cap: &Capture, next: u64) {
    let first = cap.history.iter().map(|l| l.line);
    let first = first.chain(cap.lines.iter().map(|l| l.line)).min();
    if let Some(first) = first.filter(|&first| first > next) {
        eprintln!(
            "linger: {} lines ({next} to {}) left the history before they could be printed",
            first - next,
            first - 1
        );
    }
}
