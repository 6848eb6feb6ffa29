//! Cell styles: colours, attributes and links, interned into a table so a cell holds a 16-bit id.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};

/// A multiply-rotate hasher for the interning tables: their keys come from the session's own
/// output, are small, and are looked up on every SGR; SipHash's flooding resistance costs a
/// third of SGR-heavy parsing here, and a collision flood can only slow one session down.
#[derive(Default, Clone, Copy)]
pub struct FastHasher(u64);

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(n as u64);
    }

    fn write_u16(&mut self, n: u16) {
        self.add(n as u64);
    }

    fn write_u32(&mut self, n: u32) {
        self.add(n as u64);
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_u128(&mut self, n: u128) {
        self.add(n as u64);
        self.add((n >> 64) as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

pub type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// A colour as the app named it; palette indices stay indices so the user's theme applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Color {
    #[default]
    Default,
    Idx(u8),
    Rgb(u8, u8, u8),
}

impl Color {
    /// The colour as a [`Style`] lane.
    fn pack(self) -> u128 {
        match self {
            Color::Default => 0,
            Color::Idx(i) => 1 << 24 | u128::from(i),
            Color::Rgb(r, g, b) => {
                2 << 24 | u128::from(r) << 16 | u128::from(g) << 8 | u128::from(b)
            }
        }
    }

    fn unpack(lane: u32) -> Color {
        let [b, g, r, tag] = lane.to_le_bytes();
        match tag {
            1 => Color::Idx(b),
            2 => Color::Rgb(r, g, b),
            _ => Color::Default,
        }
    }
}

/// Underline shapes of `CSI 4:n m`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Underline {
    #[default]
    None = 0,
    Single = 1,
    Double = 2,
    Curly = 3,
    Dotted = 4,
    Dashed = 5,
}

impl Underline {
    fn from_bits(n: u8) -> Underline {
        Underline::from_param(u16::from(n))
    }

    fn from_param(n: u16) -> Underline {
        match n {
            0 => Underline::None,
            2 => Underline::Double,
            3 => Underline::Curly,
            4 => Underline::Dotted,
            5 => Underline::Dashed,
            _ => Underline::Single,
        }
    }
}

pub const BOLD: u16 = 1;
pub const DIM: u16 = 1 << 1;
pub const ITALIC: u16 = 1 << 2;
pub const BLINK: u16 = 1 << 3;
pub const INVERSE: u16 = 1 << 4;
pub const HIDDEN: u16 = 1 << 5;
pub const STRIKE: u16 = 1 << 6;
pub const OVERLINE: u16 = 1 << 7;
/// DECSCA protection: kept from selective erase. Not an SGR attribute, so never written out.
pub const PROTECTED: u16 = 1 << 8;

/// Everything SGR and OSC 8 set for the cells printed after them, packed into one number:
/// the pen changes at every SGR, and copying, comparing and hashing a struct of bytes cost a
/// store-forwarding stall each time (an eighth of all parsing in SGR-heavy output).
///
/// Bits 0-31 foreground, 32-63 background, 64-95 underline colour (each a [`Color`] lane: 0,
/// `1<<24 | index` or `2<<24 | rgb`), 96-107 attributes, 108-111 underline shape, 112-127 link
/// (an index into the link table; 0 is "no link").
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Style(u128);

const FG_AT: u32 = 0;
const BG_AT: u32 = 32;
const UNDERLINE_COLOR_AT: u32 = 64;
const ATTRS_AT: u32 = 96;
const ATTRS_MASK: u128 = 0x0fff;
const UNDERLINE_AT: u32 = 108;
const LINK_AT: u32 = 112;
const COLOR_MASK: u128 = 0xffff_ffff;

impl Style {
    fn color_at(&self, at: u32) -> Color {
        Color::unpack((self.0 >> at) as u32)
    }

    fn set_bits(&mut self, at: u32, mask: u128, value: u128) {
        self.0 = self.0 & !(mask << at) | (value & mask) << at;
    }

    pub fn fg(&self) -> Color {
        self.color_at(FG_AT)
    }

    pub fn bg(&self) -> Color {
        self.color_at(BG_AT)
    }

    pub fn underline_color(&self) -> Color {
        self.color_at(UNDERLINE_COLOR_AT)
    }

    pub fn set_fg(&mut self, color: Color) {
        self.set_bits(FG_AT, COLOR_MASK, color.pack());
    }

    pub fn set_bg(&mut self, color: Color) {
        self.set_bits(BG_AT, COLOR_MASK, color.pack());
    }

    pub fn set_underline_color(&mut self, color: Color) {
        self.set_bits(UNDERLINE_COLOR_AT, COLOR_MASK, color.pack());
    }

    /// The attribute bits ([`BOLD`] ... [`PROTECTED`]).
    pub fn attrs(&self) -> u16 {
        ((self.0 >> ATTRS_AT) & ATTRS_MASK) as u16
    }

    pub fn add(&mut self, attrs: u16) {
        self.0 |= (u128::from(attrs) & ATTRS_MASK) << ATTRS_AT;
    }

    pub fn remove(&mut self, attrs: u16) {
        self.0 &= !((u128::from(attrs) & ATTRS_MASK) << ATTRS_AT);
    }

    pub fn has(&self, attr: u16) -> bool {
        self.attrs() & attr != 0
    }

    pub fn underline(&self) -> Underline {
        Underline::from_bits((self.0 >> UNDERLINE_AT) as u8 & 0xf)
    }

    pub fn set_underline(&mut self, underline: Underline) {
        self.set_bits(UNDERLINE_AT, 0xf, underline as u128);
    }

    pub fn link(&self) -> u16 {
        (self.0 >> LINK_AT) as u16
    }

    pub fn set_link(&mut self, link: u16) {
        self.set_bits(LINK_AT, 0xffff, u128::from(link));
    }

    /// The style erased cells get: only the background survives (background colour erase).
    pub fn erased(&self) -> Style {
        Style(self.0 & COLOR_MASK << BG_AT)
    }

    /// The style as one number, for cheap comparison and hashing.
    #[inline]
    pub fn key(&self) -> u128 {
        self.0
    }

    pub fn without_link(&self) -> Style {
        Style(self.0 & !(0xffff << LINK_AT))
    }

    /// Default attributes with the link kept (what SGR 0 leaves).
    fn reset(&self) -> Style {
        Style(self.0 & 0xffff << LINK_AT)
    }
}

impl std::fmt::Debug for Style {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Style")
            .field("fg", &self.fg())
            .field("bg", &self.bg())
            .field("underline_color", &self.underline_color())
            .field("attrs", &self.attrs())
            .field("underline", &self.underline())
            .field("link", &self.link())
            .finish()
    }
}

