//! Character sets: G0–G3 designations, DEC special graphics and the British set.

/// A G0–G3 character set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Charset {
    #[default]
    Ascii,
    /// DEC special graphics (line drawing), `ESC ( 0`.
    DecGraphics,
    /// British, `ESC ( A`: only `#` differs.
    Uk,
}

impl Charset {
    pub(super) fn map(self, c: char) -> char {
        match self {
            Charset::Ascii => c,
            Charset::Uk if c == '#' => '£',
            Charset::Uk => c,
            Charset::DecGraphics => dec_graphics(c),
        }
    }

    pub(super) fn designator(self) -> char {
        match self {
            Charset::Ascii => 'B',
            Charset::DecGraphics => '0',
            Charset::Uk => 'A',
        }
    }
}

fn dec_graphics(c: char) -> char {
    const TABLE: [char; 32] = [
        ' ', '◆', '▒', '␉', '␌', '␍', '␊', '°', '±', '␤', '␋', '┘', '┐', '┌', '└', '┼', '⎺', '⎻',
        '─', '⎼', '⎽', '├', '┤', '┴', '┬', '│', '≤', '≥', 'π', '≠', '£', '·',
    ];
    match c {
        '_'..='~' => TABLE[c as usize - '_' as usize],
        _ => c,
    }
}

/// The four designated sets and which one is invoked into GL.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Charsets {
    pub sets: [Charset; 4],
    pub active: u8,
}
