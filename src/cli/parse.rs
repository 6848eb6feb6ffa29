//! Sizes and durations as users type them.

use std::time::Duration;

use super::{Failure, usage};

/// `16M`, `512K`, `1G` or plain bytes.
pub(crate) fn parse_size(text: &str) -> Result<u64, Failure> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| usage(format!("invalid size '{text}' (try 16M, 512K)")))?;
    let mult = match unit
        .trim_end_matches(['i', 'B', 'b'])
        .to_ascii_uppercase()
        .as_str()
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(usage(format!("invalid size '{text}' (try 16M, 512K)"))),
    };
    let bytes = n.saturating_mul(mult);
    if bytes < 64 * 1024 {
        return Err(usage(format!(
            "log size {text} is too small (at least 64K)"
        )));
    }
    if bytes > crate::state::MAX_LOG_LIMIT {
        return Err(usage(format!("log size {text} is too large (at most 1G)")));
    }
    Ok(bytes)
}

/// Longest `--timeout` or `--idle`: long enough for any agent's task, short enough that no
/// deadline computed from it can overflow (584 million years used to wrap to a second).
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

pub(crate) fn duration(text: &str, flag: &str) -> Result<Duration, Failure> {
    let d = humantime::parse_duration(text)
        .map_err(|e| usage(format!("invalid {flag} '{text}': {e} (try 500ms, 5s, 2m)")))?;
    if d > MAX_DURATION {
        return Err(usage(format!(
            "{flag} '{text}' is too long (at most 366 days)"
        )));
    }
    Ok(d)
}

/// Checks a `wait --text` regex here, so a mistake is a usage error with the reason.
pub(crate) fn regex(text: &str) -> Result<(), Failure> {
    match regex::Regex::new(text) {
        Ok(_) => Ok(()),
        Err(regex::Error::Syntax(detail)) => {
            // The reason is the last line; the lines above draw a caret under the spot.
            let reason = detail
                .lines()
                .rev()
                .find_map(|l| l.trim().strip_prefix("error: "))
                .unwrap_or(detail.as_str());
            Err(usage(format!("invalid regex '{text}': {reason}")))
        }
        Err(e) => Err(usage(format!("invalid regex '{text}': {e}"))),
    }
}
