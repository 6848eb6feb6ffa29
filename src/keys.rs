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
    let (mods, base) = split_modifiers(key);
    let mut out = Vec::new();
    match named(&base.to_ascii_lowercase()) {
        Some(named) => out.extend(encode_named(named, mods, application_cursor, key)?),
        None => {
            let mut chars = base.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(unknown(key));
            };
            out.extend(std::iter::repeat_n(0x1b, mods.meta));
            if mods.ctrl {
                out.extend(ctrl(c).ok_or_else(|| unknown(key))?);
            } else if mods.shift {
                out.extend(c.to_uppercase().to_string().into_bytes());
            } else {
                out.extend(c.to_string().into_bytes());
            }
        }
    }
    Ok(out)
}

fn unknown(key: &str) -> String {
    format!(
        "unknown key '{key}' (try Enter, Tab, Esc, Space, BSpace, Up, Down, Left, Right, Home, End, \
         PPage, NPage, IC, DC, F1-F12, with C-, S- or M- in front, or one character)"
    )
}

/// `C-`, `S-` and `M-` prefixes in any order and case; `M-` may repeat (one ESC each).
#[derive(Default, Clone, Copy)]
struct Mods {
    ctrl: bool,
    shift: bool,
    meta: usize,
}

impl Mods {
    /// The xterm modifier parameter (1 + shift + 2 alt + 4 ctrl).
    fn param(self) -> u8 {
        1 + u8::from(self.shift) + 2 * u8::from(self.meta > 0) + 4 * u8::from(self.ctrl)
    }
}

/// Peels modifier prefixes in a loop (never recursion), leaving at least one character.
fn split_modifiers(key: &str) -> (Mods, &str) {
    let mut mods = Mods::default();
    let mut rest = key;
    while rest.len() > 2 && rest.as_bytes()[1] == b'-' {
        match rest.as_bytes()[0].to_ascii_uppercase() {
            b'C' => mods.ctrl = true,
            b'S' => mods.shift = true,
            b'M' => mods.meta += 1,
            _ => break,
        }
        rest = &rest[2..];
    }
    (mods, rest)
}

/// Keys with names, by how a terminal encodes them.
#[derive(Clone, Copy)]
enum Named {
    /// `ESC [ X`, or `ESC O X` in application cursor mode; `ESC [ 1 ; m X` modified.
    Cursor(u8),
    /// `ESC [ n ~`; `ESC [ n ; m ~` modified.
    Tilde(u8),
    /// F1-F4: `ESC O X`; `ESC [ 1 ; m X` modified.
    Ss3(u8),
    /// One byte (Enter, Tab, Esc, Space, BSpace); only `M-` (and `C-Space`, `S-Tab`) apply.
    Byte(u8),
    BackTab,
}

fn named(lower: &str) -> Option<Named> {
    Some(match lower {
        "enter" => Named::Byte(b'\r'),
        "tab" => Named::Byte(b'\t'),
        "btab" => Named::BackTab,
        "esc" | "escape" => Named::Byte(0x1b),
        "space" => Named::Byte(b' '),
        "bspace" | "backspace" => Named::Byte(0x7f),
        "up" => Named::Cursor(b'A'),
        "down" => Named::Cursor(b'B'),
        "right" => Named::Cursor(b'C'),
        "left" => Named::Cursor(b'D'),
        "home" => Named::Cursor(b'H'),
        "end" => Named::Cursor(b'F'),
        "pgup" | "pageup" | "ppage" => Named::Tilde(5),
        "pgdn" | "pagedown" | "npage" => Named::Tilde(6),
        "delete" | "dc" => Named::Tilde(3),
        "insert" | "ic" => Named::Tilde(2),
        "f1" => Named::Ss3(b'P'),
        "f2" => Named::Ss3(b'Q'),
        "f3" => Named::Ss3(b'R'),
        "f4" => Named::Ss3(b'S'),
        _ => {
            let n: u8 = lower.strip_prefix('f')?.parse().ok()?;
            Named::Tilde(*[15, 17, 18, 19, 20, 21, 23, 24].get(usize::from(n.checked_sub(5)?))?)
        }
    })
}

fn encode_named(
    named: Named,
    mods: Mods,
    application_cursor: bool,
    key: &str,
) -> Result<Vec<u8>, String> {
    let m = mods.param();
    // Extra `M-`s beyond the one the modifier parameter carries are ESC prefixes.
    let mut out = vec![0x1b; mods.meta.saturating_sub(1)];
    match named {
        Named::Cursor(c) if m == 1 => {
            out.extend([0x1b, if application_cursor { b'O' } else { b'[' }, c])
        }
        Named::Cursor(c) | Named::Ss3(c) if m > 1 => {
            out.extend(format!("\x1b[1;{m}").bytes());
            out.push(c);
        }
        Named::Ss3(c) => out.extend([0x1b, b'O', c]),
        Named::Cursor(_) => {}
        Named::Tilde(n) if m == 1 => out.extend(format!("\x1b[{n}~").bytes()),
        Named::Tilde(n) => out.extend(format!("\x1b[{n};{m}~").bytes()),
        Named::BackTab => out.extend(b"\x1b[Z"),
        Named::Byte(b'\t') if mods.shift && !mods.ctrl => {
            out.extend(std::iter::repeat_n(0x1b, usize::from(mods.meta > 0)));
            out.extend(b"\x1b[Z");
        }
        Named::Byte(b' ') if mods.ctrl && !mods.shift => {
            out.extend(std::iter::repeat_n(0x1b, usize::from(mods.meta > 0)));
            out.push(0);
        }
        Named::Byte(b) if !mods.ctrl && !mods.shift => {
            out.extend(std::iter::repeat_n(0x1b, usize::from(mods.meta > 0)));
            out.push(b);
        }
        Named::Byte(_) => return Err(format!("cannot send '{key}': no terminal encodes it")),
    }
    Ok(out)
}

fn ctrl(c: char) -> Option<Vec<u8>> {
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
        assert_eq!(encode("x", false).unwrap(), b"x");
        assert!(encode("F13", false).is_err());
        assert_eq!(encode("M-M-x", false).unwrap(), b"\x1b\x1bx");
        assert_eq!(encode("M-Up", false).unwrap(), b"\x1b[1;3A");
        assert_eq!(encode("C-Up", true).unwrap(), b"\x1b[1;5A");
        assert_eq!(encode("S-Up", false).unwrap(), b"\x1b[1;2A");
        assert_eq!(encode("NPage", false).unwrap(), b"\x1b[6~");
        assert_eq!(encode("ppage", false).unwrap(), b"\x1b[5~");
        assert_eq!(encode("C-Space", false).unwrap(), b"\0");
        assert_eq!(encode("BSpace", false).unwrap(), b"\x7f");
        assert_eq!(encode("ENTER", false).unwrap(), b"\r");
        assert_eq!(encode("c-C", false).unwrap(), vec![3]);
        assert_eq!(encode("C-Delete", false).unwrap(), b"\x1b[3;5~");
        assert_eq!(encode("S-F1", false).unwrap(), b"\x1b[1;2P");
        assert_eq!(encode("S-Tab", false).unwrap(), b"\x1b[Z");
        assert_eq!(encode("M--", false).unwrap(), b"\x1b-");
        assert!(encode(&"M-".repeat(60_000), false).is_err());
    }
}
