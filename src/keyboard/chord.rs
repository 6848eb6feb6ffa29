//! The detach chord: finds it in keyboard input in every encoding a terminal may use (raw
//! control byte, kitty CSI-u, xterm modifyOtherKeys), across read boundaries, never inside a
//! bracketed paste. Pressed twice, it sends the control byte itself to the app.

use std::time::{Duration, Instant};

/// How long after one chord a second one counts as "send it to the app" instead of detaching.
pub const DOUBLE_PRESS: Duration = Duration::from_millis(300);
/// How long a lone ESC or an escape-sequence prefix that cannot become the chord is held back
/// waiting for the rest: short, so that Esc stays responsive.
pub const SPLIT_WAIT: Duration = Duration::from_millis(30);
/// How long a prefix that may still become the chord (`ESC [ 9 2 ;`...) is held back: over ssh
/// the two halves of one key commonly arrive 50-200 ms apart.
pub const CHORD_SPLIT_WAIT: Duration = Duration::from_millis(500);

/// The control key that detaches: its raw byte and the key's Unicode codepoint.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DetachKey {
    pub byte: u8,
    pub codepoint: u32,
}

impl Default for DetachKey {
    fn default() -> Self {
        DetachKey {
            byte: 0x1c,
            codepoint: '\\' as u32,
        }
    }
}

impl DetachKey {
    /// Accepts `C-\`, `ctrl-\`, `^\`, `C-a`, `ctrl-]` and the like.
    pub fn parse(text: &str) -> Result<DetachKey, String> {
        let lower = text.to_ascii_lowercase();
        let key = lower
            .strip_prefix("ctrl-")
            .or_else(|| lower.strip_prefix("ctrl+"))
            .or_else(|| lower.strip_prefix("c-"))
            .or_else(|| lower.strip_prefix('^'))
            .ok_or_else(|| bad_key(text))?;
        let mut chars = key.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            return Err(bad_key(text));
        };
        let byte = match c {
            'a'..='z' => c as u8 - b'a' + 1,
            '\\' => 0x1c,
            ']' => 0x1d,
            '^' => 0x1e,
            '_' => 0x1f,
            '@' => 0,
            _ => return Err(bad_key(text)),
        };
        Ok(DetachKey {
            byte,
            codepoint: c as u32,
        })
    }
}

fn bad_key(text: &str) -> String {
    format!("invalid detach key '{text}': use a control chord such as 'C-\\\\', 'C-a' or 'C-]'")
}

#[derive(Debug, PartialEq)]
pub enum Action {
    Forward(Vec<u8>),
    Detach,
}

pub struct ChordMatcher {
    key: DetachKey,
    held: Vec<u8>,
    /// When the held prefix is given up on and forwarded as it is.
    held_until: Option<Instant>,
    armed_at: Option<Instant>,
    in_paste: bool,
}

enum Seq {
    /// A complete escape sequence of this length.
    Complete(usize),
    /// Could still become a sequence we care about.
    Incomplete,
}

fn csi_length(data: &[u8]) -> Seq {
    // data[0] == ESC
    match data.get(1) {
        None => return Seq::Incomplete,
        Some(b'[') => {}
        Some(_) => return Seq::Complete(1),
    }
    for (i, &b) in data.iter().enumerate().skip(2) {
        match b {
            0x20..=0x3f => {}
            0x40..=0x7e => return Seq::Complete(i + 1),
            _ => return Seq::Complete(i),
        }
        if i > 64 {
            return Seq::Complete(i);
        }
    }
    Seq::Incomplete
}

impl ChordMatcher {
    pub fn new(key: DetachKey) -> ChordMatcher {
        ChordMatcher {
            key,
            held: Vec::new(),
            held_until: None,
            armed_at: None,
            in_paste: false,
        }
    }

    /// Classifies a CSI sequence: Some(true) chord press, Some(false) chord release/repeat
    /// (swallowed), None for anything else.
    fn chord_kind(&self, seq: &[u8]) -> Option<bool> {
        let body = std::str::from_utf8(seq.get(2..seq.len() - 1)?).ok()?;
        let fin = *seq.last()?;
        let fields: Vec<&str> = body.split(';').collect();
        let ctrl_only = |mods: &str| {
            mods.parse::<u32>()
                .ok()
                .is_some_and(|m| m >= 1 && (m - 1) & !(64 | 128) == 4)
        };
        let is_key = |cp: &str| {
            cp.parse::<u32>()
                .ok()
                .is_some_and(|cp| cp == self.key.codepoint || cp == self.key.byte as u32)
        };
        match fin {
            b'u' if fields.len() >= 2 => {
                let cp = fields[0].split(':').next()?;
                let mut mods = fields[1].split(':');
                let modifiers = mods.next()?;
                let event = mods.next().unwrap_or("1");
                if is_key(cp) && ctrl_only(modifiers) {
                    return Some(event == "1");
                }
                None
            }
            b'~' if fields.len() == 3 && fields[0] == "27" => {
                (ctrl_only(fields[1]) && is_key(fields[2])).then_some(true)
            }
            _ => None,
        }
    }

