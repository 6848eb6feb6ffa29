//! Unit tests of the engine: titles, modes, resets, queries, history, reflow and replay.

use super::Term;
use super::tests::{cursor, feed, history, lines, term};

#[test]
fn titles_with_a_bounded_stack() {
    let mut t = feed(2, 10, b"\x1b]2;one\x07\x1b[22;0t\x1b]0;two\x1b\\");
    assert_eq!(t.engine().title(), "two");
    t.process(b"\x1b[23;0t");
    assert_eq!(t.engine().title(), "one");
    for i in 0..50 {
        t.process(format!("\x1b]2;t{i}\x07\x1b[22t").as_bytes());
    }
    assert_eq!(t.engine().title_stack().len(), super::MAX_TITLE_STACK);
    t.process(format!("\x1b]2;{}\x07", "x".repeat(900)).as_bytes());
    assert!(t.engine().title().len() <= super::MAX_TITLE_BYTES);
}

#[test]
fn modes_are_tracked() {
    let t = feed(
        2,
        10,
        b"\x1b[?1h\x1b=\x1b[?1002h\x1b[?1006h\x1b[?1004h\x1b[?1007h\x1b[?2004h\x1b[?2026h\
          \x1b[?7l\x1b[4h\x1b[20h\x1b[?25l\x1b[5 q\x1b[>4;2m",
    );
    let m = *t.engine().modes();
    assert!(m.app_cursor && m.app_keypad && m.focus_reporting && m.alternate_scroll);
    assert!(m.bracketed_paste && m.synchronized && !m.autowrap && m.insert && m.newline);
    assert!(!m.cursor_visible);
    assert_eq!(
        (
            m.mouse,
            m.mouse_encoding,
            m.cursor_style,
            m.modify_other_keys
        ),
        (1002, 1006, 5, 2)
    );
    let t = feed(2, 10, b"\x1b[?1000h\x1b[?1003h\x1b[?1003l\x1b[?1015h\x1b>");
    let m = *t.engine().modes();
    assert_eq!((m.mouse, m.mouse_encoding, m.app_keypad), (0, 1015, false));
}

#[test]
fn linefeed_newline_mode_returns_carriage() {
    let t = feed(3, 10, b"\x1b[20hab\ncd");
    assert_eq!(lines(&t)[..2], ["ab", "cd"]);
}

#[test]
fn kitty_flags_are_a_bounded_stack_per_screen() {
    let mut t = feed(2, 10, b"\x1b[>1u\x1b[>3u");
    assert_eq!(t.engine().kitty_flags(), 3);
    t.process(b"\x1b[?1049h");
    assert_eq!(t.engine().kitty_flags(), 0);
    t.process(b"\x1b[>8u\x1b[=1;2u");
    assert_eq!(t.engine().kitty_flags(), 9);
    t.process(b"\x1b[?1049l\x1b[<u");
    assert_eq!(t.engine().kitty_flags(), 1);
    for _ in 0..100 {
        t.process(b"\x1b[>5u");
    }
    assert_eq!(t.engine().kitty_stack().len(), super::MAX_KITTY_STACK);
}

#[test]
fn alternate_screen_keeps_the_main_screen_under_it() {
    let mut t = feed(3, 10, b"main\x1b[?1049h\x1b[Halt");
    assert!(t.engine().alternate_screen());
    assert_eq!(lines(&t)[0], "alt");
    t.process(b"\x1b[?1049l");
    assert_eq!(lines(&t)[0], "main");
    assert_eq!(cursor(&t), (0, 4));
    let mut t = feed(3, 10, b"main\x1b[?47hx\x1b[?47l");
    assert_eq!(lines(&t)[0], "main");
    t.process(b"\x1b[?1047hy\x1b[?1047l");
    assert_eq!(lines(&t)[0], "main");
}

#[test]
fn alternate_screen_never_feeds_history() {
    let t = feed(2, 10, b"\x1b[?1049ha\r\nb\r\nc\r\nd\r\n");
    assert!(t.engine().history().is_empty());
}

