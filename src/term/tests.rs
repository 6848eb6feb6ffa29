//! Unit tests of the engine: printing, wrapping, editing, erasing, styles and charsets.

use super::Term;
use crate::history::History;

pub(super) fn term(rows: u16, cols: u16) -> Term {
    Term::new(rows, cols, History::new(100))
}

pub(super) fn feed(rows: u16, cols: u16, bytes: &[u8]) -> Term {
    let mut t = term(rows, cols);
    t.process(bytes);
    t
}

pub(super) fn lines(t: &Term) -> Vec<String> {
    let e = t.engine();
    (0..e.size().0).map(|r| e.row_text(r, false)).collect()
}

pub(super) fn history(t: &Term) -> Vec<String> {
    t.engine()
        .history()
        .since(0)
        .map(|(_, l)| l.to_string())
        .collect()
}

pub(super) fn cursor(t: &Term) -> (usize, usize) {
    (t.engine().cursor().row, t.engine().cursor().col)
}

fn style_at(t: &Term, row: usize, col: usize) -> super::Style {
    t.engine()
        .cell(row, col)
        .map(|c| c.style())
        .unwrap_or_default()
}

#[test]
fn prints_and_wraps_with_pending_wrap() {
    let t = feed(3, 5, b"abcde");
    assert_eq!(lines(&t)[0], "abcde");
    assert_eq!(cursor(&t), (0, 4));
    assert!(t.engine().cursor().pending_wrap);
    let t = feed(3, 5, b"abcdef");
    assert_eq!(lines(&t)[..2], ["abcde", "f"]);
    assert_eq!(cursor(&t), (1, 1));
}

#[test]
fn autowrap_off_overwrites_the_last_column() {
    let t = feed(3, 5, b"\x1b[?7labcdefg");
    assert_eq!(lines(&t)[0], "abcdg");
    assert_eq!(lines(&t)[1], "");
}

#[test]
fn wide_char_at_last_column_wraps_and_keeps_one_line() {
    let mut t = feed(3, 5, "abcd日".as_bytes());
    assert_eq!(lines(&t)[..2], ["abcd", "日"]);
    assert_eq!(cursor(&t), (1, 2));
    t.process(b"\r\n\r\n\r\n");
    assert_eq!(history(&t)[0], "abcd日");
}

#[test]
fn combining_marks_and_zwj_join_the_previous_cell() {
    let t = feed(2, 10, "e\u{301}x👩\u{200d}💻y".as_bytes());
    let e = t.engine();
    assert_eq!(e.cell(0, 0).map(|c| c.text()).as_deref(), Some("e\u{301}"));
    assert_eq!(
        e.cell(0, 2).map(|c| c.text()).as_deref(),
        Some("👩\u{200d}💻")
    );
    assert_eq!(e.cell(0, 4).map(|c| c.text()).as_deref(), Some("y"));
}

#[test]
fn overwriting_half_a_wide_char_blanks_the_other_half() {
    let t = feed(2, 10, "日本\x1b[1;2Hx".as_bytes());
    assert_eq!(lines(&t)[0], " x本");
}

#[test]
fn dec_special_graphics_draw_lines() {
    let t = feed(2, 10, b"\x1b(0lqqk\x1b(Bq");
    assert_eq!(lines(&t)[0], "┌──┐q");
    let t = feed(2, 10, b"\x1b)0a\x0eqx\x0fq");
    assert_eq!(lines(&t)[0], "a─│q");
}

#[test]
fn decsc_decrc_restore_position_pen_and_charset() {
    let t = feed(
        5,
        10,
        b"\x1b[2;3H\x1b[31m\x1b(0\x1b7\x1b[m\x1b(B\x1b[H\x1b8q",
    );
    assert_eq!(cursor(&t), (1, 3));
    assert_eq!(lines(&t)[1], "  ─");
    assert_eq!(style_at(&t, 1, 2).fg(), super::Color::Idx(1));
    let t = feed(5, 10, b"\x1b[3;4H\x1b[s\x1b[H\x1b[u");
    assert_eq!(cursor(&t), (2, 3));
}

#[test]
fn saved_cursor_is_per_screen() {
    let t = feed(5, 10, b"\x1b[2;2H\x1b7\x1b[?1049h\x1b[4;4H\x1b7\x1b[H\x1b8");
    assert_eq!(cursor(&t), (3, 3));
    let t = feed(
        5,
        10,
        b"\x1b[2;2H\x1b7\x1b[?1049h\x1b[4;4H\x1b7\x1b[?1049l\x1b8",
    );
    assert_eq!(cursor(&t), (1, 1));
}

