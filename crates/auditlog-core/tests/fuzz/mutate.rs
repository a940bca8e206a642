//! How inputs are mutated: byte-level edits, splices of two inputs, and insertions of tokens
//! that parsers of JSON, timestamps and base64 tend to get wrong.

use rand::rngs::StdRng;
use rand::Rng;

/// Tokens every target gets: JSON structure and escapes, numbers at the edges of doubles and
/// integers, white space JSON does not allow, and UTF-8 (multi-byte and invalid).
const COMMON_TOKENS: &[&[u8]] = &[
    b"\"",
    b"\\",
    b"\\\"",
    b"\\u0000",
    b"\\u001f",
    b"\\ud800",
    b"\\udc00",
    b"\\ud83d\\ude00",
    b"\\u00e9",
    b"{",
    b"}",
    b"[",
    b"]",
    b":",
    b",",
    b"{}",
    b"[]",
    b"null",
    b"true",
    b"false",
    b"0",
    b"-0",
    b"-",
    b"+",
    b".",
    b"e",
    b"E",
    b"e-9223372036854775808",
    b"e9223372036854775807",
    b"e-324",
    b"e+309",
    b"1e309",
    b"-1e309",
    b"1e-400",
    b"5e-324",
    b"2.2250738585072011e-308",
    b"1.7976931348623157e308",
    b"0.1",
    b"1.0",
    b"1.5",
    b"9007199254740992",
    b"9007199254740993",
    b"1152921504606846976",
    b"18446744073709551615",
    b"18446744073709551616",
    b"9223372036854775807",
    b"9223372036854775808",
    b"-9223372036854775808",
    b"-9223372036854775809",
    b"253402300799999",
    b"253402300800000",
    b" ",
    b"\t",
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    b"\x0c",
    b"\x7f",
    b"'",
    b"=",
    b"#",
    "é".as_bytes(),
    "€".as_bytes(),
    "𝄞".as_bytes(),
    "\u{feff}".as_bytes(),
    "\u{85}".as_bytes(),
    "\u{a0}".as_bytes(),
    "\u{2028}".as_bytes(),
    "\u{3000}".as_bytes(),
    "\u{200b}".as_bytes(),
    "\u{fb33}".as_bytes(),
    "\u{10ffff}".as_bytes(),
    b"\xff",
    b"\x80",
    b"\xc0\x80",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
];

/// Numbers that replace a number already in the input.
const INTERESTING_NUMBERS: &[&[u8]] = &[
    b"0",
    b"-0",
    b"1",
    b"-1",
    b"00",
    b"01",
    b"+1",
    b"1.",
    b".5",
    b"1e309",
    b"1e-400",
    b"1e9223372036854775807",
    b"9007199254740993",
    b"18446744073709551616",
    b"9223372036854775807",
    b"-9223372036854775808",
    b"4294967296",
    b"253402300799999",
    b"-1",
    b"99999999999999999999999999999999999999999",
];

/// Applies stacked random edits to inputs drawn from a pool.
pub struct Mutator {
    tokens: Vec<&'static [u8]>,
    max_len: usize,
}

