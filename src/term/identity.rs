//! Who linger's terminal says it is: the profile (colours, kitty keyboard support) and the
//! answers to the queries programs use to detect features (XTVERSION, DA3, DECRQM, DECRQSS,
//! XTGETTCAP, OSC 10/11/12/4/52, XTWINOPS, kitty `CSI ? u`, colour scheme), given in the order
//! asked from the session's own state, attached or not.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::Engine;

/// What the session's terminal reports about itself. Comes from the client that attached or
/// typed last (it probes its own terminal), else these defaults: a dark background.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub foreground: [u8; 3],
    pub background: [u8; 3],
    pub cursor: [u8; 3],
    /// The 16 ANSI colours.
    pub palette: [[u8; 3]; 16],
    /// The user's terminal speaks the kitty keyboard protocol; only then does linger say so.
    pub kitty_keyboard: bool,
}

impl Default for Profile {
    fn default() -> Profile {
        Profile {
            foreground: [0xd0, 0xd0, 0xd0],
            background: [0x1c, 0x1c, 0x1c],
            cursor: [0xd0, 0xd0, 0xd0],
            palette: [
                [0x00, 0x00, 0x00],
                [0xcd, 0x00, 0x00],
                [0x00, 0xcd, 0x00],
                [0xcd, 0xcd, 0x00],
                [0x00, 0x00, 0xee],
                [0xcd, 0x00, 0xcd],
                [0x00, 0xcd, 0xcd],
                [0xe5, 0xe5, 0xe5],
                [0x7f, 0x7f, 0x7f],
                [0xff, 0x00, 0x00],
                [0x00, 0xff, 0x00],
                [0xff, 0xff, 0x00],
                [0x5c, 0x5c, 0xff],
                [0xff, 0x00, 0xff],
                [0x00, 0xff, 0xff],
                [0xff, 0xff, 0xff],
            ],
            kitty_keyboard: false,
        }
    }
}

impl Profile {
    /// Whether the background is dark (for `CSI ? 996 n`).
    pub fn dark(&self) -> bool {
        let [r, g, b] = self.background.map(u32::from);
        (299 * r + 587 * g + 114 * b) / 1000 < 128
    }

    /// Colour `n` of the 256-colour palette, as xterm computes 16..255.
    pub fn color(&self, n: u8) -> [u8; 3] {
        match n {
            0..=15 => self.palette[n as usize],
            16..=231 => {
                let n = n - 16;
                let level = |v: u8| if v == 0 { 0 } else { 55 + 40 * v };
                [level(n / 36), level(n / 6 % 6), level(n % 6)]
            }
            _ => {
                let v = 8 + 10 * (n - 232);
                [v, v, v]
            }
        }
    }
}

/// A DCS query being collected (its payload arrives byte by byte).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum DcsQuery {
    /// DECRQSS: `DCS $ q Pt ST`.
    Setting,
    /// XTGETTCAP: `DCS + q Pt ST`.
    Capability,
}

/// Longest DCS query payload kept; longer ones are not answered.
pub(super) const MAX_DCS_QUERY: usize = 1024;

const ST: &str = "\x1b\\";

fn rgb(c: [u8; 3]) -> String {
    let [r, g, b] = c;
    format!("rgb:{r:02x}{r:02x}/{g:02x}{g:02x}/{b:02x}{b:02x}")
}

impl Engine {
    fn reply(&mut self, text: &str) {
        if self.answers.len() < super::answers::MAX_ANSWER_BYTES {
            self.answers.extend_from_slice(text.as_bytes());
        }
    }

    /// XTVERSION.
    pub(super) fn answer_version(&mut self) {
        self.reply(&format!("\x1bP>|linger {}{ST}", env!("CARGO_PKG_VERSION")));
    }

    /// DA3: a unit id of zeros.
    pub(super) fn answer_unit_id(&mut self) {
        self.reply(&format!("\x1bP!|00000000{ST}"));
    }