/// Most distinct styles kept at once. A session that produces more (a truecolor gradient) gets
/// its table compacted to the styles still on screen; see `Engine::intern_style`.
pub const MAX_STYLES: usize = 1 << 16;
/// The table starts with room for this many styles and doubles (up to [`MAX_STYLES`]) only
/// when compaction cannot free half: a small table stays in cache, and compacting one screen
/// is cheap next to hashing thousands of styles nobody shows any more.
const FIRST_LIMIT: usize = 4096;

/// Style 0 is always the default style.
pub struct StyleTable {
    styles: Vec<Style>,
    /// Each style's SGR from any state (links excepted), made once when it is interned:
    /// history capture writes one at every style change of every row that scrolls off. All
    /// of them in one string (no allocation per style), style `i`'s ending at `sgr_ends[i]`
    /// and starting where style `i - 1`'s ends. Bounded by the table's [`MAX_STYLES`] styles
    /// of at most about 80 bytes each.
    sgr_text: String,
    sgr_ends: Vec<u32>,
    ids: FastMap<u128, u16>,
    /// Styles interned lately, each in the slot its key picks: SGR-heavy output switches
    /// among a handful, and one compare here is cheaper than the hash map.
    recent: [(u128, u16); RECENT],
    limit: usize,
}

const RECENT: usize = 32;

/// The slot of `key` in [`StyleTable::recent`].
#[inline]
fn recent_slot(key: u128) -> usize {
    let folded = (key as u64) ^ ((key >> 64) as u64).rotate_left(29);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 59) as usize % RECENT
}

impl Default for StyleTable {
    fn default() -> StyleTable {
        let mut ids = FastMap::default();
        ids.insert(Style::default().key(), 0);
        let mut sgr_text = String::new();
        write_sgr(&mut sgr_text, &Style::default(), false);
        StyleTable {
            styles: vec![Style::default()],
            sgr_ends: vec![sgr_text.len() as u32],
            sgr_text,
            ids,
            recent: [(0, 0); RECENT],
            limit: FIRST_LIMIT,
        }
    }
}

impl StyleTable {
    /// An empty table for the styles in use, with room to grow if they fill half of this one.
    pub fn compacted(&self, in_use: usize) -> StyleTable {
        let limit = if in_use * 2 > self.limit {
            (self.limit * 2).min(MAX_STYLES)
        } else {
            self.limit
        };
        StyleTable {
            limit,
            ..StyleTable::default()
        }
    }

    pub fn count(&self) -> usize {
        self.styles.len()
    }

    /// Bytes of SGR text held for the interned styles.
    #[cfg(test)]
    pub fn sgr_bytes(&self) -> usize {
        self.sgr_text.len()
    }