#[test]
fn soft_and_full_reset() {
    let t = feed(
        5,
        10,
        b"abc\x1b[2;4r\x1b[?6h\x1b[?1h\x1b[31m\x1b[4h\x1b[!pX",
    );
    let m = *t.engine().modes();
    assert!(!m.origin && !m.app_cursor && !m.insert);
    assert_eq!(t.engine().scroll_region(), (0, 4));
    assert_eq!(lines(&t)[1], "X");
    assert_eq!(t.engine().cursor().pen, super::Style::default());
    let mut t = feed(2, 10, b"a\r\nb\r\nc\x1b[?1049h\x1b]2;t\x07\x1b[?2004h");
    t.process(b"\x1bc");
    assert!(!t.engine().alternate_screen());
    assert!(!t.engine().modes().bracketed_paste);
    assert_eq!(lines(&t), ["", ""]);
    assert_eq!(history(&t), ["a"]);
}

#[test]
fn queries_are_answered_in_order() {
    let mut t = feed(24, 80, b"\x1b[3;5H\x1b[6n\x1b[c\x1b[>c\x1b[5n\x1b[?6n");
    assert_eq!(
        t.engine_mut().take_answers(),
        b"\x1b[3;5R\x1b[?62;22c\x1b[>1;10;0c\x1b[0n\x1b[?3;5R".to_vec()
    );
}

#[test]
fn history_joins_wrapped_rows_and_keeps_sgr() {
    let t = feed(2, 4, b"\x1b[31mabcdefgh\x1b[m\r\nx\r\ny\r\n");
    let h = history(&t);
    assert_eq!(h.len(), 2);
    assert_eq!(super::strip_sgr(&h[0]), "abcdefgh");
    assert!(
        h[0].starts_with("\x1b[31m") && h[0].ends_with("\x1b[m"),
        "{:?}",
        h[0]
    );
}

#[test]
fn one_chunk_can_scroll_many_times_the_screen() {
    let mut t = term(50, 10);
    let mut chunk = Vec::new();
    for i in 0..200 {
        chunk.extend_from_slice(format!("\x1b[50;1Hl{i}\x1b[50S").as_bytes());
    }
    t.process(&chunk);
    let h = history(&t);
    assert_eq!(t.engine().history().next_line(), 200 * 50);
    assert!(h.iter().any(|l| l == "l199"));
}

#[test]
fn narrow_then_wide_restores_lines() {
    let mut t = feed(5, 20, b"0123456789abcdefghij\r\nshort\r\n");
    t.engine_mut().resize(5, 8);
    assert_eq!(lines(&t)[..4], ["01234567", "89abcdef", "ghij", "short"]);
    assert_eq!(cursor(&t), (4, 0));
    t.engine_mut().resize(5, 20);
    assert_eq!(lines(&t)[..2], ["0123456789abcdefghij", "short"]);
    assert_eq!(cursor(&t), (2, 0));
}

#[test]
fn reflow_keeps_the_cursor_on_its_character() {
    let mut t = feed(4, 10, b"abcdefghij12345\x1b[2;3H");
    assert_eq!(cursor(&t), (1, 2));
    t.engine_mut().resize(4, 5);
    assert_eq!(lines(&t)[..3], ["abcde", "fghij", "12345"]);
    assert_eq!(cursor(&t), (2, 2));
}

#[test]
fn narrowing_pushes_rows_to_history_and_widening_pulls_them_back() {
    let mut t = feed(3, 10, b"aaaaaaaaaa\r\nbbbbbbbbbb\r\ncc");
    t.engine_mut().resize(3, 5);
    assert_eq!(lines(&t), ["bbbbb", "bbbbb", "cc"]);
    assert_eq!(history(&t), ["aaaaaaaaaa"]);
    t.engine_mut().resize(3, 10);
    assert_eq!(lines(&t), ["aaaaaaaaaa", "bbbbbbbbbb", "cc"]);
    assert!(history(&t).is_empty());
}

