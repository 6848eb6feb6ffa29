//! Finding the escapes in a chunk of output, and passing over the commonest sequences (an SGR,
//! a cursor move: a CSI whose final byte ends no query) without looking at them byte by byte.
//!
//! Why: coloured output has an escape every 15 bytes or so. Looking for each one and walking
//! its parameters branched on every sequence's length and cost the filter 0.05 s of CPU in a
//! 50 MB flood; here each 64-byte block's escapes and parameter bytes become bit masks, and a
//! sequence's end is a count of trailing zeros.

const BLOCK: usize = 64;

/// The escapes of `data` in order, with what is needed to pass over a sequence quickly.
pub(super) struct Escapes<'a> {
    data: &'a [u8],
    /// The block `pending` and `params` start at.
    block: usize,
    /// Escapes of that block not returned yet, one bit per byte.
    pending: u64,
    /// Escapes of the block after it.
    next_escapes: u64,
    /// Parameter bytes (`0`-`9`, `:`, `;`) of that block (low half) and the next (high half):
    /// a sequence that starts near a block's end has its parameters in both.
    params: u128,
}

impl<'a> Escapes<'a> {
    pub(super) fn new(data: &'a [u8]) -> Escapes<'a> {
        let (pending, params) = masks(data, 0);
        let (next_escapes, next_params) = masks(data, 1);
        Escapes {
            data,
            block: 0,
            pending,
            next_escapes,
            params: u128::from(params) | u128::from(next_params) << 64,
        }
    }

    fn advance(&mut self) {
        let (next_escapes, next_params) = masks(self.data, self.block + 2);
        self.block += 1;
        self.pending = self.next_escapes;
        self.next_escapes = next_escapes;
        self.params = self.params >> 64 | u128::from(next_params) << 64;
    }

    /// The next escape, in order.
    pub(super) fn next(&mut self) -> Option<usize> {
        loop {
            if self.pending != 0 {
                let at = self.block * BLOCK + self.pending.trailing_zeros() as usize;
                self.pending &= self.pending - 1;
                return Some(at);
            }
            if (self.block + 1) * BLOCK >= self.data.len() {
                return None;
            }
            self.advance();
        }
    }

    /// How many bytes to pass over at `at` (the escape `next` returned last) when the
    /// sequence there is certainly no query nor clipboard write: a CSI whose final byte ends no
    /// query, or an escape that starts no CSI, OSC or DCS. `None`: the sequence needs a look.
    pub(super) fn pass_over(&self, at: usize) -> Option<usize> {
        let data = self.data;
        match data.get(at + 1)? {
            b'[' => {}
            b']' | b'P' => return None,
            _ => return Some(1),
        }
        let mut params_start = at + 2;
        if matches!(data.get(params_start)?, b'>' | b'?' | b'=') {
            params_start += 1;
        }
        let offset = params_start - self.block * BLOCK;
        let params_len = (!(self.params >> offset)).trailing_zeros() as usize;
        if offset + params_len >= 2 * BLOCK {
            // The parameters may go on past the two blocks.
            return None;
        }
        let last = params_start + params_len;
        match data.get(last)? {
            b'$' | b'c' | b'n' | b'q' | b'u' | b't' => None,
            // The final byte may be an escape (the sequence was cut short): not passed over.
            _ => Some(last - at),
        }
    }
}

/// Escapes and parameter bytes of block `block` of `data`, one bit per byte; nothing past
/// the data's end.
fn masks(data: &[u8], block: usize) -> (u64, u64) {
    let Some(bytes) = data.get(block * BLOCK..) else {
        return (0, 0);
    };
    match bytes.first_chunk::<BLOCK>() {
        Some(full) => full_block_masks(full),
        None => {
            let mut padded = [0u8; BLOCK];
            padded[..bytes.len()].copy_from_slice(bytes);
            full_block_masks(&padded)
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn full_block_masks(block: &[u8; BLOCK]) -> (u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi8, _mm_cmpgt_epi8, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_set1_epi8,
    };
    let (mut escapes, mut params) = (0u64, 0u64);
    for (i, lane) in block.chunks_exact(16).enumerate() {
        // SAFETY: SSE2 is part of x86_64; the load reads the 16 bytes of `lane`, unaligned.
        let (esc, param) = unsafe {
            let x = _mm_loadu_si128(lane.as_ptr().cast::<__m128i>());
            let esc = _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(0x1b)));
            // Signed compares: a byte with its high bit set is below both bounds.
            let from_zero = _mm_cmpgt_epi8(x, _mm_set1_epi8(b'0' as i8 - 1));
            let to_semicolon = _mm_cmpgt_epi8(_mm_set1_epi8(b';' as i8 + 1), x);
            (
                esc,
                _mm_movemask_epi8(_mm_and_si128(from_zero, to_semicolon)),
            )
        };
        escapes |= u64::from(esc as u16) << (i * 16);
        params |= u64::from(param as u16) << (i * 16);
    }
    (escapes, params)
}

#[cfg(not(target_arch = "x86_64"))]
fn full_block_masks(block: &[u8; BLOCK]) -> (u64, u64) {
    word_masks(block)
}

/// [`full_block_masks`] a word at a time, for machines without SSE2.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn word_masks(block: &[u8; BLOCK]) -> (u64, u64) {
    let (mut escapes, mut params) = (0, 0);
    for (i, word) in block.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(word.try_into().unwrap_or_default());
        escapes |= gather(zero_bytes(x ^ (0x1b * ONES))) << (i * 8);
        params |= gather(param_bytes(x)) << (i * 8);
    }
    (escapes, params)
}

