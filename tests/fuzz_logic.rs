//! The fuzz targets' properties (fuzz/checks.rs, shared through `#[path]`) as ordinary proptest
//! cases, so CI on stable runs the same logic cargo-fuzz runs on nightly. The seed corpus and
//! any crash inputs kept under fuzz/corpus/ are replayed as regression cases.

#[path = "../fuzz/checks.rs"]
mod checks;

use linger::model::Model;
use linger::protocol::{
    Capture, Hello, MAX_FRAME, Request, Response, SessionSpec, WaitCondition, encode,
};
use proptest::prelude::*;

fn fail(e: String) -> TestCaseError {
    TestCaseError::fail(e)
}

/// Messages of every shape the server reads or writes, to build valid frames from.
fn message_frame() -> impl Strategy<Value = Vec<u8>> {
    let text = prop::collection::vec(any::<u8>(), 0..64);
    prop_oneof![
        Just(encode(&Hello::ours())),
        Just(encode(&Request::List)),
        text.clone().prop_map(|t| encode(&Request::Input(t))),
        (any::<u16>(), any::<u16>())
            .prop_map(|(rows, cols)| encode(&Request::Resize { rows, cols })),
        (any::<u64>(), any::<bool>(), any::<bool>()).prop_map(|(len, paste, enter)| {
            encode(&Request::Send {
                name: "s".into(),
                len,
                paste,
                enter,
                timeout_ms: 1000,
            })
        }),
        text.clone().prop_map(|t| encode(&Request::SendData(t))),
        "[a-z.|*]{0,12}".prop_map(|regex| encode(&Request::Wait {
            name: "w".into(),
            condition: WaitCondition::Text {
                regex,
                from_line: Some(3),
                new: false,
            },
            timeout_ms: None,
        })),
        Just(encode(&Request::Create(SessionSpec {
            name: "n".into(),
            command: vec!["sh".into()],
            ..SessionSpec::default()
        }))),
        text.clone().prop_map(|t| encode(&Response::Output(t))),
        text.prop_map(|t| linger::protocol::encode_output(&t)),
        Just(encode(&Response::Capture(Capture {
            name: "c".into(),
            rows: 24,
            cols: 80,
            cursor_row: 1,
            cursor_col: 2,
            cursor_visible: true,
            title: "t".into(),
            alternate_screen: false,
            history: Vec::new(),
            screen: vec!["x".into()],
            next_line: 0,
            lines: Vec::new(),
            cursor_line: 0,
            running: true,
        }))),
        Just(encode(&Response::WaitTimeout)),
    ]
}

