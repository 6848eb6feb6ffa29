//! `capture`: a session's screen and history on stdout.

use std::io::Write;

use super::args::CaptureArgs;
use super::{Failure, existing_for};

pub(crate) async fn capture(args: CaptureArgs) -> Result<i32, Failure> {
    let client = existing_for(&args.name).await?;
    let history = if args.all {
        Some(usize::MAX)
    } else {
        args.history
    };
    let cap = client
        .capture(&args.name, history, args.from_line, args.ansi)
        .await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        let value = serde_json::json!({
            "name": cap.name,
            "rows": cap.rows,
            "cols": cap.cols,
            "cursor": {"row": cap.cursor_row, "col": cap.cursor_col, "visible": cap.cursor_visible},
            "title": cap.title,
            "alternate_screen": cap.alternate_screen,
            "history": cap.history.iter().map(|l| serde_json::json!({"line": l.line, "text": l.text})).collect::<Vec<_>>(),
            "screen": cap.screen,
            "next_line": cap.next_line,
            "lines": cap.lines.iter().map(|l| serde_json::json!({"line": l.line, "text": l.text})).collect::<Vec<_>>(),
        });
        let _ = writeln!(out, "{value}");
        return Ok(0);
    }
    for line in &cap.history {
        let _ = writeln!(out, "{}", line.text);
    }
    if args.from_line.is_some() {
        // Numbered lines only, so that a script reading from `next_line` on never sees a line
        // twice; the screen's blank rows below the output are not lines yet.
        for line in &cap.lines {
            let _ = writeln!(out, "{}", line.text);
        }
        return Ok(0);
    }
    for line in &cap.screen {
        let _ = writeln!(out, "{line}");
    }
    Ok(0)
}
