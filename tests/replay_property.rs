//! Property: a model's replay, fed into a fresh terminal of the same size, reproduces the
//! screen cell for cell, with the same cursor and input modes.

use linger::model::Model;
use proptest::prelude::*;

fn fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        "[a-zA-Z0-9 ]{1,30}".prop_map(|s| s.into_bytes()),
        Just(b"\r\n".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\x08".to_vec()),
        Just(b"\t".to_vec()),
        Just("日本語".as_bytes().to_vec()),
        Just("é".as_bytes().to_vec()),
        (0u8..8).prop_map(|c| format!("\x1b[3{c}m").into_bytes()),
        (0u8..8).prop_map(|c| format!("\x1b[4{c};1m").into_bytes()),
        Just(b"\x1b[38;5;200m".to_vec()),
        Just(b"\x1b[38;2;10;20;30m".to_vec()),
        Just(b"\x1b[1;4;7m".to_vec()),
        Just(b"\x1b[m".to_vec()),
        (1u8..30, 1u8..90).prop_map(|(r, c)| format!("\x1b[{r};{c}H").into_bytes()),
        (0u8..3).prop_map(|m| format!("\x1b[{m}J").into_bytes()),
        (0u8..3).prop_map(|m| format!("\x1b[{m}K").into_bytes()),
        (1u8..5).prop_map(|n| format!("\x1b[{n}L").into_bytes()),
        (1u8..5).prop_map(|n| format!("\x1b[{n}M").into_bytes()),
        (1u8..5).prop_map(|n| format!("\x1b[{n}P").into_bytes()),
        (1u8..5).prop_map(|n| format!("\x1b[{n}@").into_bytes()),
        Just(b"\x1b[?1049h".to_vec()),
        Just(b"\x1b[?1049l".to_vec()),
        Just(b"\x1b[?1h".to_vec()),
        Just(b"\x1b[?1l".to_vec()),
        Just(b"\x1b=".to_vec()),
        Just(b"\x1b>".to_vec()),
        Just(b"\x1b[?2004h".to_vec()),
        Just(b"\x1b[?2004l".to_vec()),
        Just(b"\x1b[?1000h".to_vec()),
        Just(b"\x1b[?1002h".to_vec()),
        Just(b"\x1b[?1006h".to_vec()),
        Just(b"\x1b[?1000l".to_vec()),
        Just(b"\x1b[?25l".to_vec()),
        Just(b"\x1b[?25h".to_vec()),
        Just(b"\x1b[2;5r".to_vec()),
        Just(b"\x1b[r".to_vec()),
        Just(b"\x1bM".to_vec()),
        Just(b"\x1b[6n".to_vec()),
        // State the engine keeps beyond what vt100 did.
        Just(b"\x1b7".to_vec()),
        Just(b"\x1b8".to_vec()),
        Just(b"\x1b[s".to_vec()),
        Just(b"\x1b(0".to_vec()),
        Just(b"\x1b(B".to_vec()),
        Just(b"\x1b)0\x0e".to_vec()),
        Just(b"\x0f".to_vec()),
        Just(b"\x1b[?6h".to_vec()),
        Just(b"\x1b[?6l".to_vec()),
        Just(b"\x1b[?7l".to_vec()),
        Just(b"\x1b[?7h".to_vec()),
        Just(b"\x1b[4h".to_vec()),
        Just(b"\x1b[4l".to_vec()),
        Just(b"\x1b[?47h".to_vec()),
        Just(b"\x1b[?47l".to_vec()),
        Just(b"\x1bH".to_vec()),
        Just(b"\x1b[3g".to_vec()),
        Just(b"\x1b[2b".to_vec()),
        Just(b"\x1bD".to_vec()),
        Just(b"\x1bE".to_vec()),
        Just(b"\x1b#8".to_vec()),
        Just(b"\x1b[2S".to_vec()),
        Just(b"\x1b[2T".to_vec()),
        Just(b"\x1b[3X".to_vec()),
        Just(b"\x1b[2;9;53m".to_vec()),
        Just(b"\x1b[4:3;58:2::1:2:3m".to_vec()),
        Just(b"\x1b[38:2:9:8:7m".to_vec()),
        Just(b"\x1b]8;;http://x.example\x1b\\".to_vec()),
        Just(b"\x1b]8;;\x1b\\".to_vec()),
        Just(b"\x1b]2;title\x07".to_vec()),
        Just(b"\x1b[22t".to_vec()),
        Just(b"\x1b[23t".to_vec()),
        Just(b"\x1b[>1u".to_vec()),
        Just(b"\x1b[<u".to_vec()),
        Just(b"\x1b[=5;2u".to_vec()),
        Just(b"\x1b[>4;2m".to_vec()),
        Just(b"\x1b[4 q".to_vec()),
        Just(b"\x1b[?1004h".to_vec()),
        Just(b"\x1b[?1007h".to_vec()),
        Just(b"\x1b[20h".to_vec()),
        Just(b"\x1b[20l".to_vec()),
        Just("e\u{301}".as_bytes().to_vec()),
        Just("👩\u{200d}💻".as_bytes().to_vec()),
    ]
}