    pub fn get(&self, id: u16) -> &Style {
        self.styles.get(id as usize).unwrap_or(&self.styles[0])
    }

    /// Writes what [`write_sgr`] writes for style `id` (links excepted), from the cache.
    pub fn push_sgr(&self, out: &mut String, id: u16, from_default: bool) {
        let id = if (id as usize) < self.sgr_ends.len() {
            id as usize
        } else {
            0
        };
        let start = id.checked_sub(1).map_or(0, |before| self.sgr_ends[before]);
        let full = &self.sgr_text[start as usize..self.sgr_ends[id] as usize];
        // "\x1b[0;…m" from default drops the reset's "0;"; a bare "\x1b[0m" stays whole.
        if from_default && full.len() > 4 {
            out.push_str("\x1b[");
            out.push_str(&full[4..]);
        } else {
            out.push_str(full);
        }
    }

    /// The id of `style`, or None when the table is full.
    #[inline]
    pub fn intern(&mut self, style: &Style) -> Option<u16> {
        let key = style.key();
        let slot = recent_slot(key);
        let (cached, id) = self.recent[slot];
        if cached == key {
            return Some(id);
        }
        let id = self.intern_slow(style, key)?;
        self.recent[slot] = (key, id);
        Some(id)
    }

    #[inline(never)]
    fn intern_slow(&mut self, style: &Style, key: u128) -> Option<u16> {
        if let Some(&id) = self.ids.get(&key) {
            return Some(id);
        }
        if self.styles.len() >= self.limit {
            return None;
        }
        let id = self.styles.len() as u16;
        self.styles.push(*style);
        write_sgr(&mut self.sgr_text, style, false);
        self.sgr_ends.push(self.sgr_text.len() as u32);
        self.ids.insert(key, id);
        Some(id)
    }
}

/// Longest OSC 8 URI or id kept; longer links are dropped (the text still shows).
const MAX_LINK_BYTES: usize = 2048;
/// Most distinct links kept; later ones are shown unlinked.
const MAX_LINKS: usize = 4096;

/// OSC 8 hyperlinks, interned: index 0 is "no link".
pub struct LinkTable {
    links: Vec<(String, String)>,
    ids: FastMap<(String, String), u16>,
}

impl Default for LinkTable {
    fn default() -> LinkTable {
        LinkTable {
            links: vec![(String::new(), String::new())],
            ids: FastMap::default(),
        }
    }
}

impl LinkTable {
    /// `(id, uri)` of link `n`.
    pub fn get(&self, n: u16) -> Option<(&str, &str)> {
        let (id, uri) = self.links.get(n as usize).filter(|_| n != 0)?;
        Some((id, uri))
    }

    pub fn intern(&mut self, id: &str, uri: &str) -> u16 {
        if uri.is_empty() || uri.len() > MAX_LINK_BYTES || id.len() > MAX_LINK_BYTES {
            return 0;
        }
        let key = (id.to_string(), uri.to_string());
        if let Some(&n) = self.ids.get(&key) {
            return n;
        }
        if self.links.len() >= MAX_LINKS {
            return 0;
        }
        let n = self.links.len() as u16;
        self.links.push(key.clone());
        self.ids.insert(key, n);
        n
    }
}

/// Applies one `CSI ... m` to `style`. `params` are vte's groups: a group holds a parameter and
/// its `:` sub-parameters.
pub fn apply_sgr<'a>(style: &mut Style, params: impl IntoIterator<Item = &'a [u16]>) {
    let mut iter = params.into_iter();
    let mut any = false;
    while let Some(group) = iter.next() {
        any = true;
        let p = group.first().copied().unwrap_or(0);
        match p {
            0 => *style = style.reset(),
            1 => style.add(BOLD),
            2 => style.add(DIM),
            3 => style.add(ITALIC),
            4 => style.set_underline(Underline::from_param(group.get(1).copied().unwrap_or(1))),
            5 | 6 => style.add(BLINK),
            7 => style.add(INVERSE),
            8 => style.add(HIDDEN),
            9 => style.add(STRIKE),
            // ECMA-48 and xterm make 21 a double underline; alacritty and the Linux console
            // cancel bold. The oracle is alacritty, and `4:2` says double underline clearly.
            21 => style.remove(BOLD),
            22 => style.remove(BOLD | DIM),
            23 => style.remove(ITALIC),
            24 => style.set_underline(Underline::None),
            25 => style.remove(BLINK),
            27 => style.remove(INVERSE),
            28 => style.remove(HIDDEN),
            29 => style.remove(STRIKE),
            30..=37 => style.set_fg(Color::Idx((p - 30) as u8)),
            38 => {
                if let Some(color) = extended_color(group, &mut iter) {
                    style.set_fg(color);
                }
            }
            39 => style.set_fg(Color::Default),
            40..=47 => style.set_bg(Color::Idx((p - 40) as u8)),
            48 => {
                if let Some(color) = extended_color(group, &mut iter) {
                    style.set_bg(color);
                }
            }
            49 => style.set_bg(Color::Default),
            53 => style.add(OVERLINE),
            55 => style.remove(OVERLINE),
            58 => {
                if let Some(color) = extended_color(group, &mut iter) {
                    style.set_underline_color(color);
                }
            }
            59 => style.set_underline_color(Color::Default),
            90..=97 => style.set_fg(Color::Idx((p - 90 + 8) as u8)),
            100..=107 => style.set_bg(Color::Idx((p - 100 + 8) as u8)),
            _ => {}
        }
    }
    if !any {
        *style = style.reset();
    }
}