    /// DECRQM for a DEC private mode (`private`) or an ANSI mode: 1 set, 2 reset, 0 unknown.
    pub(super) fn answer_mode(&mut self, private: bool, mode: u16) {
        let m = &self.modes;
        let state = if private {
            match mode {
                1 => Some(m.app_cursor),
                6 => Some(m.origin),
                7 => Some(m.autowrap),
                25 => Some(m.cursor_visible),
                47 | 1047 | 1049 => Some(self.alt.is_some()),
                9 | 1000 | 1002 | 1003 => Some(m.mouse == mode),
                1005 | 1006 | 1015 | 1016 => Some(m.mouse_encoding == mode),
                1004 => Some(m.focus_reporting),
                1007 => Some(m.alternate_scroll),
                2004 => Some(m.bracketed_paste),
                2026 => Some(m.synchronized),
                _ => None,
            }
        } else {
            match mode {
                4 => Some(m.insert),
                20 => Some(m.newline),
                _ => None,
            }
        };
        let value = match state {
            Some(true) => 1,
            Some(false) => 2,
            None => 0,
        };
        let marker = if private { "?" } else { "" };
        self.reply(&format!("\x1b[{marker}{mode};{value}$y"));
    }

    /// Kitty keyboard flags, only when the user's terminal supports the protocol: an app
    /// that gets no answer before DA1 correctly concludes it is not available.
    pub(super) fn answer_kitty_flags(&mut self) {
        if self.profile.kitty_keyboard {
            let flags = self.kitty_flags();
            self.reply(&format!("\x1b[?{flags}u"));
        }
    }

    /// XTWINOPS size reports; cells are taken as 8×16 pixels.
    pub(super) fn answer_window(&mut self, op: u16) {
        let (rows, cols) = (self.rows, self.cols);
        match op {
            14 => self.reply(&format!("\x1b[4;{};{}t", rows * 16, cols * 8)),
            16 => self.reply("\x1b[6;16;8t"),
            18 => self.reply(&format!("\x1b[8;{rows};{cols}t")),
            _ => {}
        }
    }

    /// `CSI ? 996 n`: 1 for a dark scheme, 2 for a light one.
    pub(super) fn answer_color_scheme(&mut self) {
        let scheme = if self.profile.dark() { 1 } else { 2 };
        self.reply(&format!("\x1b[?997;{scheme}n"));
    }

    /// OSC 10/11/12 and OSC 4 queries (a `?` in place of a colour); OSC 52 queries get an
    /// empty clipboard. Returns whether `params` was a query.
    pub(super) fn answer_osc(&mut self, params: &[&[u8]]) -> bool {
        match params {
            [which @ (b"10" | b"11" | b"12"), b"?"] => {
                let color = match *which {
                    b"10" => self.profile.foreground,
                    b"11" => self.profile.background,
                    _ => self.profile.cursor,
                };
                let which = String::from_utf8_lossy(which).into_owned();
                self.reply(&format!("\x1b]{which};{}{ST}", rgb(color)));
                true
            }
            [b"4", pairs @ ..] if pairs.contains(&&b"?"[..]) => {
                for pair in pairs.chunks(2) {
                    if let [index, b"?"] = pair
                        && let Some(n) = std::str::from_utf8(index)
                            .ok()
                            .and_then(|s| s.parse::<u8>().ok())
                    {
                        let color = rgb(self.profile.color(n));
                        self.reply(&format!("\x1b]4;{n};{color}{ST}"));
                    }
                }
                true
            }
            // Program status (OSC 7501): a terminal that reads the reports echoes the query.
            [b"7501", b"?"] => {
                self.reply(&format!("\x1b]7501;?{ST}"));
                true
            }
            [b"52", target, b"?"] => {
                let target = String::from_utf8_lossy(target).into_owned();
                self.reply(&format!("\x1b]52;{target};{ST}"));
                true
            }
            _ => false,
        }
    }

    /// Answers a finished DCS query.
    pub(super) fn answer_dcs(&mut self, query: DcsQuery, payload: &[u8]) {
        match query {
            DcsQuery::Setting => self.answer_setting(payload),
            DcsQuery::Capability => self.answer_capabilities(payload),
        }
    }

    /// DECRQSS for SGR, DECSTBM and DECSCUSR; anything else is reported invalid.
    fn answer_setting(&mut self, payload: &[u8]) {
        let setting = match payload {
            b"m" => {
                let mut sgr = String::new();
                super::style::write_sgr(&mut sgr, &self.cur.pen, true);
                let body = sgr.trim_start_matches("\x1b[").to_string();
                Some(body)
            }
            b"r" => Some(format!("{};{}r", self.top + 1, self.bottom + 1)),
            b" q" => Some(format!("{} q", self.modes.cursor_style.max(1))),
            _ => None,
        };
        match setting {
            Some(body) => self.reply(&format!("\x1bP1$r{body}{ST}")),
            None => self.reply(&format!("\x1bP0$r{ST}")),
        }
    }