/// A stream of frames with the kinds of damage a hostile or broken peer sends.
fn frame_stream() -> impl Strategy<Value = Vec<u8>> {
    let part = prop_oneof![
        4 => message_frame(),
        1 => prop::collection::vec(any::<u8>(), 0..16),
        1 => (MAX_FRAME as u32 - 2..=MAX_FRAME as u32 + 2).prop_map(|n| n.to_be_bytes().to_vec()),
        1 => Just(u32::MAX.to_be_bytes().to_vec()),
    ];
    (
        prop::collection::vec(part, 0..8),
        any::<prop::sample::Index>(),
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(|(parts, at, byte, truncate)| {
            let mut out = parts.concat();
            if !out.is_empty() {
                let i = at.index(out.len());
                if truncate {
                    out.truncate(i);
                } else {
                    out[i] = byte;
                }
            }
            out
        })
}

/// Terminal output: printable text in several scripts, controls, CSI/OSC/DCS sequences with
/// odd parameters, C1 bytes and invalid UTF-8.
fn output_fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => "[a-zA-Z0-9 ]{1,30}".prop_map(|s| s.into_bytes()),
        1 => "[é日本語─│┌😀\u{301}]{1,6}".prop_map(|s| s.into_bytes()),
        2 => prop::sample::select(vec![
            &b"\r\n"[..], b"\n", b"\r", b"\x08", b"\t", b"\x07", b"\x0b", b"\x0c", b"\x1b7",
            b"\x1b8", b"\x1bM", b"\x1bD", b"\x1bE", b"\x1bc", b"\x1b=", b"\x1b>", b"\x1b(0",
            b"\x1b(B", b"\x1b[?1049h", b"\x1b[?1049l", b"\x1b[?47h", b"\x1b[?1047h",
            b"\x1b[?25l", b"\x1b[?25h", b"\x1b[?2004h", b"\x1b[?1000h", b"\x1b[?1006h",
            b"\x1b[?1h", b"\x1b[?7l", b"\x1b[?7h", b"\x1b[?6h", b"\x1b[?6l", b"\x1b[r",
            b"\x1b[2;5r", b"\x1b[3;100r", b"\x1b[m", b"\x1b[1;4;7m", b"\x1b[38;5;200m",
            b"\x1b[48;2;1;2;3m", b"\x1b[2J", b"\x1b[3J", b"\x1b[K", b"\x1b[1K", b"\x1b[6n",
            b"\x1b[c", b"\x1b[>c", b"\x1b[>1u", b"\x1b[<u", b"\x1b[=5;2u", b"\x1b[?1004h",
            b"\x1b]2;title\x07", b"\x1b]0;t\x1b\\", b"\x1bP1$r\x1b\\", b"\x9b31m", b"\x9d0;x\x9c",
            b"\x1b[", b"\x1b", b"\x1b]", b"\xc3", b"\xe6\x97", b"\xff\xfe",
        ])
        .prop_map(|s| s.to_vec()),
        2 => (1u16..40, 1u16..100).prop_map(|(r, c)| format!("\x1b[{r};{c}H").into_bytes()),
        2 => (prop::sample::select(vec!['A', 'B', 'C', 'D', 'E', 'F', 'G', 'J', 'K', 'L', 'M',
            'P', '@', 'X', 'S', 'T', 'b', 'd', 'g', 'Z', 'I']), 0u16..300)
            .prop_map(|(f, n)| format!("\x1b[{n}{f}").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 1..24),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn frames_from_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        checks::check_frames(&data).map_err(fail)?;
    }

    #[test]
    fn frames_from_damaged_streams(data in frame_stream()) {
        checks::check_frames(&data).map_err(fail)?;
    }

    #[test]
    fn model_from_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        checks::check_model(&data).map_err(fail)?;
    }

    #[test]
    fn model_from_terminal_output(parts in prop::collection::vec(output_fragment(), 0..150)) {
        checks::check_model(&parts.concat()).map_err(fail)?;
    }
}

/// Every file under fuzz/corpus/ (seeds, and any crash input kept as a regression case).
#[test]
fn fuzz_corpus_files_pass() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut checked = 0;
    for (target, check) in [
        (
            "frame_decoder",
            checks::check_frames as fn(&[u8]) -> Result<(), String>,
        ),
        ("model_feed", checks::check_model),
    ] {
        for entry in std::fs::read_dir(root.join(target)).expect("corpus dir") {
            let path = entry.expect("corpus entry").path();
            let data = std::fs::read(&path).expect("corpus file");
            if let Err(e) = check(&data) {
                panic!("{}: {e}", path.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} corpus files");
}

/// A multi-byte character split across two pty reads must not cost the characters after it.
/// vte 0.15.0 drops up to two of them when the 4-byte look-ahead it copies after a partial
/// sequence ends in an incomplete or invalid one (alacritty/vte#159): "é!日本" read as [c3]
/// [a9 21 e6 ...] would leave "é日本"; the engine holds an incomplete sequence back instead.
#[test]
fn utf8_split_across_reads_keeps_every_character() {
    let text = "é!日本 ok";
    let bytes = text.as_bytes();
    for at in 1..bytes.len() {
        let mut m = Model::new(24, 80, 100);
        m.process(&bytes[..at]).unwrap();
        m.process(&bytes[at..]).unwrap();
        assert_eq!(m.screen_lines(false)[0], text, "split at byte {at}");
    }
}
