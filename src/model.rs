//! A session's terminal model: vt100 screen, history ring, tracked modes vt100 lacks, answers
//! to terminal queries, and the replay that recreates it all on a client's terminal.

use std::fmt::Write as _;
use std::num::NonZeroU16;
use std::panic::AssertUnwindSafe;

use crate::history::History;

/// DA1: a VT220-class terminal with ANSI colour, the way most modern terminals describe themselves.
const DA1_ANSWER: &[u8] = b"\x1b[?62;22c";
/// DA2: terminal type 1, firmware "version" 0: apps only check that an answer comes.
const DA2_ANSWER: &[u8] = b"\x1b[>1;10;0c";
const DSR_OK_ANSWER: &[u8] = b"\x1b[0n";

/// OSC that makes the model panic, to test isolation; honoured only in debug builds with
/// `LINGER_TEST_HOOKS=1` in the server's environment.
const TEST_PANIC_OSC: &[u8] = b"7770";

/// vt100 callbacks: everything the screen model reports that linger keeps itself.
struct Tracker {
    history: History,
    /// Scratch buffer for one scrolled row.
    scratch: String,
    /// A row has scrolled off before, so a row without a leading newline continues it.
    line_open: bool,
    capture_state: vt100::capture::BasicFormattedCaptureState,
    answers: Vec<u8>,
    title: String,
    focus_reporting: bool,
    /// Kitty keyboard flags stack (`CSI > f u` pushes, `CSI < n u` pops).
    kitty_flags: Vec<u16>,
    test_hooks: bool,
    /// Lines scrolled off since the last `take_fresh_lines`, each ended by '\n', for the
    /// output log.
    fresh: Option<String>,
}

impl Tracker {
    fn new(history: History) -> Tracker {
        Tracker {
            history,
            scratch: String::new(),
            line_open: false,
            capture_state: Default::default(),
            answers: Vec::new(),
            title: String::new(),
            focus_reporting: false,
            kitty_flags: Vec::new(),
            test_hooks: test_hooks_enabled(),
            fresh: None,
        }
    }
}

fn test_hooks_enabled() -> bool {
    cfg!(debug_assertions) && std::env::var_os("LINGER_TEST_HOOKS").is_some_and(|v| v == "1")
}

fn first_param(params: &[&[u16]]) -> Option<u16> {
    params.first().and_then(|p| p.first()).copied()
}

impl vt100::Callbacks for Tracker {
    fn set_window_title(&mut self, _: &mut vt100::Screen, title: &[u8]) {
        self.title = String::from_utf8_lossy(title).into_owned();
    }

    fn unhandled_csi(
        &mut self,
        screen: &mut vt100::Screen,
        i1: Option<u8>,
        _i2: Option<u8>,
        params: &[&[u16]],
        c: char,
    ) {
        match (i1, c) {
            (None, 'c') if first_param(params).unwrap_or(0) == 0 => {
                self.answers.extend_from_slice(DA1_ANSWER)
            }
            (Some(b'>'), 'c') if first_param(params).unwrap_or(0) == 0 => {
                self.answers.extend_from_slice(DA2_ANSWER)
            }
            (None, 'n') if first_param(params) == Some(5) => {
                self.answers.extend_from_slice(DSR_OK_ANSWER)
            }
            (None | Some(b'?'), 'n') if first_param(params) == Some(6) => {
                let (row, col) = screen.cursor_position();
                let private = if i1.is_some() { "?" } else { "" };
                let answer = format!("\x1b[{private}{};{}R", row + 1, col + 1);
                self.answers.extend_from_slice(answer.as_bytes());
            }
            (Some(b'?'), 'h' | 'l') if params.iter().any(|p| p.first() == Some(&1004)) => {
                self.focus_reporting = c == 'h';
            }
            (Some(b'>'), 'u') => self.kitty_flags.push(first_param(params).unwrap_or(0)),
            (Some(b'<'), 'u') => {
                let n = first_param(params).unwrap_or(1).max(1) as usize;
                let keep = self.kitty_flags.len().saturating_sub(n);
                self.kitty_flags.truncate(keep);
            }
            (Some(b'='), 'u') => {
                let flags = first_param(params).unwrap_or(0);
                let mode = params.get(1).and_then(|p| p.first()).copied().unwrap_or(1);
                if self.kitty_flags.is_empty() {
                    self.kitty_flags.push(0);
                }
                if let Some(top) = self.kitty_flags.last_mut() {
                    *top = match mode {
                        2 => *top | flags,
                        3 => *top & !flags,
                        _ => flags,
                    };
                }
            }
            _ => {}
        }
    }

    fn unhandled_osc(&mut self, _: &mut vt100::Screen, params: &[&[u8]]) {
        if self.test_hooks && params.first() == Some(&TEST_PANIC_OSC) {
            panic!("test hook: model panic requested by the session's output");
        }
    }