/// The colour of `38`/`48`/`58`, in `:` form (all in `group`) or `;` form (taken from `rest`).
fn extended_color<'a>(group: &[u16], rest: &mut impl Iterator<Item = &'a [u16]>) -> Option<Color> {
    let byte = |v: u16| v.min(255) as u8;
    if group.len() > 1 {
        return match group[1] {
            5 => group.get(2).map(|&n| Color::Idx(byte(n))),
            // `38:2::r:g:b` carries a colour-space id before the components; `38:2:r:g:b`
            // does not. Tell them apart by count.
            2 if group.len() >= 6 => {
                Some(Color::Rgb(byte(group[3]), byte(group[4]), byte(group[5])))
            }
            2 if group.len() == 5 => {
                Some(Color::Rgb(byte(group[2]), byte(group[3]), byte(group[4])))
            }
            _ => None,
        };
    }
    let mut next = || rest.next().and_then(|g| g.first().copied());
    match next()? {
        5 => next().map(|n| Color::Idx(byte(n))),
        2 => {
            let (r, g, b) = (next()?, next()?, next()?);
            Some(Color::Rgb(byte(r), byte(g), byte(b)))
        }
        _ => None,
    }
}

/// Appends `;n`. Written by hand: this runs for every styled run of every captured row, and
/// `write!` costs several times more.
fn push_param(out: &mut String, n: u8) {
    out.push(';');
    if n >= 100 {
        out.push((b'0' + n / 100) as char);
    }
    if n >= 10 {
        out.push((b'0' + (n / 10) % 10) as char);
    }
    out.push((b'0' + n % 10) as char);
}

fn write_color(out: &mut String, color: Color, base: u8) {
    match (color, base) {
        (Color::Default, _) => {}
        (Color::Idx(i), 30 | 40) if i < 8 => push_param(out, base + i),
        (Color::Idx(i), 30 | 40) if i < 16 => push_param(out, base + 60 + i - 8),
        (Color::Idx(i), _) => {
            push_param(out, base + 8);
            push_param(out, 5);
            push_param(out, i);
        }
        (Color::Rgb(r, g, b), _) => {
            push_param(out, base + 8);
            for n in [2, r, g, b] {
                push_param(out, n);
            }
        }
    }
}

/// Writes the SGR that sets `style`, links excepted: from any previous state (it starts with a
/// reset), or, with `from_default`, from default attributes (shorter: `CSI 31 m`).
pub fn write_sgr(out: &mut String, style: &Style, from_default: bool) {
    let start = out.len();
    out.push_str("\x1b[0");
    const SIMPLE: [(u16, &str); 8] = [
        (BOLD, ";1"),
        (DIM, ";2"),
        (ITALIC, ";3"),
        (BLINK, ";5"),
        (INVERSE, ";7"),
        (HIDDEN, ";8"),
        (STRIKE, ";9"),
        (OVERLINE, ";53"),
    ];
    for (bit, code) in SIMPLE {
        if style.has(bit) {
            out.push_str(code);
        }
    }
    match style.underline() {
        Underline::None => {}
        Underline::Single => out.push_str(";4"),
        u => {
            let _ = write!(out, ";4:{}", u as u8);
        }
    }
    write_color(out, style.fg(), 30);
    write_color(out, style.bg(), 40);
    write_color(out, style.underline_color(), 50);
    out.push('m');
    if from_default && out.len() > start + 5 {
        // Drop the "0;" of the reset.
        out.replace_range(start + 2..start + 4, "");
    }
}

/// Writes the OSC 8 that opens link `n`, or closes any link for 0.
pub fn write_link(out: &mut String, links: &LinkTable, n: u16) {
    match links.get(n) {
        Some(("", uri)) => {
            let _ = write!(out, "\x1b]8;;{uri}\x1b\\");
        }
        Some((id, uri)) => {
            let _ = write!(out, "\x1b]8;id={id};{uri}\x1b\\");
        }
        None => out.push_str("\x1b]8;;\x1b\\"),
    }
}