/// Two models show the same thing: every cell's text and attributes, the cursor and the modes
/// that change what keys send; and keep the same state behind it: the main screen under the
/// alternate one, saved cursors, scroll region, charsets, pen, title and kitty flags.
fn assert_same(a: &Model, b: &Model) -> Result<(), TestCaseError> {
    let (x, y) = (a.engine(), b.engine());
    prop_assert_eq!(x.main_screen_lines(), y.main_screen_lines());
    let mut modes = (*x.modes(), *y.modes());
    // A replay never turns synchronized output on: the user's terminal would stop drawing.
    modes.0.synchronized = false;
    modes.1.synchronized = false;
    prop_assert_eq!(modes.0, modes.1);
    let cursor = |e: &linger::term::Engine| {
        let c = e.cursor();
        (c.row, c.col, c.pending_wrap, c.pen, c.charsets)
    };
    prop_assert_eq!(cursor(x), cursor(y));
    let saved = |e: &linger::term::Engine, alt: bool| {
        let c = e.saved_cursor(alt);
        (c.row, c.col, c.pen, c.charsets)
    };
    prop_assert_eq!(saved(x, false), saved(y, false));
    if x.alternate_screen() {
        prop_assert_eq!(saved(x, true), saved(y, true));
    }
    prop_assert_eq!(x.scroll_region(), y.scroll_region());
    prop_assert_eq!(x.title(), y.title());
    prop_assert_eq!(x.kitty_flags(), y.kitty_flags());
    prop_assert_eq!(a.size(), b.size());
    prop_assert_eq!(a.screen_lines(true), b.screen_lines(true));
    prop_assert_eq!(a.cursor_position(), b.cursor_position());
    prop_assert_eq!(a.cursor_visible(), b.cursor_visible());
    prop_assert_eq!(a.alternate_screen(), b.alternate_screen());
    prop_assert_eq!(a.application_cursor(), b.application_cursor());
    prop_assert_eq!(a.bracketed_paste(), b.bracketed_paste());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn replay_reproduces_the_screen(
        rows in 3u16..30,
        cols in 10u16..90,
        input in prop::collection::vec(fragment(), 0..120),
    ) {
        let mut model = Model::new(rows, cols, 200);
        for chunk in &input {
            prop_assert!(model.process(chunk).is_ok());
        }
        let replay = model.replay(true);
        let mut fresh = Model::new(rows, cols, 200);
        prop_assert!(fresh.process(&replay).is_ok());
        assert_same(&model, &fresh)?;
    }

    /// Arbitrary bytes never panic the model, and its replay always parses.
    #[test]
    fn arbitrary_bytes_are_survived(input in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut model = Model::new(24, 80, 100);
        prop_assert!(model.process(&input).is_ok());
        let replay = model.replay(true);
        let mut fresh = linger::model::Model::new(24, 80, 100);
        prop_assert!(fresh.process(&replay).is_ok());
    }
}