    /// XTGETTCAP for the capabilities programs ask about; unknown ones get a clean "no".
    fn answer_capabilities(&mut self, payload: &[u8]) {
        for hex_name in payload.split(|b| *b == b';') {
            let name = decode_hex(hex_name);
            let value = match name.as_deref() {
                Some(b"TN" | b"name") => Some("xterm-256color".to_string()),
                Some(b"Co" | b"colors") => Some("256".to_string()),
                Some(b"RGB") => Some("8/8/8".to_string()),
                _ => None,
            };
            match value {
                Some(value) => {
                    let mut hex_value = String::new();
                    for b in value.bytes() {
                        let _ = write!(hex_value, "{b:02X}");
                    }
                    let name = String::from_utf8_lossy(hex_name).into_owned();
                    self.reply(&format!("\x1bP1+r{name}={hex_value}{ST}"));
                }
                None => self.reply(&format!("\x1bP0+r{ST}")),
            }
        }
    }
}

fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    hex.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::model::Model;

    fn answers(input: &[u8]) -> String {
        let mut m = Model::new(24, 80, 10);
        m.process(input).expect("process");
        String::from_utf8_lossy(&m.take_answers()).into_owned()
    }

    #[test]
    fn each_query_is_answered_before_the_da1_that_follows_it() {
        let got = answers(b"\x1b[>q\x1b[c\x1b[?2026$p\x1b[c\x1b]11;?\x07\x1b[c");
        let version = format!("\x1bP>|linger {}\x1b\\", env!("CARGO_PKG_VERSION"));
        assert_eq!(
            got,
            format!(
                "{version}\x1b[?62;22c\x1b[?2026;2$y\x1b[?62;22c\x1b]11;rgb:1c1c/1c1c/1c1c\x1b\\\x1b[?62;22c"
            )
        );
    }

    #[test]
    fn modes_are_reported_as_they_are() {
        assert_eq!(answers(b"\x1b[?2004h\x1b[?2004$p"), "\x1b[?2004;1$y");
        assert_eq!(answers(b"\x1b[?1049h\x1b[?1049$p"), "\x1b[?1049;1$y");
        assert_eq!(answers(b"\x1b[?12345$p"), "\x1b[?12345;0$y");
        assert_eq!(answers(b"\x1b[4h\x1b[4$p"), "\x1b[4;1$y");
    }

    #[test]
    fn kitty_flags_only_when_the_users_terminal_has_them() {
        assert_eq!(answers(b"\x1b[>1u\x1b[?u"), "");
        let mut m = Model::new(24, 80, 10);
        m.set_profile(super::Profile {
            kitty_keyboard: true,
            ..Default::default()
        });
        m.process(b"\x1b[>5u\x1b[?u").expect("process");
        assert_eq!(m.take_answers(), b"\x1b[?5u");
    }

    #[test]
    fn settings_capabilities_sizes_and_colours() {
        assert_eq!(answers(b"\x1b[1;31m\x1bP$qm\x1b\\"), "\x1bP1$r1;31m\x1b\\");
        assert_eq!(answers(b"\x1b[2;20r\x1bP$qr\x1b\\"), "\x1bP1$r2;20r\x1b\\");
        assert_eq!(answers(b"\x1bP$qxyz\x1b\\"), "\x1bP0$r\x1b\\");
        // "Co" and an unknown name.
        assert_eq!(
            answers(b"\x1bP+q436f;5858\x1b\\"),
            "\x1bP1+r436f=323536\x1b\\\x1bP0+r\x1b\\"
        );
        assert_eq!(answers(b"\x1b[18t"), "\x1b[8;24;80t");
        assert_eq!(answers(b"\x1b[?996n"), "\x1b[?997;1n");
        assert_eq!(
            answers(b"\x1b]4;1;?\x07"),
            "\x1b]4;1;rgb:cdcd/0000/0000\x1b\\"
        );
        assert_eq!(answers(b"\x1b]52;c;?\x07"), "\x1b]52;c;\x1b\\");
        assert_eq!(answers(b"\x1b[=c"), "\x1bP!|00000000\x1b\\");
    }
}