    fn on_scroll(&mut self, contents: vt100::capture::RowContents<'_>, alternate_screen: bool) {
        if alternate_screen {
            return;
        }
        // One capture state runs across all rows, so each row's SGR is relative to the end of
        // the one before: history replays as one continuous stream. vt100 starts a row that
        // begins a new line with '\n'; a row without it continues the previous (wrapped) line.
        // The row is formatted into a reused buffer: no allocation per scrolled row.
        let mut row = std::mem::take(&mut self.scratch);
        row.clear();
        let _ = contents.write_formatted_basic(&mut row, &mut self.capture_state);
        match row.strip_prefix('\n') {
            Some(line) => self.push_line(line),
            None if !self.line_open => self.push_line(&row),
            None => {
                if self.history.append_to_last(&row) {
                    if let Some(fresh) = self.fresh.as_mut() {
                        fresh.pop();
                        fresh.push_str(&row);
                        fresh.push('\n');
                    }
                } else {
                    self.push_line(&row);
                }
            }
        }
        self.scratch = row;
        self.line_open = true;
    }
}

impl Tracker {
    fn push_line(&mut self, line: &str) {
        if let Some(fresh) = self.fresh.as_mut() {
            fresh.push_str(line);
            fresh.push('\n');
        }
        self.history.push(line);
    }
}

/// Watches the output for DECSTBM (scroll region), which vt100 applies but does not expose.
#[derive(Default)]
struct RegionWatch {
    state: ScanState,
    params: Vec<u8>,
    plain_csi: bool,
    region: Option<(u16, u16)>,
}

#[derive(Default, Clone, Copy, PartialEq)]
enum ScanState {
    #[default]
    Ground,
    Escape,
    Csi,
}

impl RegionWatch {
    fn feed(&mut self, bytes: &[u8], rows: u16) {
        let mut i = 0;
        while i < bytes.len() {
            if self.state == ScanState::Ground {
                match memchr::memchr(0x1b, &bytes[i..]) {
                    Some(off) => {
                        i += off + 1;
                        self.state = ScanState::Escape;
                    }
                    None => return,
                }
                continue;
            }
            let b = bytes[i];
            i += 1;
            match self.state {
                ScanState::Escape => {
                    if b == b'[' {
                        self.state = ScanState::Csi;
                        self.params.clear();
                        self.plain_csi = true;
                    } else if b != 0x1b {
                        if b == b'c' {
                            self.region = None;
                        }
                        self.state = ScanState::Ground;
                    }
                }
                ScanState::Csi => match b {
                    b'0'..=b'9' | b';' if self.params.len() < 16 => {
                        self.params.push(b);
                    }
                    0x1b => self.state = ScanState::Escape,
                    0x20..=0x3f => self.plain_csi = false,
                    0x40..=0x7e => {
                        if b == b'r' && self.plain_csi {
                            self.region = parse_region(&self.params, rows);
                        }
                        self.state = ScanState::Ground;
                    }
                    _ => {}
                },
                ScanState::Ground => {}
            }
        }
    }
}

fn parse_region(params: &[u8], rows: u16) -> Option<(u16, u16)> {
    let text = std::str::from_utf8(params).ok()?;
    let mut parts = text.split(';');
    let top: u16 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(1);
    let bottom: u16 = parts
        .next()
        .and_then(|p| p.parse().ok())
        .filter(|&b| b > 0)
        .unwrap_or(rows)
        .min(rows);
    if top >= bottom || (top == 1 && bottom == rows) {
        None
    } else {
        Some((top, bottom))
    }
}

pub struct Model {
    parser: vt100::Parser<Tracker>,
    /// The start of a UTF-8 sequence the last chunk ended in.
    utf8_tail: Vec<u8>,
    region: RegionWatch,
    scrollback: usize,
}

fn nz(n: u16) -> NonZeroU16 {
    NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN)
}

impl Model {
    pub fn new(rows: u16, cols: u16, scrollback: usize) -> Model {
        Model::with_history(rows, cols, scrollback, History::new(scrollback))
    }

    fn with_history(rows: u16, cols: u16, scrollback: usize, history: History) -> Model {
        Model {
            parser: vt100::Parser::new_with_callbacks(nz(rows), nz(cols), 0, Tracker::new(history)),
            region: RegionWatch::default(),
            utf8_tail: Vec::new(),
            scrollback,
        }
    }

