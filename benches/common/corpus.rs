//! Deterministic terminal-output corpora shared by the benches: log lines, SGR-coloured lines,
//! full-screen TUI repaints in synchronized-output frames, and Unicode/wide text.

#![allow(dead_code)]

use std::fmt::Write as _;

/// xorshift64*: deterministic and dependency-free; the corpora only need variety.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

const WORDS: &[&str] = &[
    "request",
    "handler",
    "worker",
    "session",
    "compile",
    "linking",
    "cache",
    "miss",
    "hit",
    "retry",
    "timeout",
    "connected",
    "upstream",
    "tokens",
    "prompt",
    "response",
    "tool_call",
    "read_file",
    "src/server/session.rs",
    "Cargo.toml",
    "ok",
    "error",
    "warning:",
    "unused",
    "variable",
    "`model`",
    "finished",
    "in",
    "0.42s",
    "bytes=65536",
    "id=7f3a9c",
    "status=200",
    "path=/api/v1/sessions",
];

const LEVELS: &[&str] = &["INFO ", "DEBUG", "WARN ", "ERROR", "TRACE"];

fn words(rng: &mut Rng, out: &mut String, target_len: usize) {
    while out.len() < target_len {
        out.push(' ');
        out.push_str(rng.pick(WORDS));
    }
}

/// One plain log line (40 to 190 columns), without the line ending.
pub fn plain_line(rng: &mut Rng, n: u64) -> String {
    let mut line = format!(
        "2026-11-21T10:{:02}:{:02}.{:03}Z {} worker[{}]:",
        (n / 60_000) % 60,
        (n / 1000) % 60,
        n % 1000,
        rng.pick(LEVELS),
        rng.below(32)
    );
    let target = 40 + rng.below(150);
    words(rng, &mut line, target);
    line.truncate(190);
    line
}

/// One SGR-coloured line: 16-colour, 256-colour and truecolour runs, bold and underline.
pub fn sgr_line(rng: &mut Rng, n: u64) -> String {
    let mut line = String::new();
    let level = rng.below(LEVELS.len());
    let colour = [32, 36, 33, 31, 90][level];
    let _ = write!(
        line,
        "\x1b[2m{:02}:{:02}:{:02}\x1b[0m \x1b[1;{colour}m{}\x1b[0m \x1b[38;5;{}m{}\x1b[39m",
        (n / 3600) % 24,
        (n / 60) % 60,
        n % 60,
        LEVELS[level],
        rng.below(256),
        rng.pick(WORDS)
    );
    let runs = 3 + rng.below(8);
    for _ in 0..runs {
        match rng.below(5) {
            0 => {
                let _ = write!(
                    line,
                    " \x1b[38;2;{};{};{}m{}\x1b[m",
                    rng.below(256),
                    rng.below(256),
                    rng.below(256),
                    rng.pick(WORDS)
                );
            }
            1 => {
                let _ = write!(line, " \x1b[4m{}\x1b[24m", rng.pick(WORDS));
            }
            2 => {
                let _ = write!(
                    line,
                    " \x1b[48;5;{}m{}\x1b[49m",
                    rng.below(256),
                    rng.pick(WORDS)
                );
            }
            _ => {
                line.push(' ');
                line.push_str(rng.pick(WORDS));
            }
        }
    }
    line.push_str("\x1b[m");
    line
}

const WIDE: &[&str] = &[
    "日本語のテキスト",
    "中文字符测试",
    "한국어 문장",
    "漢字かな交じり文",
    "🚀",
    "✅",
    "👍🏽",
    "👨‍👩‍👧",
    "🦀 Rust",
    "🔥🔥",
    "café",
    "naïve",
    "e\u{301}",
    "Ελληνικά",
    "кириллица",
    "│",
    "─┼─",
    "→",
    "…",
    "ascii",
    "text",
];

/// One line of mixed-width Unicode (about 60 to 260 columns, so some lines wrap at 200).
pub fn unicode_line(rng: &mut Rng) -> String {
    let mut line = String::new();
    let target = 60 + rng.below(200);
    let mut cols = 0;
    while cols < target {
        let w = rng.pick(WIDE);
        line.push_str(w);
        line.push(' ');
        // Rough column count: CJK and emoji are wide, the rest narrow.
        cols += w
            .chars()
            .map(|c| if (c as u32) > 0x2e80 { 2 } else { 1 })
            .sum::<usize>()
            + 1;
    }
    line
}

/// Appends lines from `gen` with `\r\n` endings until `out` reaches `size` bytes.
fn lines_until(out: &mut Vec<u8>, size: usize, mut make: impl FnMut(u64) -> String) {
    let mut n = 0u64;
    while out.len() < size {
        out.extend_from_slice(make(n).as_bytes());
        out.extend_from_slice(b"\r\n");
        n += 1;
    }
}