impl Mutator {
    /// A mutator that inserts `dictionary` besides the common tokens, and cuts inputs to
    /// `max_len`.
    pub fn new(dictionary: &'static [&'static [u8]], max_len: usize) -> Mutator {
        let mut tokens = COMMON_TOKENS.to_vec();
        // The target's own words matter more than the generic ones: count them twice.
        tokens.extend_from_slice(dictionary);
        tokens.extend_from_slice(dictionary);
        Mutator { tokens, max_len }
    }

    /// A new input: one from the pool with one to eight edits.
    pub fn mutate(&self, rng: &mut StdRng, pool: &[Vec<u8>]) -> Vec<u8> {
        let mut input = pool[rng.gen_range(0..pool.len())].clone();
        let n_edits = 1 + rng.gen_range(0..8u32).min(rng.gen_range(0..8u32));
        for _ in 0..n_edits {
            self.edit(rng, pool, &mut input);
        }
        input.truncate(self.max_len);
        input
    }

    fn edit(&self, rng: &mut StdRng, pool: &[Vec<u8>], input: &mut Vec<u8>) {
        let len = input.len();
        match rng.gen_range(0..14) {
            // Flip one bit.
            0 if len > 0 => {
                let at = rng.gen_range(0..len);
                input[at] ^= 1 << rng.gen_range(0..8);
            }
            // Replace a byte, mostly with a printable one.
            1 if len > 0 => {
                let at = rng.gen_range(0..len);
                input[at] = random_byte(rng);
            }
            // Insert a byte.
            2 => {
                let at = rng.gen_range(0..=len);
                input.insert(at, random_byte(rng));
            }
            // Delete a range.
            3 if len > 0 => {
                let (start, end) = range(rng, len, 32);
                input.drain(start..end);
            }
            // Copy a range elsewhere.
            4 if len > 0 => {
                let (start, end) = range(rng, len, 64);
                let chunk = input[start..end].to_vec();
                let at = rng.gen_range(0..=len);
                input.splice(at..at, chunk);
            }
            // Insert a token.
            5 | 6 => {
                let token = self.tokens[rng.gen_range(0..self.tokens.len())];
                let at = rng.gen_range(0..=len);
                input.splice(at..at, token.iter().copied());
            }
            // Overwrite a range with a token.
            7 if len > 0 => {
                let token = self.tokens[rng.gen_range(0..self.tokens.len())];
                let (start, end) = range(rng, len, 16);
                input.splice(start..end, token.iter().copied());
            }
            // Splice: this input's head with another's tail.
            8 => {
                let other = &pool[rng.gen_range(0..pool.len())];
                let cut = rng.gen_range(0..=len);
                let from = rng.gen_range(0..=other.len());
                input.truncate(cut);
                input.extend_from_slice(&other[from..]);
            }
            // A long run: digits, nesting or text, to cross length and depth limits.
            9 => {
                let n = rng.gen_range(1..=600);
                let run: Vec<u8> = match rng.gen_range(0..5) {
                    0 => (0..n).map(|_| b'0' + rng.gen_range(0..10)).collect(),
                    1 => b"[".repeat(n.min(300)),
                    2 => b"{\"a\":".repeat(n.min(300)),
                    3 => "é".repeat(n).into_bytes(),
                    _ => b"x".repeat(n),
                };
                let at = rng.gen_range(0..=len);
                input.splice(at..at, run);
            }
            // Replace a number already there with an interesting one.
            10 | 11 if len > 0 => {
                let at = rng.gen_range(0..len);
                if let Some((start, end)) = number_around(input, at) {
                    let number = INTERESTING_NUMBERS[rng.gen_range(0..INTERESTING_NUMBERS.len())];
                    input.splice(start..end, number.iter().copied());
                }
            }
            // Cut the input short.
            12 if len > 0 => input.truncate(rng.gen_range(0..len)),
            // Swap two bytes.
            13 if len > 1 => {
                let (a, b) = (rng.gen_range(0..len), rng.gen_range(0..len));
                input.swap(a, b);
            }
            _ => input.push(random_byte(rng)),
        }
    }
}

/// A random byte: printable ASCII three times in four, any byte otherwise.
fn random_byte(rng: &mut StdRng) -> u8 {
    if rng.gen_ratio(3, 4) {
        rng.gen_range(0x20..0x7f)
    } else {
        rng.gen()
    }
}

/// A random non-empty range of at most `max` bytes within `len` (> 0).
fn range(rng: &mut StdRng, len: usize, max: usize) -> (usize, usize) {
    let start = rng.gen_range(0..len);
    let end = (start + rng.gen_range(1..=max)).min(len);
    (start, end)
}

/// The number literal (digits, sign, point, exponent) around `at`, if `at` is in one.
fn number_around(input: &[u8], at: usize) -> Option<(usize, usize)> {
    let is_number = |b: u8| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E');
    if !input[at].is_ascii_digit() {
        return None;
    }
    let mut start = at;
    while start > 0 && is_number(input[start - 1]) {
        start -= 1;
    }
    let mut end = at;
    while end < input.len() && is_number(input[end]) {
        end += 1;
    }
    Some((start, end))
}
