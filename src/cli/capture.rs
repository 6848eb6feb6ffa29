//! `capture`: a session's screen and history on stdout.

use super::args::CaptureArgs;
use super::{Failure, existing_for, print_out};

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
        print_out(&format!("{value}\n"))?;
        return Ok(0);
    }
    let mut text = String::new();
    for line in &cap.history {
        text.push_str(&line.text);
        text.push('\n');
    }
    // With --from-line, numbered lines only, so that a script reading from `next_line` on
    // never sees a line twice; the screen's blank rows below the output are not lines yet.
    let rest: Vec<&String> = if args.from_line.is_some() {
        cap.lines.iter().map(|l| &l.text).collect()
    } else {
        cap.screen.iter().collect()
    };
    for line in rest {
        text.push_str(line);
        text.push('\n');
    }
    print_out(&text)?;
    Ok(0)
}
