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
    ]
}

fn assert_same(a: &vt100::Screen, b: &vt100::Screen) -> Result<(), TestCaseError> {
    let (rows, cols) = a.size();
    prop_assert_eq!(b.size(), (rows, cols));
    for r in 0..rows.get() {
        for c in 0..cols.get() {
            let (x, y) = (a.cell(r, c).unwrap(), b.cell(r, c).unwrap());
            prop_assert_eq!(x.contents(), y.contents(), "cell {},{}", r, c);
            prop_assert_eq!(x.fgcolor(), y.fgcolor(), "fg {},{}", r, c);
            prop_assert_eq!(x.bgcolor(), y.bgcolor(), "bg {},{}", r, c);
            prop_assert_eq!(x.bold(), y.bold());
            prop_assert_eq!(x.underline(), y.underline());
            prop_assert_eq!(x.inverse(), y.inverse());
            prop_assert_eq!(x.is_wide(), y.is_wide());
        }
    }
    prop_assert_eq!(a.cursor_position(), b.cursor_position());
    prop_assert_eq!(a.hide_cursor(), b.hide_cursor());
    prop_assert_eq!(a.alternate_screen(), b.alternate_screen());
    prop_assert_eq!(a.application_cursor(), b.application_cursor());
    prop_assert_eq!(a.application_keypad(), b.application_keypad());
    prop_assert_eq!(a.bracketed_paste(), b.bracketed_paste());
    prop_assert_eq!(a.mouse_protocol_mode(), b.mouse_protocol_mode());
    prop_assert_eq!(a.mouse_protocol_encoding(), b.mouse_protocol_encoding());
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
        let mut fresh = vt100::Parser::new(
            std::num::NonZeroU16::new(rows).unwrap(),
            std::num::NonZeroU16::new(cols).unwrap(),
            0,
        );
        fresh.process(&replay);
        assert_same(model.screen(), fresh.screen())?;
    }

    /// Arbitrary bytes never panic the model, and its replay always parses.
    #[test]
    fn arbitrary_bytes_are_survived(input in prop::collection::vec(any::<u8>(), 0..4096)) {
        let mut model = Model::new(24, 80, 100);
        let _ = model.process(&input);
        let replay = model.replay(true);
        let mut fresh = linger::model::Model::new(24, 80, 100);
        prop_assert!(fresh.process(&replay).is_ok());
    }
}