    /// Feeds output into the model. A panic inside vt100 is caught: the model is rebuilt empty
    /// (keeping the history) and the panic message returned, so one odd byte stream cannot take
    /// the server down.
    pub fn process(&mut self, bytes: &[u8]) -> Result<(), String> {
        // vte (under vt100) drops characters after a UTF-8 sequence split across two calls
        // (alacritty/vte#159): hold an incomplete sequence at the end back for the next call.
        let joined;
        let mut bytes = bytes;
        if !self.utf8_tail.is_empty() {
            let mut all = std::mem::take(&mut self.utf8_tail);
            all.extend_from_slice(bytes);
            joined = all;
            bytes = &joined;
        }
        let keep = incomplete_utf8_tail(bytes);
        let (bytes, tail) = bytes.split_at(bytes.len() - keep);
        self.utf8_tail.extend_from_slice(tail);
        let rows = self.size().0;
        self.region.feed(bytes, rows);
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.parser.process(bytes)));
        match result {
            Ok(()) => Ok(()),
            Err(panic) => {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                self.rebuild();
                Err(message)
            }
        }
    }

    /// A model whose history starts with `lines` (a revived session's earlier output).
    pub fn with_earlier_lines(
        rows: u16,
        cols: u16,
        scrollback: usize,
        lines: Vec<String>,
    ) -> Model {
        let mut history = History::new(scrollback);
        for line in lines {
            history.push(&line);
        }
        Model::with_history(rows, cols, scrollback, history)
    }

    /// Starts keeping a copy of every line that scrolls off, for [`Model::take_fresh_lines`].
    pub fn collect_fresh_lines(&mut self) {
        self.parser
            .callbacks_mut()
            .fresh
            .get_or_insert_with(String::new);
    }

    /// Lines scrolled off since the last call, each ended by '\n'.
    pub fn take_fresh_lines(&mut self) -> String {
        match self.parser.callbacks_mut().fresh.as_mut() {
            Some(fresh) => std::mem::take(fresh),
            None => String::new(),
        }
    }

    /// Appends a line of linger's own (a revive separator) to the history.
    pub fn push_history_line(&mut self, line: String) {
        let tracker = self.parser.callbacks_mut();
        if let Some(fresh) = tracker.fresh.as_mut() {
            fresh.push_str(&line);
            fresh.push('\n');
        }
        tracker.history.push(&line);
        // The separator stands alone: the next scrolled row starts a new line from default
        // attributes.
        tracker.capture_state = Default::default();
        tracker.line_open = false;
    }

    fn rebuild(&mut self) {
        let (rows, cols) = self.size();
        let tracker = self.parser.callbacks_mut();
        let history = std::mem::take(&mut tracker.history);
        let title = std::mem::take(&mut tracker.title);
        let fresh = tracker.fresh.take();
        *self = Model::with_history(rows, cols, self.scrollback, history);
        let tracker = self.parser.callbacks_mut();
        tracker.title = title;
        tracker.fresh = fresh;
    }

    /// Replies owed to the app for queries seen since the last call.
    pub fn take_answers(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.parser.callbacks_mut().answers)
    }

    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.parser.set_size(nz(rows), nz(cols));
        self.region.region = None;
    }

    pub fn size(&self) -> (u16, u16) {
        let (rows, cols) = self.parser.screen().size();
        (rows.get(), cols.get())
    }

    /// The vt100 screen, for the fuzz checks only; goes with the engine swap.
    #[doc(hidden)]
    pub fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// The app asked for bracketed paste (mode 2004).
    pub fn bracketed_paste(&self) -> bool {
        self.screen().bracketed_paste()
    }

    /// The app asked for application cursor keys (DECCKM).
    pub fn application_cursor(&self) -> bool {
        self.screen().application_cursor()
    }

    /// Cursor row and column, 0-based.
    pub fn cursor_position(&self) -> (u16, u16) {
        self.screen().cursor_position()
    }

    pub fn cursor_visible(&self) -> bool {
        !self.screen().hide_cursor()
    }

    pub fn alternate_screen(&self) -> bool {
        self.screen().alternate_screen()
    }

    pub fn history(&self) -> &History {
        &self.parser.callbacks().history
    }

    pub fn title(&self) -> &str {
        &self.parser.callbacks().title
    }

    /// Plain text of each screen row, trailing blanks trimmed; with `ansi`, SGR kept.
    pub fn screen_lines(&self, ansi: bool) -> Vec<String> {
        let screen = self.screen();
        let (_, cols) = self.size();
        if ansi {
            screen
                .rows_formatted(0, cols)
                .map(|r| format!("{}\x1b[m", r.trim_end_matches(' ')))
                .collect()
        } else {
            screen
                .rows(0, cols)
                .map(|r| r.trim_end().to_string())
                .collect()
        }
    }

    /// Bytes that rebuild this model on a terminal. With `history`, the history ring comes first
    /// as plain lines so it lands in the terminal's own scrollback; then the screen (entering
    /// the alternate screen first when the app is in it), cursor, input modes and what vt100
    /// does not restore itself: scroll region, title, focus reporting and kitty keyboard flags.
    pub fn replay(&self, history: bool) -> Vec<u8> {
        let screen = self.screen();
        let (rows, _) = self.size();
        let mut out = String::with_capacity(64 * 1024);
        out.push_str("\x1b[!p\x1b[m\x1b[?1049l\x1b[r");
        if history {
            // Lines carry SGR relative to the line before, so they replay as one stream.
            for (_, line) in self.history().since(0) {
                out.push_str(line);
                out.push_str("\r\n");
            }
            out.push_str("\x1b[m");
            // Push whatever is on the terminal (history included) into its scrollback before the
            // screen is drawn over it.
            for _ in 0..rows {
                out.push_str("\r\n");
            }
        }
        if screen.alternate_screen() {
            out.push_str("\x1b[?1049h");
        }
        out.push_str(&screen.state_formatted());
        let tracker = self.parser.callbacks();
        if let Some((top, bottom)) = self.region.region {
            // DECSTBM homes the cursor; save and restore it around the region so a cursor
            // parked past the last column (wrap pending) stays exactly where it was.
            let _ = write!(out, "\x1b7\x1b[{top};{bottom}r\x1b8");
        }
        if !tracker.title.is_empty() {
            let _ = write!(
                out,
                "\x1b]2;{}\x07",
                tracker.title.replace(['\x07', '\x1b'], "")
            );
        }
        if tracker.focus_reporting {
            out.push_str("\x1b[?1004h");
        }
        for flags in &tracker.kitty_flags {
            let _ = write!(out, "\x1b[>{flags}u");
        }
        out.into_bytes()
    }
}

