//! The JSON an audit record is read from must mean one thing. Two rules of I-JSON (RFC 7493)
//! that a JSON parser does not enforce are checked here, on the raw text, before it is
//! parsed:
//!
//! - **No object repeats a key** (§2.3). A parser keeps the last value, so
//!   `{"action_key":"channel_created","action_key":"token_created"}` would be stored as
//!   whichever came last, while another reader of the same bytes may take the first.
//! - **Every number is exactly an IEEE 754 double** (§2.2): its decimal value is the value of
//!   the double nearest to it, as written in the fewest digits. `1.00000000000000000000001`
//!   would be stored as `1`, and RFC 8785 (which hashes numbers as doubles) could not tell the
//!   two apart, so a rewritten digit would go unnoticed by verification. Such a number is
//!   refused, naming its place, and the client is told to send it as a string.
//!
//! Syntax errors are not this module's business: malformed text passes, and the parser that
//! runs next reports it with its position.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;

/// Deepest nesting checked; deeper text is left to the parser, which refuses it.
const MAX_DEPTH: usize = 128;

/// One step of a path into a JSON text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An object member.
    Key(String),
    /// An array element.
    Index(usize),
}

/// Which rule a text broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// An object repeats a key.
    DuplicateKey,
    /// A number is not exactly an IEEE 754 double.
    InexactNumber,
}

/// Where the text breaks a rule, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The path from the top of the text to the offending member or number.
    pub path: Vec<Step>,
    /// Which rule.
    pub rule: Rule,
    /// A sentence for a person.
    pub message: String,
}

impl Problem {
    /// The path written the way field errors name fields: `meta.amounts[2]`. A key that is
    /// the empty string is written `""`, so that the path still shows it (`"".a`, not `a`).
    pub fn dotted_path(&self) -> String {
        let mut out = String::new();
        for (idx, step) in self.path.iter().enumerate() {
            match step {
                Step::Key(key) => {
                    if idx > 0 {
                        out.push('.');
                    }
                    out.push_str(if key.is_empty() { "\"\"" } else { key });
                }
                Step::Index(index) => out.push_str(&format!("[{index}]")),
            }
        }
        out
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.dotted_path();
        if path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{path}: {}", self.message)
        }
    }
}

/// Checks `text` against the two rules above; the first problem found is returned.
pub fn check(text: &[u8]) -> Result<(), Problem> {
    let mut scanner = Scanner {
        text,
        at: 0,
        path: Vec::new(),
    };
    match scanner.value(0) {
        Err(Stop::Problem(problem)) => Err(problem),
        Ok(()) | Err(Stop::Malformed) => Ok(()),
    }
}

/// Whether the JSON number literal `literal` is exactly an IEEE 754 double: finite, and equal
/// in value either to the shortest decimal form of the double nearest to it (`0.1`) or to that
/// double's exact value (`1152921504606846976`, 2^60).
pub fn is_exact_double(literal: &str) -> bool {
    let Ok(double) = literal.parse::<f64>() else {
        return false;
    };
    if !double.is_finite() {
        return false;
    }
    let written = decimal_value(literal);
    // Fifteen significant digits always survive a round trip through a normal double.
    if written.digits.len() <= 15 && double.abs() >= f64::MIN_POSITIVE {
        return true;
    }
    written == decimal_value(&format!("{double:e}"))
        || matches!((written.integer(), exact_integer(double)), (Some(a), Some(b)) if a == b)
}

/// Whether `literal` follows JSON's number grammar (RFC 8259 §6):
/// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(literal: &str) -> bool {
    fn digits(text: &[u8]) -> usize {
        text.iter().take_while(|b| b.is_ascii_digit()).count()
    }
    let mut rest = literal.as_bytes();
    if let [b'-', tail @ ..] = rest {
        rest = tail;
    }
    match rest {
        [b'0', tail @ ..] => rest = tail,
        [b'1'..=b'9', ..] => rest = &rest[digits(rest)..],
        _ => return false,
    }
    if let [b'.', tail @ ..] = rest {
        let n = digits(tail);
        if n == 0 {
            return false;
        }
        rest = &tail[n..];
    }
    if let [b'e' | b'E', tail @ ..] = rest {
        let tail = match tail {
            [b'+' | b'-', signed @ ..] => signed,
            _ => tail,
        };
        let n = digits(tail);
        if n == 0 {
            return false;
        }
        rest = &tail[n..];
    }
    rest.is_empty()
}

/// The value of a double that is an integer of at most 38 digits.
fn exact_integer(double: f64) -> Option<i128> {
    (double.fract() == 0.0 && double.abs() < 1e38).then_some(double as i128)
}

/// A decimal number as sign, significant digits (no leading or trailing zeros) and the
/// power of ten of the point before the first digit: `-12.5e1` is `(true, "125", 3)`.
#[derive(Debug, PartialEq, Eq)]
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl Decimal {
    /// The value, when it is an integer of at most 38 digits.
    fn integer(&self) -> Option<i128> {
        let zeros = self.exponent.saturating_sub(self.digits.len() as i64);
        if zeros < 0 || self.exponent > 38 {
            return None;
        }
        let mut value: i128 = self.digits.parse().ok()?;
        for _ in 0..zeros {
            value = value.checked_mul(10)?;
        }
        Some(if self.negative { -value } else { value })
    }
}