#[test]
fn shrink_then_grow_height_pulls_rows_back() {
    let mut t = feed(4, 10, b"1\r\n2\r\n3\r\n4");
    t.engine_mut().resize(2, 10);
    assert_eq!(lines(&t), ["3", "4"]);
    assert_eq!(history(&t), ["1", "2"]);
    t.engine_mut().resize(4, 10);
    assert_eq!(lines(&t), ["1", "2", "3", "4"]);
    assert_eq!(cursor(&t), (3, 1));
    assert!(history(&t).is_empty());
}

#[test]
fn shrinking_below_an_empty_bottom_keeps_the_top() {
    let mut t = feed(10, 10, b"prompt$ ");
    t.engine_mut().resize(4, 10);
    assert_eq!(lines(&t)[0], "prompt$");
    assert!(history(&t).is_empty());
}

#[test]
fn fresh_200x50_model_is_small() {
    let t = term(50, 200);
    let e = t.engine();
    let rows = e.main.rows.capacity() * std::mem::size_of::<super::grid::Row>();
    let total = std::mem::size_of::<Term>() + rows + e.tabs.capacity();
    assert!(total <= 100 * 1024, "{total} bytes");
    assert_eq!(std::mem::size_of::<super::grid::Cell>(), 8);
}

#[test]
fn replay_recreates_screens_cursor_and_modes() {
    let input: &[u8] = b"hello\x1b[31mred\x1b[m\r\n\x1b(0q\x1b(B\x1b[3;3H\x1b7\x1b[?1049h\
        alt\x1b[2;4H\x1b7\x1b[1;1H\x1b[2;5r\x1b[?6h\x1b[2;2H\x1b[?1h\x1b=\x1b[?1000h\x1b[?1006h\
        \x1b[?2004h\x1b[?1004h\x1b[?25l\x1b[3 q\x1b[>4;2m\x1b[>1u\x1b]2;title\x07\x1b[1;32m";
    let t = feed(6, 20, input);
    let replay = t.engine().replay(true);
    let r = feed(6, 20, &replay);
    let (a, b) = (t.engine(), r.engine());
    assert_eq!(lines(&t), lines(&r));
    assert_eq!(a.cur, b.cur);
    assert_eq!(a.saved_main, b.saved_main);
    assert_eq!(a.saved_alt, b.saved_alt);
    assert_eq!(a.modes, b.modes);
    assert_eq!(a.scroll_region(), b.scroll_region());
    assert_eq!(a.title(), b.title());
    assert_eq!(a.kitty_flags(), b.kitty_flags());
    let main = |e: &super::Engine| {
        (0..6)
            .map(|i| {
                e.main.rows[i]
                    .cells
                    .iter()
                    .map(|c| c.char())
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(main(a), main(b));
}

#[test]
fn replay_never_homes_before_the_history_is_out() {
    let t = feed(3, 10, b"1\r\n2\r\n3\r\n4\r\n5");
    let replay = String::from_utf8(t.engine().replay(true)).unwrap_or_default();
    let first_history = replay.find("1\r\n").unwrap_or(usize::MAX);
    let first_home = replay.find(['H', 'r']).unwrap_or(0);
    let history_end = replay.find("3\r\n").unwrap_or(0);
    assert!(
        first_history < first_home && history_end < first_home,
        "{replay:?}"
    );
}

#[test]
fn replay_keeps_a_pending_wrap() {
    let t = feed(3, 5, b"ab\x1b[1;1Habcde");
    let r = feed(3, 5, &t.engine().replay(false));
    assert!(r.engine().cursor().pending_wrap);
    assert_eq!(lines(&r), lines(&t));
}

#[test]
fn replay_clears_the_alternate_screen_with_the_default_background() {
    let t = feed(3, 10, b"\x1b[40;1m\x1b[?1049h\x1b[m\x1b[2J");
    let replay = t.engine().replay(true);
    let r = feed(3, 10, &replay);
    assert_eq!(
        (0..3)
            .map(|i| t.engine().row_text(i, true))
            .collect::<Vec<_>>(),
        (0..3)
            .map(|i| r.engine().row_text(i, true))
            .collect::<Vec<_>>(),
        "{:?}",
        String::from_utf8_lossy(&replay)
    );
}

#[test]
fn fresh_lines_are_bounded_between_takes() {
    let mut t = term(2, 100);
    t.engine_mut().collect_fresh_lines();
    for _ in 0..40_000 {
        t.process(&[b'x'; 100]);
    }
    let fresh = t.engine_mut().take_fresh_lines();
    assert!(fresh.len() <= 1 << 20, "{}", fresh.len());
    assert!(fresh.len() >= 1 << 18, "{}", fresh.len());
}

#[test]
fn chars_wider_than_two_take_one_cell() {
    let t = feed(2, 20, "c\u{17d8}x".as_bytes());
    assert_eq!(cursor(&t), (0, 3));
    assert_eq!(
        t.engine().cell(0, 2).map(|c| c.text()).as_deref(),
        Some("x")
    );
}

#[test]
fn style_table_is_compacted_to_the_styles_on_screen() {
    let mut t = term(5, 10);
    for i in 0..20_000u32 {
        let (r, g, b) = (i % 256, (i / 256) % 256, i % 7);
        t.process(format!("\x1b[38;2;{r};{g};{b}mx").as_bytes());
    }
    t.process(b"\r\n\x1b[38;2;1;2;3mZ");
    assert!(t.engine().styles.count() <= 8192);
    // Each style's SGR text goes with it (`CSI 0;38;2;r;g;b m` here, under 24 bytes).
    assert!(t.engine().styles.sgr_bytes() <= t.engine().styles.count() * 24);
    // And after compaction each id's cached SGR is still its own style's.
    let styles = &t.engine().styles;
    for id in 0..styles.count() as u16 {
        let mut made = String::new();
        super::style::write_sgr(&mut made, styles.get(id), false);
        let mut cached = String::new();
        styles.push_sgr(&mut cached, id, false);
        assert_eq!(cached, made, "style {id}");
    }
    let row = t.engine().cursor().row;
    let cell = t.engine().cell(row, 0).map(|c| (c.text(), c.style().fg()));
    assert_eq!(cell, Some(("Z".to_string(), super::Color::Rgb(1, 2, 3))));
}

#[test]
fn a_packed_style_keeps_each_field_apart() {
    use super::style::{BOLD, Color, PROTECTED, Style, Underline};
    let mut s = Style::default();
    s.set_fg(Color::Rgb(255, 254, 253));
    s.set_bg(Color::Idx(255));
    s.set_underline_color(Color::Rgb(1, 2, 3));
    s.add(BOLD | PROTECTED);
    s.set_underline(Underline::Dashed);
    s.set_link(u16::MAX);
    assert_eq!(s.fg(), Color::Rgb(255, 254, 253));
    assert_eq!(s.bg(), Color::Idx(255));
    assert_eq!(s.underline_color(), Color::Rgb(1, 2, 3));
    assert_eq!(s.attrs(), BOLD | PROTECTED);
    assert_eq!(s.underline(), Underline::Dashed);
    assert_eq!(s.link(), u16::MAX);
    s.set_fg(Color::Default);
    s.remove(BOLD);
    assert_eq!(
        (s.fg(), s.attrs(), s.bg()),
        (Color::Default, PROTECTED, Color::Idx(255))
    );
    let erased = s.erased();
    assert_eq!(erased.bg(), Color::Idx(255));
    assert_eq!((erased.link(), erased.attrs()), (0, 0));
    assert_eq!(s.without_link().link(), 0);
    assert_eq!(s.without_link().underline(), Underline::Dashed);
}