pub fn plain(size: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(size + 256);
    lines_until(&mut out, size, |n| plain_line(&mut rng, n));
    out
}

pub fn sgr(size: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(size + 512);
    lines_until(&mut out, size, |n| sgr_line(&mut rng, n));
    out
}

pub fn unicode(size: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(size + 1024);
    lines_until(&mut out, size, |_| unicode_line(&mut rng));
    out
}

/// One full-screen repaint inside a synchronized-output frame: every row positioned and
/// rewritten with colour (an editor-like view scrolled by `frame` lines), a reverse-video status
/// line, then the cursor placed.
pub fn tui_frame(rng: &mut Rng, frame: u64, rows: u16, cols: u16, out: &mut Vec<u8>) {
    let mut s = String::with_capacity(rows as usize * (cols as usize + 48));
    s.push_str("\x1b[?2026h\x1b[?25l\x1b[H");
    let body = rows.saturating_sub(1);
    for r in 1..=body {
        let lineno = frame + r as u64;
        let _ = write!(s, "\x1b[{r};1H\x1b[38;5;244m{lineno:>5} \x1b[m");
        let mut width = 6;
        let indent = (lineno % 5) as usize * 4;
        s.extend(std::iter::repeat_n(' ', indent));
        width += indent;
        while width + 12 < cols as usize * 3 / 4 {
            let word = rng.pick(WORDS);
            let colour = [31, 32, 33, 34, 35, 36, 37][rng.below(7)];
            let _ = write!(s, "\x1b[{colour}m{word}\x1b[m ");
            width += word.len() + 1;
        }
        s.push_str("\x1b[K");
    }
    let status = format!(
        " NORMAL  src/server/session.rs  [+]  frame {frame}  {}%",
        frame % 100
    );
    let _ = write!(
        s,
        "\x1b[{rows};1H\x1b[7m{status:<width$}\x1b[m\x1b[{};{}H\x1b[?25h\x1b[?2026l",
        1 + frame % body.max(1) as u64,
        1 + frame % 40,
        width = cols as usize
    );
    out.extend_from_slice(s.as_bytes());
}

/// Full-screen repaints on the alternate screen, as a TUI like an editor would draw them.
pub fn tui(size: usize, rows: u16, cols: u16, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(size + 16 * 1024);
    out.extend_from_slice(b"\x1b[?1049h");
    let mut frame = 0;
    while out.len() < size {
        tui_frame(&mut rng, frame, rows, cols, &mut out);
        frame += 1;
    }
    out.extend_from_slice(b"\x1b[?1049l");
    out
}

/// A mix of plain lines, SGR lines and bursts of full-screen repaints on the alternate screen,
/// in blocks of about 64 KiB.
pub fn mixed(size: usize, rows: u16, cols: u16, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(size + 64 * 1024);
    let mut block = 0u64;
    let mut n = 0u64;
    while out.len() < size {
        let end = out.len() + 64 * 1024;
        match block % 3 {
            0 => {
                while out.len() < end {
                    out.extend_from_slice(plain_line(&mut rng, n).as_bytes());
                    out.extend_from_slice(b"\r\n");
                    n += 1;
                }
            }
            1 => {
                while out.len() < end {
                    out.extend_from_slice(sgr_line(&mut rng, n).as_bytes());
                    out.extend_from_slice(b"\r\n");
                    n += 1;
                }
            }
            _ => {
                out.extend_from_slice(b"\x1b[?1049h");
                let mut frame = 0;
                while out.len() < end {
                    tui_frame(&mut rng, frame, rows, cols, &mut out);
                    frame += 1;
                }
                out.extend_from_slice(b"\x1b[?1049l");
            }
        }
        block += 1;
    }
    out
}

/// `count` history lines (alternating plain and SGR) followed by a full-screen draw on the main
/// screen whose last row ends with `marker`.
pub fn history_then_screen(count: usize, rows: u16, cols: u16, marker: &str) -> Vec<u8> {
    let mut rng = Rng::new(7);
    let mut out = Vec::with_capacity(count * 120 + 32 * 1024);
    for n in 0..count as u64 {
        let line = if n % 2 == 0 {
            plain_line(&mut rng, n)
        } else {
            sgr_line(&mut rng, n)
        };
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let mut frame = Vec::new();
    tui_frame(&mut rng, 0, rows, cols, &mut frame);
    out.extend_from_slice(b"\x1b[2J");
    out.extend_from_slice(&frame);
    let _ = write!(
        MarkerSink(&mut out),
        "\x1b[{rows};{}H\x1b[m{marker}",
        (cols as usize).saturating_sub(marker.len() + 1).max(1)
    );
    out
}

struct MarkerSink<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for MarkerSink<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}
