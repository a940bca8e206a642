//! RFC 8785 (JSON Canonicalization Scheme) encoding of `serde_json::Value`.
//!
//! The chain hashes these bytes, so this encoding is a storage format: `docs/chain-format.md`
//! specifies it and the fixture test in `chain.rs` guards it. Object members are sorted by
//! their keys' UTF-16 code units, strings use the minimal JSON escapes, and every number is
//! written as an IEEE 754 double the way ECMAScript's `Number.prototype.toString` does.

use serde_json::Value;

/// Appends the canonical encoding of `value` to `out`.
pub fn encode_into(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(number) => encode_number(number, out),
        Value::String(text) => encode_string(text, out),
        Value::Array(items) => {
            out.push(b'[');
            for (idx, item) in items.iter().enumerate() {
                if idx > 0 {
                    out.push(b',');
                }
                encode_into(item, out);
            }
            out.push(b']');
        }
        Value::Object(members) => encode_object(members, out),
    }
}

/// Appends the canonical encoding of a JSON object (members sorted, RFC 8785 §3.2.3).
pub fn encode_object(members: &serde_json::Map<String, Value>, out: &mut Vec<u8>) {
    let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
    // Compare keys as sequences of UTF-16 code units. ASCII keys (nearly all) compare the
    // same as bytes, which is much cheaper than re-encoding them.
    if sorted.iter().all(|(key, _)| key.is_ascii()) {
        sorted.sort_unstable_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
    } else {
        sorted.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    }
    out.push(b'{');
    for (idx, (key, item)) in sorted.into_iter().enumerate() {
        if idx > 0 {
            out.push(b',');
        }
        encode_string(key, out);
        out.push(b':');
        encode_into(item, out);
    }
    out.push(b'}');
}

/// The canonical encoding of `value` as a new buffer.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    encode_into(value, &mut out);
    out
}

fn encode_number(number: &serde_json::Number, out: &mut Vec<u8>) {
    // JCS treats every number as a double; integers beyond 2^53 therefore lose precision in
    // the canonical form exactly as they would in a JavaScript verifier.
    encode_double(number.as_f64().unwrap_or(0.0), out);
}

/// Appends a number the way ECMAScript's `Number.prototype.toString` writes the double.
pub fn encode_double(double: f64, out: &mut Vec<u8>) {
    if double == 0.0 {
        // Both +0 and -0 are written "0".
        out.push(b'0');
        return;
    }
    let mut buffer = ryu_js::Buffer::new();
    out.extend_from_slice(buffer.format_finite(double).as_bytes());
}

/// Appends a JSON string with the minimal escapes RFC 8785 prescribes.
pub fn encode_string(text: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    // Most strings need no escape at all: copy them whole.
    if !text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    for ch in text.chars() {
        match ch {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0C}' => out.extend_from_slice(b"\\f"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut utf8 = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut utf8).as_bytes());
            }
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canon(value: Value) -> String {
        String::from_utf8(encode(&value)).unwrap()
    }

    #[test]
    fn sorts_keys_by_utf16_and_drops_whitespace() {
        // From RFC 8785 §3.2.3: "\u{10000}" sorts before "\u{FB33}" in UTF-16 order.
        let value =
            json!({"\u{FB33}": 1, "\u{10000}": 2, "b": [1, {"z": null, "a": true}], "a": "x"});
        assert_eq!(
            canon(value),
            "{\"a\":\"x\",\"b\":[1,{\"a\":true,\"z\":null}],\"\u{10000}\":2,\"\u{FB33}\":1}"
        );
    }

    #[test]
    fn numbers_follow_ecmascript() {
        assert_eq!(canon(json!(1.0)), "1");
        assert_eq!(canon(json!(-0.0)), "0");
        assert_eq!(canon(json!(1e21)), "1e+21");
        assert_eq!(canon(json!(0.000001)), "0.000001");
        assert_eq!(canon(json!(1e-7)), "1e-7");
        let rfc_example: Value = serde_json::from_str("333333333.33333329").unwrap();
        assert_eq!(canon(rfc_example), "333333333.3333333");
        assert_eq!(canon(json!(9007199254740993u64)), "9007199254740992");
    }

    #[test]
    fn escapes_only_what_json_requires() {
        assert_eq!(
            canon(json!("a\"\\\u{1}\n\u{7f}é€")),
            "\"a\\\"\\\\\\u0001\\n\u{7f}é€\""
        );
    }
}