#[cfg(any(test, not(target_arch = "x86_64")))]
const ONES: u64 = 0x0101_0101_0101_0101;
#[cfg(any(test, not(target_arch = "x86_64")))]
const HIGH: u64 = 0x8080_8080_8080_8080;

/// The high bit of each zero byte of `x`, exactly (no false ones after a borrow).
#[cfg(any(test, not(target_arch = "x86_64")))]
fn zero_bytes(x: u64) -> u64 {
    let low = !HIGH;
    !(((x & low) + low) | x | low)
}

/// The high bit of each byte of `x` from `0` to `;`.
#[cfg(any(test, not(target_arch = "x86_64")))]
fn param_bytes(x: u64) -> u64 {
    // On the low seven bits no sum carries into the next byte; a byte with its high bit set is
    // no parameter anyway.
    let low = x & !HIGH;
    let from_zero = low + (0x80 - u64::from(b'0')) * ONES;
    let past_semicolon = low + (0x80 - u64::from(b';') - 1) * ONES;
    from_zero & !past_semicolon & !x & HIGH
}

/// One bit per byte from the high bits of `flags` (nothing else set).
#[cfg(any(test, not(target_arch = "x86_64")))]
fn gather(flags: u64) -> u64 {
    flags.wrapping_mul(0x0002_0408_1020_4081) >> 56
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(data: &[u8]) -> Vec<usize> {
        let mut escapes = Escapes::new(data);
        let mut found = Vec::new();
        while let Some(at) = escapes.next() {
            found.push(at);
        }
        found
    }

    #[test]
    fn every_escape_is_found_in_order_across_blocks() {
        let mut data = vec![b'a'; 300];
        let at = [0, 7, 8, 63, 64, 65, 127, 128, 200, 299];
        for &i in &at {
            data[i] = 0x1b;
        }
        // Bytes next to an escape that a borrow could mistake for one.
        data[9] = 0x1c;
        data[66] = 0x1a;
        data[129] = 0x9b;
        assert_eq!(all(&data), at);
        assert_eq!(all(&[0x1b; 3]), [0, 1, 2]);
        assert!(all(b"").is_empty());
    }

    #[test]
    fn parameter_bytes_are_exactly_0_to_semicolon() {
        for b in 0..=255u8 {
            let x = u64::from_le_bytes([b'a', b, b'a', 0x80, b, 0xff, b, b'/']);
            let want = if (b'0'..=b';').contains(&b) {
                0b101_0010
            } else {
                0
            };
            assert_eq!(gather(param_bytes(x)), want, "byte {b:#x}");
        }
    }

    #[test]
    fn both_ways_of_making_the_masks_agree() {
        let mut block = [0u8; BLOCK];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            for byte in block.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                // Mostly the bytes that matter, and their neighbours.
                *byte = match seed % 4 {
                    0 => 0x1a + (seed >> 8) as u8 % 3,
                    1 => b'/' + (seed >> 8) as u8 % 14,
                    _ => (seed >> 16) as u8,
                };
            }
            assert_eq!(full_block_masks(&block), word_masks(&block), "{block:?}");
        }
    }

    #[test]
    fn a_csi_is_passed_over_unless_its_final_byte_may_end_a_query() {
        let over = |data: &[u8]| {
            let mut escapes = Escapes::new(data);
            let at = escapes.next().expect("an escape");
            escapes.pass_over(at)
        };
        assert_eq!(over(b"\x1b[38;2;1;2;3mx"), Some(12), "up to the final byte");
        assert_eq!(over(b"\x1b[?25lx"), Some(5));
        assert_eq!(over(b"\x1b7x"), Some(1));
        assert_eq!(over(b"\x1b[1\x1b[m"), Some(3), "cut short by an escape");
        assert_eq!(over(b"\x1b[6n"), None);
        assert_eq!(over(b"\x1b[?2026$p"), None);
        assert_eq!(over(b"\x1b[>c"), None);
        assert_eq!(over(b"\x1b]11;?\x07"), None);
        assert_eq!(over(b"\x1bP$qm\x1b\\"), None);
        assert_eq!(over(b"\x1b[12;4"), None, "cut off by the chunk's end");
        assert_eq!(over(b"\x1b["), None);
        assert_eq!(over(b"\x1b"), None);
        let mut long = b"\x1b[".to_vec();
        long.resize(200, b'1');
        long.push(b'm');
        assert_eq!(over(&long), None, "parameters past two blocks");
    }
}