#[test]
fn decstbm_homes_cursor_and_origin_mode_is_relative() {
    let t = feed(10, 10, b"\x1b[5;5H\x1b[3;6r");
    assert_eq!(cursor(&t), (0, 0));
    let t = feed(10, 10, b"\x1b[3;6r\x1b[?6h");
    assert_eq!(cursor(&t), (2, 0));
    let t = feed(10, 10, b"\x1b[3;6r\x1b[?6h\x1b[2;2H\x1b[20;1H");
    assert_eq!(cursor(&t), (5, 0));
}

#[test]
fn scroll_region_scrolls_only_inside() {
    let t = feed(5, 5, b"a\r\nb\r\nc\r\nd\r\ne\x1b[2;4r\x1b[4;1H\nX");
    assert_eq!(lines(&t), ["a", "c", "d", "X", "e"]);
    assert!(t.engine().history().is_empty());
}

#[test]
fn insert_mode_shifts_right() {
    let t = feed(2, 10, b"abc\x1b[1;2H\x1b[4hXY\x1b[4lZ");
    assert_eq!(lines(&t)[0], "aXYZc");
}

#[test]
fn tab_stops_set_clear_and_move() {
    let t = feed(2, 40, b"\tX");
    assert_eq!(cursor(&t), (0, 9));
    let t = feed(2, 40, b"\x1b[3g\x1b[1;5H\x1bH\r\tX");
    assert_eq!(lines(&t)[0], "    X");
    let t = feed(2, 40, b"\x1b[1;20H\x1b[Z\x1b[ZX\x1b[2I");
    assert_eq!(lines(&t)[0], "        X");
    assert_eq!(cursor(&t), (0, 24));
    let t = feed(2, 40, b"\x1b[1;9H\x1b[g\r\tX");
    assert_eq!(cursor(&t), (0, 17));
}

#[test]
fn ind_nel_ri() {
    let t = feed(3, 5, b"ab\x1bDc\x1bEd");
    assert_eq!(lines(&t), ["ab", "  c", "d"]);
    let t = feed(3, 5, b"a\x1bMb");
    assert_eq!(lines(&t), [" b", "a", ""]);
}

#[test]
fn decaln_fills_with_e() {
    let t = feed(2, 3, b"\x1b#8");
    assert_eq!(lines(&t), ["EEE", "EEE"]);
}

#[test]
fn erase_uses_the_current_background() {
    let t = feed(2, 4, b"\x1b[44m\x1b[2J\x1b[m");
    assert_eq!(style_at(&t, 1, 3).bg(), super::Color::Idx(4));
    assert!(!style_at(&t, 1, 3).has(super::BOLD));
    let t = feed(3, 4, b"\x1b[41m\n\n\n");
    assert_eq!(style_at(&t, 2, 0).bg(), super::Color::Idx(1));
}

#[test]
fn editing_sequences() {
    let t = feed(2, 10, b"abcdef\x1b[1;2H\x1b[2P");
    assert_eq!(lines(&t)[0], "adef");
    let t = feed(2, 10, b"abcdef\x1b[1;2H\x1b[2@");
    assert_eq!(lines(&t)[0], "a  bcdef");
    let t = feed(2, 10, b"abcdef\x1b[1;2H\x1b[2X");
    assert_eq!(lines(&t)[0], "a  def");
    let t = feed(2, 10, b"ab\x1b[3b");
    assert_eq!(lines(&t)[0], "abbbb");
    let t = feed(3, 3, b"a\r\nb\r\nc\x1b[1;1H\x1b[L");
    assert_eq!(lines(&t), ["", "a", "b"]);
    let t = feed(3, 3, b"a\r\nb\r\nc\x1b[1;1H\x1b[M");
    assert_eq!(lines(&t), ["b", "c", ""]);
    let t = feed(3, 3, b"a\r\nb\r\nc\x1b[S");
    assert_eq!(lines(&t), ["b", "c", ""]);
    let t = feed(3, 3, b"a\r\nb\r\nc\x1b[T");
    assert_eq!(lines(&t), ["", "a", "b"]);
}

#[test]
fn erase_display_and_line() {
    let t = feed(3, 3, b"abc\r\ndef\r\nghi\x1b[2;2H\x1b[J");
    assert_eq!(lines(&t), ["abc", "d", ""]);
    let t = feed(3, 3, b"abc\r\ndef\r\nghi\x1b[2;2H\x1b[1J");
    assert_eq!(lines(&t), ["", "  f", "ghi"]);
    let t = feed(3, 3, b"abc\x1b[1;2H\x1b[1K");
    assert_eq!(lines(&t)[0], "  c");
    let t = feed(3, 3, b"abc\x1b[1;2H\x1b[2K");
    assert_eq!(lines(&t)[0], "");
}