/// A history line's text without its SGR sequences.
pub fn strip_sgr(line: &str) -> String {
    vt100::capture::basic_formatted_to_plain(line).collect()
}

/// How many bytes at the end of `bytes` are the start of a UTF-8 sequence still missing its
/// continuation bytes.
fn incomplete_utf8_tail(bytes: &[u8]) -> usize {
    let n = bytes.len();
    for back in 1..=n.min(3) {
        let b = bytes[n - back];
        if b & 0xc0 == 0x80 {
            continue; // a continuation byte: keep looking for the lead
        }
        let needed = match b {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => return 0,
        };
        return if back < needed { back } else { 0 };
    }
    0
}

#[cfg(test)]
mod tests {
    use super::Model;

    #[test]
    fn scrolled_rows_become_history_lines() {
        let mut m = Model::new(3, 10, 100);
        m.process(b"one\r\ntwo\r\nthree\r\nfour\r\n").unwrap();
        let lines: Vec<_> = m.history().since(0).map(|(_, l)| l.to_string()).collect();
        assert_eq!(lines, vec!["one", "two"]);
    }

    #[test]
    fn wrapped_rows_join_into_one_line() {
        let mut m = Model::new(2, 4, 100);
        m.process(b"abcdefgh\r\nx\r\ny\r\n").unwrap();
        let lines: Vec<_> = m.history().since(0).map(|(_, l)| l.to_string()).collect();
        assert_eq!(lines, vec!["abcdefgh", "x"]);
    }

    #[test]
    fn utf8_split_across_chunks_keeps_every_character() {
        let text = "é!日本".as_bytes();
        let mut m = Model::new(2, 20, 10);
        m.process(&text[..1]).unwrap();
        m.process(&text[1..]).unwrap();
        assert_eq!(m.screen_lines(false)[0], "é!日本");
        let mut m = Model::new(2, 20, 10);
        for b in text {
            m.process(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(m.screen_lines(false)[0], "é!日本");
    }

    #[test]
    fn endless_line_is_kept_in_bounded_pieces() {
        let mut m = Model::new(2, 100, 10);
        for _ in 0..5000 {
            m.process(&[b'x'; 100]).unwrap();
        }
        assert!(m.history().bytes() <= 64 * 1024 + crate::history::MAX_LINE_BYTES);
    }

    #[test]
    fn answers_queries_from_the_model() {
        let mut m = Model::new(24, 80, 10);
        m.process(b"\x1b[3;5H\x1b[6n\x1b[c\x1b[>c\x1b[5n").unwrap();
        assert_eq!(
            m.take_answers(),
            b"\x1b[3;5R\x1b[?62;22c\x1b[>1;10;0c\x1b[0n".to_vec()
        );
        assert!(m.take_answers().is_empty());
    }

    #[test]
    fn tracks_scroll_region() {
        let mut m = Model::new(24, 80, 10);
        m.process(b"\x1b[2;20r").unwrap();
        assert!(String::from_utf8_lossy(&m.replay(false)).contains("\x1b[2;20r"));
        m.process(b"\x1b[r").unwrap();
        assert!(!String::from_utf8_lossy(&m.replay(false)).contains("\x1b[2;20r"));
    }
}
