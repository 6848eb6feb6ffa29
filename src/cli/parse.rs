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

pub(crate) fn duration(text: &str, flag: &str) -> Result<Duration, Failure> {
    humantime::parse_duration(text)
        .map_err(|e| usage(format!("invalid {flag} '{text}': {e} (try 500ms, 5s, 2m)")))
}
