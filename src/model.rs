//! A session's terminal model: linger's engine (`crate::term`) behind the API the server uses,
//! with panic containment, so one odd byte stream cannot take the server down.

use std::panic::AssertUnwindSafe;

use crate::history::History;
use crate::term::Term;

pub struct Model {
    term: Term,
}

fn test_hooks_enabled() -> bool {
    cfg!(debug_assertions) && std::env::var_os("LINGER_TEST_HOOKS").is_some_and(|v| v == "1")
}

impl Model {
    pub fn new(rows: u16, cols: u16, scrollback: usize) -> Model {
        Model::with_history(rows, cols, History::new(scrollback))
    }

    fn with_history(rows: u16, cols: u16, history: History) -> Model {
        let mut term = Term::new(rows, cols, history);
        term.engine_mut().set_test_hooks(test_hooks_enabled());
        Model { term }
    }

    /// Feeds output into the model. A panic inside the engine is caught: the model is rebuilt
    /// empty (keeping the history, the output log's pending lines and the title) and the panic
    /// message returned.
    pub fn process(&mut self, bytes: &[u8]) -> Result<(), String> {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| self.term.process(bytes)));
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
        Model::with_history(rows, cols, history)
    }

    /// Starts keeping a copy of every line that scrolls off, for [`Model::take_fresh_lines`].
    pub fn collect_fresh_lines(&mut self) {
        self.term.engine_mut().collect_fresh_lines();
    }

    /// Lines scrolled off since the last call, each ended by '\n'.
    pub fn take_fresh_lines(&mut self) -> String {
        self.term.engine_mut().take_fresh_lines()
    }

    /// Appends a line of linger's own (a revive separator) to the history.
    pub fn push_history_line(&mut self, line: String) {
        self.term.engine_mut().push_history_line(&line);
    }

    fn rebuild(&mut self) {
        let (rows, cols) = self.size();
        let salvage = self.term.engine_mut().salvage();
        let profile = self.term.engine().profile().clone();
        *self = Model::with_history(rows, cols, History::new(0));
        self.term.engine_mut().restore(salvage);
        self.term.engine_mut().set_profile(profile);
    }

    /// What the session's terminal reports about itself (colours, kitty keyboard support),
    /// from the client that attached or typed last.
    pub fn set_profile(&mut self, profile: crate::term::Profile) {
        self.term.engine_mut().set_profile(profile);
    }

    pub fn profile(&self) -> &crate::term::Profile {
        self.term.engine().profile()
    }

    /// Bells, notifications, progress and prompt marks seen since the last call.
    pub fn take_signals(&mut self) -> Vec<crate::term::Signal> {
        self.term.engine_mut().take_signals()
    }

    /// Replies owed to the app for queries seen since the last call.
    pub fn take_answers(&mut self) -> Vec<u8> {
        self.term.engine_mut().take_answers()
    }

    /// Resizes, reflowing the main screen (see `term::reflow`).
    pub fn resize(&mut self, rows: u16, cols: u16) {
        self.term
            .engine_mut()
            .resize(rows.max(1) as usize, cols.max(1) as usize);
    }

    pub fn size(&self) -> (u16, u16) {
        let (rows, cols) = self.term.engine().size();
        (rows as u16, cols as u16)
    }

    /// The app asked for bracketed paste (mode 2004).
    pub fn bracketed_paste(&self) -> bool {
        self.term.engine().modes().bracketed_paste
    }

    /// The app asked for focus events (mode 1004).
    pub fn focus_reporting(&self) -> bool {
        self.term.engine().modes().focus_reporting
    }

    /// The app is inside a synchronized-output frame (mode 2026).
    pub fn synchronized(&self) -> bool {
        self.term.engine().modes().synchronized
    }

    /// The app asked for application cursor keys (DECCKM).
    pub fn application_cursor(&self) -> bool {
        self.term.engine().modes().app_cursor
    }

    /// Cursor row and column, 0-based.
    pub fn cursor_position(&self) -> (u16, u16) {
        let c = self.term.engine().cursor();
        (c.row as u16, c.col as u16)
    }

    pub fn cursor_visible(&self) -> bool {
        self.term.engine().modes().cursor_visible
    }

    pub fn alternate_screen(&self) -> bool {
        self.term.engine().alternate_screen()
    }

    pub fn history(&self) -> &History {
        self.term.engine().history()
    }

    pub fn title(&self) -> &str {
        self.term.engine().title()
    }

    /// The engine, for tests and checks that compare state the model API does not expose.
    pub fn engine(&self) -> &crate::term::Engine {
        self.term.engine()
    }

    /// The screen as saved to disk: [`Model::screen_lines`] with SGR, and the cursor's row
    /// kept out to the cursor, so that output replayed over it after a crash (a shell's prompt
    /// ends in a blank it typed) lands where the program thinks its cursor is.
    pub fn saved_screen_lines(&self) -> Vec<String> {
        use unicode_width::UnicodeWidthStr;
        let mut rows = self.screen_lines(true);
        let (row, col) = self.cursor_position();
        if let Some(line) = rows.get_mut(row as usize) {
            let used = strip_sgr(line).width();
            if (col as usize) > used {
                line.push_str(&" ".repeat(col as usize - used));
            }
        }
        rows
    }

    /// Plain text of each screen row, trailing blanks trimmed; with `ansi`, each row carries
    /// self-contained SGR (readable by [`strip_sgr`]).
    pub fn screen_lines(&self, ansi: bool) -> Vec<String> {
        let engine = self.term.engine();
        (0..engine.size().0)
            .map(|row| engine.row_text(row, ansi))
            .collect()
    }

    /// How many columns of soft-wrapped row `row` its line fills (see
    /// [`crate::term::Engine::row_wrap_width`]); `None` when it is not wrapped.
    pub fn row_wrap_width(&self, row: u16) -> Option<usize> {
        self.term.engine().row_wrap_width(row as usize)
    }

    /// Bytes that rebuild this model on a terminal; see `term::replay`. With `history`, for a
    /// terminal that already shows the user's text; without, a redraw for a lagging client.
    pub fn replay(&self, history: bool) -> Vec<u8> {
        self.term.engine().replay(history)
    }

    /// The replay for a fresh attach, with at most `history_lines` of the newest history.
    pub fn replay_for_attach(&self, history_lines: usize) -> Vec<u8> {
        self.term.engine().replay_with(Some(history_lines))
    }
}

/// A history line's text without its SGR sequences.
pub fn strip_sgr(line: &str) -> String {
    crate::term::strip_sgr(line)
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

    #[test]
    fn history_and_title_survive_a_rebuild() {
        let mut m = Model::new(2, 10, 10);
        m.collect_fresh_lines();
        m.process(b"\x1b]2;t\x07a\r\nb\r\nc").unwrap();
        m.rebuild();
        assert_eq!(m.title(), "t");
        assert_eq!(m.history().len(), 1);
        assert_eq!(m.take_fresh_lines(), "a\n");
    }

    #[test]
    fn revive_separator_stands_alone() {
        let mut m = Model::new(2, 4, 10);
        m.process(b"abcdef").unwrap();
        m.push_history_line("--".into());
        m.process(b"\r\nx\r\ny\r\nz").unwrap();
        let lines: Vec<_> = m.history().since(0).map(|(_, l)| l.to_string()).collect();
        assert_eq!(lines[0], "--");
    }
}
