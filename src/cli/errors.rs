//! Failures worded for people: clap's usage errors on one line with their hints, and a close
//! session name suggested for a mistyped one.

use std::io::Write as _;

use super::Failure;
use crate::client::Client;

/// Prints a clap error as one line (hints kept) and returns its exit status.
pub(crate) fn report_clap(e: clap::Error) -> i32 {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return 0;
    }
    let text = e.to_string();
    let mut parts: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            parts.push(line.strip_prefix("error: ").unwrap_or(line).to_string());
        }
    }
    // A command line given as one argument (`new x 'echo hi && sleep 5'`) wants a shell.
    if e.kind() == ErrorKind::UnknownArgument
        && let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
        && !arg.starts_with('-')
        && arg.contains(|c: char| c.is_whitespace() || "&|;<>()$`*?".contains(c))
    {
        parts.retain(|p| !p.starts_with("tip:"));
        let quoted = arg.replace('\'', r"'\''");
        parts.push(format!(
            "tip: to run a shell command line, use: -- sh -c '{quoted}'"
        ));
    }
    // clap's own tip for `new x echo hi` is not always there: commands take a program after
    // `--`, say so.
    if e.kind() == ErrorKind::UnknownArgument && !parts.iter().any(|p| p.starts_with("tip:")) {
        parts.push(
            "tip: a program and its arguments go after --, e.g. `linger new NAME -- CMD ARGS`"
                .into(),
        );
    }
    let summary = parts.join("; ");
    let _ = writeln!(std::io::stderr(), "linger: {summary} (see `linger --help`)");
    2
}

/// Adds "did you mean" to a `no session named 'x'` failure when a close name exists.
pub(crate) async fn suggest_name(f: Failure) -> Failure {
    let Some(wanted) = f
        .message
        .strip_prefix("no session named '")
        .and_then(|rest| rest.split('\'').next())
    else {
        return f;
    };
    let mut names = super::saved_names();
    if let Ok(Some(client)) = Client::existing().await
        && let Ok(sessions) = client.list().await
    {
        names.extend(sessions.into_iter().map(|s| s.name));
    }
    let best = names
        .iter()
        .map(|n| (strsim::jaro(wanted, n), n))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match best {
        Some((_, name)) => Failure {
            message: format!("{}; did you mean '{name}'?", f.message),
            ..f
        },
        None => f,
    }
}