#[test]
fn csi_3j_clears_history_only() {
    let mut t = feed(2, 5, b"a\r\nb\r\nc\r\nd");
    assert_eq!(t.engine().history().len(), 2);
    t.process(b"\x1b[3J");
    assert!(t.engine().history().is_empty());
    assert_eq!(lines(&t), ["c", "d"]);
}

#[test]
fn sgr_semicolon_and_colon_forms() {
    use super::{Color, Underline};
    let t = feed(2, 20, b"\x1b[1;2;3;5;7;8;9;53mA\x1b[22;23;25;27;28;29;55mB");
    let a = style_at(&t, 0, 0);
    for bit in [
        super::BOLD,
        super::DIM,
        super::ITALIC,
        super::BLINK,
        super::INVERSE,
    ] {
        assert!(a.has(bit));
    }
    assert!(a.has(super::HIDDEN) && a.has(super::STRIKE) && a.has(super::OVERLINE));
    assert_eq!(style_at(&t, 0, 1).attrs(), 0);
    let t = feed(2, 20, b"\x1b[4:3mA\x1b[4:0mB\x1b[4mC\x1b[4:5mD");
    let u: Vec<_> = (0..4).map(|c| style_at(&t, 0, c).underline()).collect();
    assert_eq!(
        u,
        [
            Underline::Curly,
            Underline::None,
            Underline::Single,
            Underline::Dashed
        ]
    );
    let t = feed(
        2,
        20,
        b"\x1b[38:2::1:2:3mA\x1b[38:2:4:5:6mB\x1b[38;2;7;8;9mC\x1b[48:5:200mD",
    );
    assert_eq!(style_at(&t, 0, 0).fg(), Color::Rgb(1, 2, 3));
    assert_eq!(style_at(&t, 0, 1).fg(), Color::Rgb(4, 5, 6));
    assert_eq!(style_at(&t, 0, 2).fg(), Color::Rgb(7, 8, 9));
    assert_eq!(style_at(&t, 0, 3).bg(), Color::Idx(200));
    let t = feed(
        2,
        20,
        b"\x1b[1;58;2;1;2;3mA\x1b[58:5:9mB\x1b[59mC\x1b[93;104mD",
    );
    assert!(style_at(&t, 0, 0).has(super::BOLD));
    assert_eq!(style_at(&t, 0, 0).underline_color(), Color::Rgb(1, 2, 3));
    assert_eq!(style_at(&t, 0, 1).underline_color(), Color::Idx(9));
    assert_eq!(style_at(&t, 0, 2).underline_color(), Color::Default);
    assert_eq!(style_at(&t, 0, 3).fg(), Color::Idx(11));
    assert_eq!(style_at(&t, 0, 3).bg(), Color::Idx(12));
}

#[test]
fn hyperlinks_are_kept_per_cell() {
    let t = feed(2, 20, b"a\x1b]8;id=x;http://e.com\x1b\\bc\x1b]8;;\x1b\\d");
    let e = t.engine();
    let link = |c| e.cell(0, c).and_then(|v| v.link().map(str::to_string));
    assert_eq!(link(0), None);
    assert_eq!(link(1).as_deref(), Some("http://e.com"));
    assert_eq!(link(2).as_deref(), Some("http://e.com"));
    assert_eq!(link(3), None);
    let ansi = e.row_text(0, true);
    assert!(
        ansi.contains("\x1b]8;id=x;http://e.com\x1b\\bc\x1b]8;;\x1b\\d"),
        "{ansi:?}"
    );
}

#[test]
fn rows_grow_only_as_far_as_text_is_written() {
    // A short line keeps a short row; a write past its end leaves default blanks between;
    // erasing, inserting and capturing see the same row as a full one.
    let mut t = feed(3, 20, b"abc");
    assert_eq!(t.engine().main.rows[0].cells.len(), 3);
    t.process(b"\x1b[10Gx\x1b[1;2H\x1b[2@\x1b[1;16H\x1b[31m\x1b[K");
    assert_eq!(lines(&t)[0], "a  bc      x");
    assert_eq!(t.engine().main.rows[0].cells.len(), 20);
    t.process(b"\x1b[m\x1b[2;1Hshort\x1b[2;3H\x1b[1K\r\n\n\n\n");
    assert_eq!(history(&t)[..2], ["a  bc      x", "   rt"]);
}