fn decimal_value(literal: &str) -> Decimal {
    let (negative, unsigned) = match literal.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, literal),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (
            &unsigned[..at],
            // An exponent beyond i64 is as good as infinite: the literal is 0 or ±inf as a
            // double, and the comparisons below need only its sign.
            unsigned[at + 1..].parse::<i64>().unwrap_or_else(|_| {
                if unsigned[at + 1..].starts_with('-') {
                    i64::MIN
                } else {
                    i64::MAX
                }
            }),
        ),
        None => (unsigned, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all: String = integer.chars().chain(fraction.chars()).collect();
    let leading = all.len() - all.trim_start_matches('0').len();
    let digits = all
        .trim_start_matches('0')
        .trim_end_matches('0')
        .to_string();
    if digits.is_empty() {
        // Zero, whatever its exponent; its sign is kept (-0 is a double of its own).
        return Decimal {
            negative,
            digits,
            exponent: 0,
        };
    }
    Decimal {
        negative,
        digits,
        // Saturating: the exponent written may be i64::MIN or i64::MAX already.
        exponent: exponent
            .saturating_add(integer.len() as i64)
            .saturating_sub(leading as i64),
    }
}

/// Why a scan stopped early.
enum Stop {
    /// A rule is broken.
    Problem(Problem),
    /// The text is not JSON; the parser will say where.
    Malformed,
}

struct Scanner<'a> {
    text: &'a [u8],
    at: usize,
    path: Vec<Step>,
}

