//! Asks the user's terminal, once per attach, what linger's terminal should report to
//! programs: its colours (OSC 10/11/12, the 16-colour palette) and kitty keyboard support, with
//! DA1 last as the sentinel every terminal answers. The questions go out as the attach starts
//! and the answers are picked out of the keyboard input as they come, so the probe never
//! delays the screen; a terminal that answers nothing simply sends no profile.

use crate::term::Profile;

/// The queries, DA1 last.
fn queries() -> String {
    let mut q = String::from("\x1b]10;?\x1b\\\x1b]11;?\x1b\\\x1b]12;?\x1b\\\x1b]4");
    for n in 0..16 {
        q.push_str(&format!(";{n};?"));
    }
    q.push_str("\x1b\\\x1b[?u\x1b[c");
    q
}

/// Sends the questions; the answers arrive with the keyboard input (see [`Prober`]).
pub fn ask() -> bool {
    super::rawmode::write_all_stdout(queries().as_bytes()).is_ok()
}

/// What the probe found, and anything the user typed meanwhile (to be sent on as input).
pub struct Probed {
    pub profile: Option<Profile>,
    pub typed: Vec<u8>,
}

/// Picks the terminal's answers out of keyboard input until the DA1 sentinel, then yields the
/// profile once. Answers that come later (slow links) are still dropped, never typed.
#[derive(Default)]
pub struct Prober {
    profile: Profile,
    answered: bool,
    finished: bool,
}

impl Prober {
    /// Takes a chunk of keyboard input; returns what the user typed in it.
    pub fn feed(&mut self, data: &[u8]) -> Vec<u8> {
        let mut typed = Vec::new();
        let mut i = 0;
        while i < data.len() {
            if let Some((len, reply)) = reply_at(&data[i..]) {
                // Answers after the sentinel (late ones) are dropped like the rest.
                if !self.finished {
                    self.answered |= apply(&mut self.profile, &reply);
                    self.finished = matches!(reply, Reply::Attributes);
                }
                i += len;
            } else {
                typed.push(data[i]);
                i += 1;
            }
        }
        typed
    }

    /// Whether the terminal answered the sentinel: it owes nothing more.
    pub fn finished(&self) -> bool {
        self.finished
    }

    /// The profile, once, after the terminal answered the sentinel.
    pub fn take_profile(&mut self) -> Option<Profile> {
        if self.finished && self.answered {
            self.answered = false;
            Some(self.profile.clone())
        } else {
            None
        }
    }
}

/// Splits the replies from whatever else arrived in one piece of input, and reads the profile
/// from them (without waiting for the sentinel).
pub fn parse(data: &[u8]) -> Probed {
    let mut prober = Prober::default();
    let typed = prober.feed(data);
    Probed {
        profile: prober.answered.then_some(prober.profile),
        typed,
    }
}

enum Reply {
    Osc(Vec<u8>),
    KittyFlags,
    Attributes,
}

/// A reply starting at `data[0]`: its length and what it is.
fn reply_at(data: &[u8]) -> Option<(usize, Reply)> {
    if data.starts_with(b"\x1b]") {
        // The OSC ends at BEL or at ST (ESC \), searched after its introducer.
        let body_end = data[2..]
            .iter()
            .position(|b| *b == 0x07 || *b == 0x1b)
            .map(|p| p + 2)?;
        let len = if data[body_end] == 0x07 {
            body_end + 1
        } else if data.get(body_end + 1) == Some(&b'\\') {
            body_end + 2
        } else {
            return None;
        };
        return Some((len, Reply::Osc(data[2..body_end].to_vec())));
    }
    if let Some(rest) = data.strip_prefix(b"\x1b[?") {
        let digits = rest
            .iter()
            .take_while(|b| b.is_ascii_digit() || **b == b';')
            .count();
        return match rest.get(digits) {
            Some(b'u') => Some((3 + digits + 1, Reply::KittyFlags)),
            Some(b'c') => Some((3 + digits + 1, Reply::Attributes)),
            _ => None,
        };
    }
    None
}

fn apply(profile: &mut Profile, reply: &Reply) -> bool {
    match reply {
        Reply::KittyFlags => {
            profile.kitty_keyboard = true;
            true
        }
        Reply::Attributes => true,
        Reply::Osc(body) => {
            let fields: Vec<&[u8]> = body.split(|b| *b == b';').collect();
            match fields.as_slice() {
                [b"10", color] => set(&mut profile.foreground, color),
                [b"11", color] => set(&mut profile.background, color),
                [b"12", color] => set(&mut profile.cursor, color),
                [b"4", rest @ ..] => {
                    let mut any = false;
                    for pair in rest.chunks(2) {
                        if let [index, color] = pair
                            && let Some(n) = std::str::from_utf8(index)
                                .ok()
                                .and_then(|s| s.parse::<usize>().ok())
                                .filter(|n| *n < 16)
                        {
                            any |= set(&mut profile.palette[n], color);
                        }
                    }
                    any
                }
                _ => false,
            }
        }
    }
}

/// Reads `rgb:R/G/B` with 1-4 hex digits per component.
fn set(target: &mut [u8; 3], color: &[u8]) -> bool {
    let Some(rgb) = color.strip_prefix(b"rgb:") else {
        return false;
    };
    let parts: Vec<&[u8]> = rgb.split(|b| *b == b'/').collect();
    let [r, g, b] = parts.as_slice() else {
        return false;
    };
    let scale = |p: &[u8]| -> Option<u8> {
        let text = std::str::from_utf8(p).ok()?;
        if text.is_empty() || text.len() > 4 {
            return None;
        }
        let v = u32::from_str_radix(text, 16).ok()?;
        let max = (1u32 << (4 * text.len())) - 1;
        Some((v * 255 / max) as u8)
    };
    match (scale(r), scale(g), scale(b)) {
        (Some(r), Some(g), Some(b)) => {
            *target = [r, g, b];
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn reads_colours_and_kitty_support_and_keeps_typed_keys() {
        let replies = b"\x1b]10;rgb:ffff/ffff/ffff\x1b\\ab\x1b]11;rgb:00/00/80\x07\
\x1b]4;1;rgb:cccc/0000/0000\x1b\\\x1b[?1u\x1b[?62;22c";
        let probed = parse(replies);
        let profile = probed.profile.expect("a profile");
        assert_eq!(profile.foreground, [255, 255, 255]);
        assert_eq!(profile.background, [0, 0, 0x80]);
        assert_eq!(profile.palette[1], [0xcc, 0, 0]);
        assert!(profile.kitty_keyboard);
        assert_eq!(probed.typed, b"ab");
    }

    #[test]
    fn answers_split_from_keys_across_chunks_give_the_profile_once() {
        let mut p = super::Prober::default();
        assert_eq!(p.feed(b"x\x1b]11;rgb:0000/0000/8080\x1b\\"), b"x");
        assert!(p.take_profile().is_none(), "not before the sentinel");
        assert_eq!(p.feed(b"\x1b[?62;22cy"), b"y");
        let profile = p.take_profile().expect("after the sentinel");
        assert_eq!(profile.background, [0, 0, 0x80]);
        assert!(p.take_profile().is_none(), "once");
        // A late answer is still not a key.
        assert_eq!(p.feed(b"\x1b]10;rgb:ffff/ffff/ffff\x07z"), b"z");
    }

    #[test]
    fn a_terminal_that_answers_nothing_gives_no_profile() {
        let probed = parse(b"typed");
        assert!(probed.profile.is_none());
        assert_eq!(probed.typed, b"typed");
    }
}
