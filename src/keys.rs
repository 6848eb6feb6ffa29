//! Key names for `send --keys` and the bytes a terminal would send for them.

/// Longest key name accepted (`M-M-C-x` and friends are far shorter): names come from clients,
/// so their length, and the work done per name, is bounded.
pub const MAX_KEY_NAME: usize = 32;

/// Encodes one key name (`Enter`, `C-c`, `M-x`, `S-Tab`, `F5`, `Up`, ...). Cursor keys follow
/// the app's cursor-key mode (DECCKM) the way a real terminal's would. `M-` prefixes are
/// peeled in a loop, never by recursion, so no name can exhaust the stack.
pub fn encode(key: &str, application_cursor: bool) -> Result<Vec<u8>, String> {
    if key.len() > MAX_KEY_NAME {
        let shown: String = key
            .chars()
            .take(20)
            .flat_map(char::escape_default)
            .collect();
        return Err(format!(
            "key name '{shown}...' is {} bytes long; key names are at most {MAX_KEY_NAME}",
            key.len()
        ));
    }
    let mut rest = key;
    let mut out = Vec::new();
    // `M-x` is ESC then x; `M-` alone (or `M-M-`) leaves a name that is not a key: the literal.
    while let Some(after) = rest.strip_prefix("M-").filter(|a| !a.is_empty()) {
        out.push(0x1b);
        rest = after;
    }
    if out.is_empty() {
        out.extend(encode_plain(rest, application_cursor)?);
    } else {
        out.extend(encode_plain(rest, application_cursor).or_else(|_| literal(rest))?);
    }
    Ok(out)
}

/// One key name without `M-` prefixes.
fn encode_plain(key: &str, application_cursor: bool) -> Result<Vec<u8>, String> {
    let cursor = |c: u8| -> Vec<u8> {
        if application_cursor {
            vec![0x1b, b'O', c]
        } else {
            vec![0x1b, b'[', c]
        }
    };
    let bytes = match key {
        "Enter" => b"\r".to_vec(),
        "Tab" => b"\t".to_vec(),
        "S-Tab" | "BTab" => b"\x1b[Z".to_vec(),
        "Esc" | "Escape" => b"\x1b".to_vec(),
        "Space" => b" ".to_vec(),
        "BSpace" => b"\x7f".to_vec(),
        "Up" => cursor(b'A'),
        "Down" => cursor(b'B'),
        "Right" => cursor(b'C'),
        "Left" => cursor(b'D'),
        "Home" => cursor(b'H'),
        "End" => cursor(b'F'),
        "PgUp" | "PageUp" => b"\x1b[5~".to_vec(),
        "PgDn" | "PageDown" => b"\x1b[6~".to_vec(),
        "Delete" | "DC" => b"\x1b[3~".to_vec(),
        "Insert" | "IC" => b"\x1b[2~".to_vec(),
        _ => {
            if let Some(n) = key.strip_prefix('F').and_then(|n| n.parse::<u8>().ok()) {
                return function_key(n).ok_or_else(|| format!("unknown key '{key}': F1 to F12"));
            }
            if let Some(rest) = key.strip_prefix("C-") {
                return ctrl(rest).ok_or_else(|| format!("unknown key '{key}'"));
            }
            return Err(format!(
                "unknown key '{key}' (try Enter, Tab, Esc, Space, BSpace, Up, Down, Left, Right, Home, End, PgUp, PgDn, F1-F12, C-x, M-x, S-Tab)"
            ));
        }
    };
    Ok(bytes)
}

fn literal(text: &str) -> Result<Vec<u8>, String> {
    let mut chars = text.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c.to_string().into_bytes()),
        _ => Err(format!("unknown key '{text}'")),
    }
}

fn ctrl(rest: &str) -> Option<Vec<u8>> {
    let mut chars = rest.chars();
    let (c, None) = (chars.next()?, chars.next()) else {
        return None;
    };
    let byte = match c {
        'a'..='z' => c as u8 - b'a' + 1,
        'A'..='Z' => c as u8 - b'A' + 1,
        '@' | ' ' | '2' => 0,
        '[' | '3' => 0x1b,
        '\\' | '4' => 0x1c,
        ']' | '5' => 0x1d,
        '^' | '6' => 0x1e,
        '_' | '7' | '/' => 0x1f,
        '?' | '8' => 0x7f,
        _ => return None,
    };
    Some(vec![byte])
}

fn function_key(n: u8) -> Option<Vec<u8>> {
    let seq: &[u8] = match n {
        1 => b"\x1bOP",
        2 => b"\x1bOQ",
        3 => b"\x1bOR",
        4 => b"\x1bOS",
        5 => b"\x1b[15~",
        6 => b"\x1b[17~",
        7 => b"\x1b[18~",
        8 => b"\x1b[19~",
        9 => b"\x1b[20~",
        10 => b"\x1b[21~",
        11 => b"\x1b[23~",
        12 => b"\x1b[24~",
        _ => return None,
    };
    Some(seq.to_vec())
}

pub fn encode_all(keys: &[String], application_cursor: bool) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for key in keys {
        out.extend(encode(key, application_cursor)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn encodes_keys() {
        assert_eq!(encode("C-c", false).unwrap(), vec![3]);
        assert_eq!(encode("Up", false).unwrap(), b"\x1b[A");
        assert_eq!(encode("Up", true).unwrap(), b"\x1bOA");
        assert_eq!(encode("M-x", false).unwrap(), b"\x1bx");
        assert_eq!(encode("F5", false).unwrap(), b"\x1b[15~");
        assert!(encode("Bogus", false).is_err());
        assert!(encode("F13", false).is_err());
        assert_eq!(encode("M-M-x", false).unwrap(), b"\x1b\x1bx");
        assert_eq!(encode("M-Up", false).unwrap(), b"\x1b\x1b[A");
        assert_eq!(encode("M--", false).unwrap(), b"\x1b-");
        assert!(encode(&"M-".repeat(60_000), false).is_err());
    }
}