    /// Whether an unfinished CSI sequence may still turn out to be the chord in one of its
    /// encodings (`ESC [ CODE ; MODS u` or `ESC [ 27 ; MODS ; CODE ~`).
    fn could_become_chord(&self, partial: &[u8]) -> bool {
        let Some(params) = partial.strip_prefix(b"\x1b[") else {
            return false;
        };
        if params.is_empty() {
            return true;
        }
        if !params
            .iter()
            .all(|b| b.is_ascii_digit() || *b == b';' || *b == b':')
        {
            return false;
        }
        let first = params
            .split(|b| *b == b';' || *b == b':')
            .next()
            .unwrap_or_default();
        let complete = params.len() > first.len();
        [
            self.key.codepoint.to_string(),
            u32::from(self.key.byte).to_string(),
            "27".to_string(),
        ]
        .iter()
        .any(|code| {
            if complete {
                code.as_bytes() == first
            } else {
                code.as_bytes().starts_with(first)
            }
        })
    }

    /// Processes keyboard input; returns what to do, in order.
    pub fn feed(&mut self, input: &[u8], now: Instant) -> Vec<Action> {
        let mut data = std::mem::take(&mut self.held);
        data.extend_from_slice(input);
        self.held_until = None;
        let mut actions = Vec::new();
        let mut plain = Vec::new();
        let mut i = 0;
        while i < data.len() {
            let b = data[i];
            if b == 0x1b {
                match csi_length(&data[i..]) {
                    Seq::Incomplete => {
                        self.held = data[i..].to_vec();
                        let wait = if self.could_become_chord(&self.held) {
                            CHORD_SPLIT_WAIT
                        } else {
                            SPLIT_WAIT
                        };
                        self.held_until = Some(now + wait);
                        break;
                    }
                    Seq::Complete(len) => {
                        let seq = &data[i..i + len];
                        if seq == b"\x1b[200~" {
                            self.in_paste = true;
                        } else if seq == b"\x1b[201~" {
                            self.in_paste = false;
                        } else if !self.in_paste
                            && let Some(press) = self.chord_kind(seq)
                        {
                            if press {
                                self.chord(&mut plain, &mut actions, now);
                            }
                            i += len;
                            continue;
                        }
                        self.disarm(&mut actions);
                        plain.extend_from_slice(seq);
                        i += len;
                        continue;
                    }
                }
            }
            if b == self.key.byte && !self.in_paste {
                self.chord(&mut plain, &mut actions, now);
            } else {
                self.disarm(&mut actions);
                plain.push(b);
            }
            i += 1;
        }
        if !plain.is_empty() {
            if actions.last() == Some(&Action::Detach) {
                // Keys typed after the chord belong to the terminal we return to, not the app.
            } else {
                actions.push(Action::Forward(plain));
            }
        }
        actions
    }

    fn chord(&mut self, plain: &mut Vec<u8>, actions: &mut Vec<Action>, now: Instant) {
        if self.armed_at.take().is_some() {
            plain.push(self.key.byte);
        } else {
            if !plain.is_empty() {
                actions.push(Action::Forward(std::mem::take(plain)));
            }
            self.armed_at = Some(now);
        }
    }

    /// Other input after a single chord: the chord meant "detach".
    fn disarm(&mut self, actions: &mut Vec<Action>) {
        if self.armed_at.take().is_some() && actions.last() != Some(&Action::Detach) {
            actions.push(Action::Detach);
        }
    }

    /// The key it looks for.
    pub fn key(&self) -> DetachKey {
        self.key
    }

    /// Nothing held back, no chord pressed, no paste open: another matcher may take over the
    /// keyboard from here without changing what any key means.
    pub fn is_idle(&self) -> bool {
        self.held.is_empty() && self.armed_at.is_none() && !self.in_paste
    }