impl<'a> Scanner<'a> {
    fn skip_whitespace(&mut self) {
        while self
            .text
            .get(self.at)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn value(&mut self, depth: usize) -> Result<(), Stop> {
        if depth > MAX_DEPTH {
            return Err(Stop::Malformed);
        }
        self.skip_whitespace();
        match self.peek().ok_or(Stop::Malformed)? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => self.number(),
            b't' | b'f' | b'n' => {
                while self.peek().is_some_and(|b| b.is_ascii_alphabetic()) {
                    self.at += 1;
                }
                Ok(())
            }
            _ => Err(Stop::Malformed),
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), Stop> {
        self.at += 1;
        let mut keys: HashSet<Cow<'a, str>> = HashSet::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(());
        }
        loop {
            self.skip_whitespace();
            let key = self.string()?;
            if keys.contains(&key) {
                let shown: String = key.chars().take(64).collect();
                self.path.push(Step::Key(shown.clone()));
                return Err(Stop::Problem(Problem {
                    path: self.path.clone(),
                    rule: Rule::DuplicateKey,
                    message: format!(
                        "the key {shown:?} appears more than once in this object; an audit record must not be ambiguous"
                    ),
                }));
            }
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(Stop::Malformed);
            }
            self.at += 1;
            self.path.push(Step::Key(key.chars().take(64).collect()));
            self.value(depth + 1)?;
            self.path.pop();
            keys.insert(key);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(Stop::Malformed),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<(), Stop> {
        self.at += 1;
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            self.path.push(Step::Index(index));
            self.value(depth + 1)?;
            self.path.pop();
            index += 1;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(());
                }
                _ => return Err(Stop::Malformed),
            }
        }
    }

    /// A string token, decoded (keys are compared by what they say, not how).
    fn string(&mut self) -> Result<Cow<'a, str>, Stop> {
        if self.peek() != Some(b'"') {
            return Err(Stop::Malformed);
        }
        let start = self.at;
        self.at += 1;
        let mut escaped = false;
        loop {
            match self.peek().ok_or(Stop::Malformed)? {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    self.at += 2;
                }
                _ => self.at += 1,
            }
        }
        self.at += 1;
        let token = self.text.get(start..self.at).ok_or(Stop::Malformed)?;
        if escaped {
            serde_json::from_slice::<String>(token)
                .map(Cow::Owned)
                .map_err(|_| Stop::Malformed)
        } else {
            std::str::from_utf8(&token[1..token.len() - 1])
                .map(Cow::Borrowed)
                .map_err(|_| Stop::Malformed)
        }
    }

    fn number(&mut self) -> Result<(), Stop> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| matches!(b, b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'))
        {
            self.at += 1;
        }
        let literal =
            std::str::from_utf8(&self.text[start..self.at]).map_err(|_| Stop::Malformed)?;
        // `-`, `01`, `1.` or a date is a syntax error, which the parser reports with its
        // position; judged as a number it would be called out of range.
        if !is_json_number(literal) {
            return Err(Stop::Malformed);
        }
        if is_exact_double(literal) {
            return Ok(());
        }
        let shown: String = literal.chars().take(64).collect();
        let stored = literal
            .parse::<f64>()
            .ok()
            .filter(|d| d.is_finite())
            .map_or_else(
                || "it is beyond the range of a double".to_string(),
                |d| format!("it would be read as {d:e}"),
            );
        Err(Stop::Problem(Problem {
            path: self.path.clone(),
            rule: Rule::InexactNumber,
            message: format!(
                "the number {shown} is not exactly an IEEE 754 double (RFC 7493): {stored}; send it as a string to keep every digit"
            ),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> Option<(String, Rule)> {
        check(text.as_bytes())
            .err()
            .map(|p| (p.dotted_path(), p.rule))
    }

    #[test]
    fn a_repeated_key_is_refused_where_it_is() {
        assert_eq!(
            problem(r#"{"action_key":"channel_created","action_key":"token_created"}"#),
            Some(("action_key".into(), Rule::DuplicateKey))
        );
        assert_eq!(
            problem(r#"[{"a":1},{"meta":{"x":1,"y":[{"k":1,"k":2}]}}]"#),
            Some(("[1].meta.y[0].k".into(), Rule::DuplicateKey))
        );
        // The same key spelled with an escape is the same key.
        assert_eq!(
            problem(r#"{"ab":1,"a\u0062":2}"#),
            Some(("ab".into(), Rule::DuplicateKey))
        );
        // An empty key is a step of the path like any other.
        assert_eq!(
            problem(r#"{"":{"a":1,"a":2}}"#),
            Some((r#""".a"#.into(), Rule::DuplicateKey))
        );
        assert_eq!(
            problem(r#"{"meta":{"":[1e400]}}"#),
            Some((r#"meta.""[0]"#.into(), Rule::InexactNumber))
        );
        assert_eq!(
            problem(r#"{"":1,"":2}"#),
            Some((r#""""#.into(), Rule::DuplicateKey))
        );
        // The same key in sibling objects, and keys that differ only in case, are fine.
        assert_eq!(problem(r#"[{"a":1},{"a":2}]"#), None);
        assert_eq!(problem(r#"{"a":{"a":1},"A":2}"#), None);
    }

    #[test]
    fn a_number_must_be_exactly_a_double() {
        for exact in [
            "0",
            "-0",
            "1",
            "1.0",
            "0.1",
            "-2.5e-3",
            "1e21",
            "1E+300",
            "9007199254740992",
            "1152921504606846976",
            "5e-324",
            "1.7976931348623157e308",
            "123456789012345",
            "0.30000000000000004",
        ] {
            assert!(is_exact_double(exact), "{exact} is exactly a double");
        }
        for inexact in [
            "123456789012345678901234567890",
            "-9223372036854775809",
            "1.00000000000000000000001",
            "9007199254740993",
            "1e400",
            "-1e400",
            "1e-400",
            "0.1000000000000000055511151231257827",
        ] {
            assert!(
                !is_exact_double(inexact),
                "{inexact} is not exactly a double"
            );
        }
        assert_eq!(
            problem(r#"{"meta":{"amount":123456789012345678901234567890}}"#),
            Some(("meta.amount".into(), Rule::InexactNumber))
        );
        let message = check(br#"{"n":1.00000000000000000000001}"#)
            .unwrap_err()
            .message;
        assert!(message.contains("send it as a string"), "{message}");
    }

    #[test]
    fn malformed_text_is_left_to_the_parser() {
        for text in ["", "{", r#"{"a" 1}"#, "[1,", r#"{"a":1,}"#, "\"abc", "nul"] {
            assert_eq!(check(text.as_bytes()), Ok(()), "{text:?}");
        }
        let deep = "[".repeat(10_000);
        assert_eq!(check(deep.as_bytes()), Ok(()));
    }

    #[test]
    fn an_exponent_at_the_end_of_i64_is_judged_without_overflow() {
        for inexact in [
            "2.1e-9223372036854775808",
            "0.01e-9223372036854775808",
            "1.5e-9223372036854775807",
            "1e-99999999999999999999",
            "1e99999999999999999999",
        ] {
            assert!(!is_exact_double(inexact), "{inexact} rounds to 0 or inf");
        }
        for zero in [
            "0e-9223372036854775808",
            "0.0e9223372036854775807",
            "0e-99999999999999999999",
        ] {
            assert!(is_exact_double(zero), "{zero} is 0");
        }
    }

    #[test]
    fn a_malformed_number_is_a_syntax_error_not_an_inexact_one() {
        for text in [
            "-",
            r#"{"meta":{"a":-}}"#,
            r#"{"occurred_at":2026-05-31}"#,
            "[01]",
            "[1.]",
            "[.5]",
            "[1e]",
            "[1e+]",
            "[-+1]",
            "[1.5.5]",
            "[1e5e5]",
        ] {
            assert_eq!(check(text.as_bytes()), Ok(()), "{text}");
        }
        for number in ["0", "-0", "10", "1.5", "1e5", "1E+5", "-1.25e-5", "0.0e0"] {
            assert!(is_json_number(number), "{number}");
        }
    }
}