    /// When the caller should call [`ChordMatcher::tick`] next.
    pub fn deadline(&self) -> Option<Instant> {
        let held = self.held_until;
        let armed = self.armed_at.map(|t| t + DOUBLE_PRESS);
        match (held, armed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Stops waiting: what running out of time would do now (the held prefix goes on; a lone
    /// chord detaches). For a matcher handing the keyboard to another.
    pub fn give_up(&mut self) -> Vec<Action> {
        self.tick(Instant::now() + CHORD_SPLIT_WAIT + DOUBLE_PRESS)
    }

    /// Time passed: flush a held prefix that never completed, detach after a lone chord.
    pub fn tick(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        if self.held_until.is_some_and(|t| now >= t) {
            self.held_until = None;
            let held = std::mem::take(&mut self.held);
            if self.armed_at.take().is_some() {
                actions.push(Action::Detach);
                return actions;
            }
            actions.push(Action::Forward(held));
        }
        if self.armed_at.is_some_and(|t| now >= t + DOUBLE_PRESS) {
            self.armed_at = None;
            actions.push(Action::Detach);
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&[u8]]) -> Vec<Action> {
        let mut m = ChordMatcher::new(DetachKey::default());
        let now = Instant::now();
        let mut out = Vec::new();
        for c in chunks {
            out.extend(m.feed(c, now));
        }
        out.extend(m.tick(now + Duration::from_secs(1)));
        out
    }

    #[test]
    fn every_encoding_detaches() {
        for enc in [
            &b"\x1c"[..],
            b"\x1b[92;5u",
            b"\x1b[92;5:1u",
            b"\x1b[27;5;92~",
            b"\x1b[92:124;5u",
        ] {
            assert_eq!(run(&[enc]), vec![Action::Detach], "{enc:?}");
        }
    }

    #[test]
    fn split_chords_detach() {
        assert_eq!(run(&[b"\x1b", b"[92;", b"5u"]), vec![Action::Detach]);
        assert_eq!(
            run(&[b"ab\x1b[27;5", b";92~"]),
            vec![Action::Forward(b"ab".to_vec()), Action::Detach]
        );
    }

    #[test]
    fn a_chord_split_over_ssh_still_detaches_and_esc_stays_quick() {
        let mut m = ChordMatcher::new(DetachKey::default());
        let t0 = Instant::now();
        assert!(m.feed(b"\x1b[92;", t0).is_empty());
        assert_eq!(m.deadline(), Some(t0 + CHORD_SPLIT_WAIT));
        let later = t0 + Duration::from_millis(200);
        assert!(m.tick(later).is_empty(), "held 200 ms later");
        assert!(m.feed(b"5u", later).is_empty());
        assert_eq!(m.tick(later + DOUBLE_PRESS), vec![Action::Detach]);
        // A lone Esc and a modified arrow's prefix are held only briefly.
        let mut m = ChordMatcher::new(DetachKey::default());
        assert!(m.feed(b"\x1b", t0).is_empty());
        assert_eq!(m.deadline(), Some(t0 + SPLIT_WAIT));
        let mut m = ChordMatcher::new(DetachKey::default());
        assert!(m.feed(b"\x1b[1;5", t0).is_empty());
        assert_eq!(m.deadline(), Some(t0 + SPLIT_WAIT));
    }

    #[test]
    fn double_chord_sends_one_byte() {
        assert_eq!(run(&[b"\x1c", b"\x1c"]), vec![Action::Forward(vec![0x1c])]);
        assert_eq!(
            run(&[b"\x1b[92;5u\x1b[92;5:3u\x1b[92;5u"]),
            vec![Action::Forward(vec![0x1c])]
        );
    }

    #[test]
    fn not_inside_a_paste() {
        let paste = b"\x1b[200~a\x1cb\x1b[201~";
        assert_eq!(run(&[paste]), vec![Action::Forward(paste.to_vec())]);
    }

    #[test]
    fn ordinary_input_passes_through() {
        assert_eq!(
            run(&[b"ls\r", b"\x1b[A"]),
            vec![
                Action::Forward(b"ls\r".to_vec()),
                Action::Forward(b"\x1b[A".to_vec())
            ]
        );
        assert_eq!(run(&[b"\x1b"]), vec![Action::Forward(b"\x1b".to_vec())]);
    }

    #[test]
    fn parses_keys() {
        assert_eq!(DetachKey::parse("C-\\").unwrap(), DetachKey::default());
        assert_eq!(DetachKey::parse("ctrl-a").unwrap().byte, 1);
        assert!(DetachKey::parse("x").is_err());
    }
}
