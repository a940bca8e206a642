//! `docs/openapi.json` against the reference contract and against the running server.
//!
//! - The document parses, is OpenAPI 3.1, is formatted canonically, and every `$ref` resolves.
//! - It keeps every operation, parameter, default, limit and required response field of the
//!   reference document (`tests/fixtures/anaconda-audit-logs-openapi.json`, the Anaconda
//!   Platform Audit Logs API's published OpenAPI document, kept verbatim).
//! - Every operation it lists is routed by the server, and every route the server registers
//!   anywhere in `src/` is in it, except the web page's (`src/page/`: HTML, and no `/api/`
//!   path); every answer the tests provoke has a documented status, media type and schema.
//! - `GET /api/openapi.json` serves the file.
//! - Every parameter of the reference whose schema refuses an empty value is refused empty.
//! - Real responses (list, get one, export create and status, validation errors and the
//!   rejection counts they leave, every error status) validate against the reference's
//!   schemas and ours, with the small JSON Schema validator below.
//!
//! The server runs on a port-0 listener; requests go through the test kit's HTTP/1.1 client
//! (`auditlog_testkit::http`), so no client crate is needed.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use auditlog_server::{AppState, ServerConfig};
use auditlog_service::access::Actor;
use auditlog_store::{NewOrg, Role};
use auditlog_testkit::http::{self, Request, Response};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use uuid::Uuid;

type TestResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

// ---------------------------------------------------------------------------------------
// The two documents

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn our_path() -> PathBuf {
    manifest_dir().join("../../docs/openapi.json")
}

fn reference_path() -> PathBuf {
    manifest_dir().join("tests/fixtures/anaconda-audit-logs-openapi.json")
}

fn load(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

fn ours() -> Value {
    load(our_path())
}

fn reference() -> Value {
    load(reference_path())
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Every `(path, method, operation)` of a document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths is an object") {
        for (method, op) in item.as_object().expect("a path item is an object") {
            if METHODS.contains(&method.as_str()) {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
    }
    out
}

/// Resolves a local reference (`#/components/...`), unescaping `~1` and `~0`.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    doc.pointer(reference.strip_prefix('#')?)
}

/// Follows `$ref` until a value that is not a reference.
fn deref<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..32 {
        match value.get("$ref").and_then(Value::as_str) {
            Some(r) => value = resolve(doc, r).unwrap_or_else(|| panic!("unresolved $ref {r}")),
            None => return value,
        }
    }
    panic!("$ref cycle")
}

fn collect_refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, member) in map {
                if key == "$ref" {
                    out.push((
                        at.to_string(),
                        member.as_str().unwrap_or("<not a string>").to_string(),
                    ));
                } else {
                    collect_refs(member, &format!("{at}/{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            for (idx, item) in items.iter().enumerate() {
                collect_refs(item, &format!("{at}/{idx}"), out);
            }
        }
        _ => {}
    }
}

fn schema_named<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc.pointer(&format!("/components/schemas/{name}"))
        .unwrap_or_else(|| panic!("no schema {name}"))
}

/// The operation of a path template and method.
fn operation<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    doc["paths"]
        .get(path)
        .and_then(|item| item.get(method))
        .unwrap_or_else(|| panic!("the document has no {} {path}", method.to_uppercase()))
}

/// The JSON schema of an operation's response.
fn response_schema<'a>(doc: &'a Value, path: &str, method: &str, status: &str) -> &'a Value {
    let response = operation(doc, path, method)["responses"]
        .get(status)
        .unwrap_or_else(|| panic!("{} {path} documents no {status}", method.to_uppercase()));
    deref(doc, response)
        .pointer("/content/application~1json/schema")
        .unwrap_or_else(|| {
            panic!(
                "{} {path} {status} has no application/json schema",
                method.to_uppercase()
            )
        })
}

// ---------------------------------------------------------------------------------------
// A small JSON Schema validator (the subset OpenAPI 3.1 documents here use)

struct Validator<'a> {
    doc: &'a Value,
}

impl<'a> Validator<'a> {
    fn new(doc: &'a Value) -> Validator<'a> {
        Validator { doc }
    }

    /// The problems of `value` against `schema` (empty when it is valid).
    fn errors(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.walk(schema, value, "$", &mut errors, 0);
        errors
    }

    /// Panics with every problem when `value` does not validate.
    fn assert_valid(&self, what: &str, schema: &Value, value: &Value) {
        let errors = self.errors(schema, value);
        assert!(
            errors.is_empty(),
            "{what} does not validate:\n  {}\nvalue: {}",
            errors.join("\n  "),
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    }

    fn walk(
        &self,
        schema: &Value,
        value: &Value,
        at: &str,
        errors: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > 64 {
            errors.push(format!("{at}: schema nesting too deep"));
            return;
        }
        let schema = match schema {
            Value::Bool(true) => return,
            Value::Bool(false) => {
                errors.push(format!("{at}: no value is allowed here"));
                return;
            }
            Value::Object(schema) => schema,
            other => {
                errors.push(format!("{at}: the schema {other} is not an object"));
                return;
            }
        };
        if let Some(reference) = schema.get("$ref") {
            let reference = reference.as_str().unwrap_or_default();
            match resolve(self.doc, reference) {
                Some(target) => self.walk(target, value, at, errors, depth + 1),
                None => errors.push(format!("{at}: unresolved $ref {reference}")),
            }
        }
        if let Some(kind) = schema.get("type") {
            let kinds: Vec<&str> = match kind {
                Value::String(k) => vec![k.as_str()],
                Value::Array(ks) => ks.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !kinds.iter().any(|k| type_matches(k, value)) {
                errors.push(format!(
                    "{at}: expected {}, got {}",
                    kinds.join(" or "),
                    short(value)
                ));
                return;
            }
        }
        if let Some(Value::Array(allowed)) = schema.get("enum") {
            if !allowed.contains(value) {
                errors.push(format!(
                    "{at}: {} is not one of {}",
                    short(value),
                    Value::Array(allowed.clone())
                ));
            }
        }
        if let Some(constant) = schema.get("const") {
            if constant != value {
                errors.push(format!("{at}: {} is not {constant}", short(value)));
            }
        }
        if let Some(Value::Array(branches)) = schema.get("anyOf") {
            let mut branch_errors = Vec::new();
            let mut matched = false;
            for branch in branches {
                let mut errs = Vec::new();
                self.walk(branch, value, at, &mut errs, depth + 1);
                if errs.is_empty() {
                    matched = true;
                    break;
                }
                branch_errors.push(errs.join("; "));
            }
            if !matched {
                errors.push(format!(
                    "{at}: matches no anyOf branch: [{}]",
                    branch_errors.join("] or [")
                ));
            }
        }
        if let Some(Value::Array(branches)) = schema.get("oneOf") {
            let n = branches
                .iter()
                .filter(|b| self.errors_at(b, value, at, depth).is_empty())
                .count();
            if n != 1 {
                errors.push(format!("{at}: matches {n} oneOf branches, not exactly one"));
            }
        }
        if let Some(Value::Array(branches)) = schema.get("allOf") {
            for branch in branches {
                self.walk(branch, value, at, errors, depth + 1);
            }
        }
        match value {
            Value::String(text) => {
                let chars = text.chars().count() as u64;
                if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                    if chars > max {
                        errors.push(format!(
                            "{at}: {chars} characters, more than maxLength {max}"
                        ));
                    }
                }
                if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                    if chars < min {
                        errors.push(format!(
                            "{at}: {chars} characters, fewer than minLength {min}"
                        ));
                    }
                }
                if let Some(format) = schema.get("format").and_then(Value::as_str) {
                    let ok = match format {
                        "uuid" => is_uuid(text),
                        "date-time" => is_date_time(text),
                        "ipv4" => text.parse::<Ipv4Addr>().is_ok(),
                        "ipv6" => text.parse::<Ipv6Addr>().is_ok(),
                        _ => true,
                    };
                    if !ok {
                        errors.push(format!("{at}: {text:?} is not a valid {format}"));
                    }
                }
            }
            Value::Number(number) => {
                let n = number.as_f64().unwrap_or(f64::NAN);
                if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                    if n < min {
                        errors.push(format!("{at}: {number} is less than minimum {min}"));
                    }
                }
                if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                    if n > max {
                        errors.push(format!("{at}: {number} is more than maximum {max}"));
                    }
                }
            }
            Value::Array(items) => {
                if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                    if items.len() as u64 > max {
                        errors.push(format!(
                            "{at}: {} items, more than maxItems {max}",
                            items.len()
                        ));
                    }
                }
                if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
                    if (items.len() as u64) < min {
                        errors.push(format!(
                            "{at}: {} items, fewer than minItems {min}",
                            items.len()
                        ));
                    }
                }
                if let Some(item_schema) = schema.get("items") {
                    for (idx, item) in items.iter().enumerate() {
                        self.walk(
                            item_schema,
                            item,
                            &format!("{at}[{idx}]"),
                            errors,
                            depth + 1,
                        );
                    }
                }
            }
            Value::Object(members) => {
                if let Some(Value::Array(required)) = schema.get("required") {
                    for name in required.iter().filter_map(Value::as_str) {
                        if !members.contains_key(name) {
                            errors.push(format!("{at}: the required property {name:?} is missing"));
                        }
                    }
                }
                let properties = schema.get("properties").and_then(Value::as_object);
                for (name, member) in members {
                    let member_at = format!("{at}.{name}");
                    match properties.and_then(|p| p.get(name)) {
                        Some(property) => {
                            self.walk(property, member, &member_at, errors, depth + 1)
                        }
                        None => match schema.get("additionalProperties") {
                            None | Some(Value::Bool(true)) => {}
                            Some(Value::Bool(false)) => {
                                errors.push(format!("{at}: the property {name:?} is not allowed"))
                            }
                            Some(additional) => {
                                self.walk(additional, member, &member_at, errors, depth + 1)
                            }
                        },
                    }
                }
            }
            _ => {}
        }
    }

    fn errors_at(&self, schema: &Value, value: &Value, at: &str, depth: usize) -> Vec<String> {
        let mut errors = Vec::new();
        self.walk(schema, value, at, &mut errors, depth + 1);
        errors
    }
}

fn type_matches(kind: &str, value: &Value) -> bool {
    match kind {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(80).collect::<String>())
    } else {
        text
    }
}

/// A hyphenated UUID: 8-4-4-4-12 hex digits.
fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(idx, b)| match idx {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// An RFC 3339 date-time: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
fn is_date_time(text: &str) -> bool {
    fn digits(text: &str, range: std::ops::Range<usize>) -> Option<u32> {
        let part = text.get(range)?;
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    }
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return false;
    }
    let (Some(year), Some(month), Some(day), Some(hour), Some(minute), Some(second)) = (
        digits(text, 0..4),
        digits(text, 5..7),
        digits(text, 8..10),
        digits(text, 11..13),
        digits(text, 14..16),
        digits(text, 17..19),
    ) else {
        return false;
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    if day == 0 || day > days || hour > 23 || minute > 59 || second > 60 {
        return false;
    }
    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let n = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        "Z" | "z" => true,
        offset
            if offset.len() == 6
                && matches!(offset.as_bytes()[0], b'+' | b'-')
                && offset.as_bytes()[3] == b':' =>
        {
            matches!((digits(offset, 1..3), digits(offset, 4..6)), (Some(h), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    }
}

#[test]
fn the_validator_validates() {
    let doc = json!({"components": {"schemas": {
        "Thing": {"type": "object", "required": ["id"], "additionalProperties": false, "properties": {
            "id": {"type": "string", "format": "uuid"},
            "at": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
            "n": {"type": ["integer", "null"], "minimum": 1, "maximum": 3},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 2, "enum": ["a", "bb"]}},
        }},
        "Map": {"type": "object", "additionalProperties": {"type": "string", "format": "uuid"}},
    }}});
    let v = Validator::new(&doc);
    let thing = json!({"$ref": "#/components/schemas/Thing"});
    let good = json!({"id": "0191e3b2-7c4d-7def-8a9b-0123456789ab", "at": "2028-02-29T10:00:00.5+01:00", "n": 2, "tags": ["a", "bb"]});
    assert!(
        v.errors(&thing, &good).is_empty(),
        "{:?}",
        v.errors(&thing, &good)
    );
    for bad in [
        json!({}),
        json!({"id": "not-a-uuid"}),
        json!({"id": "0191e3b2-7c4d-7def-8a9b-0123456789ab", "at": "2025-02-29T10:00:00Z"}),
        json!({"id": "0191e3b2-7c4d-7def-8a9b-0123456789ab", "at": "2026-01-01 10:00:00Z"}),
        json!({"id": "0191e3b2-7c4d-7def-8a9b-0123456789ab", "n": 4}),
        json!({"id": "0191e3b2-7c4d-7def-8a9b-0123456789ab", "n": 1.5}),
        json!({"id": "0191e3b2-7c4d-7def-8a9b-0123456789ab", "tags": ["ccc"]}),
        json!({"id": "0191e3b2-7c4d-7def-8a9b-0123456789ab", "extra": 1}),
    ] {
        assert!(
            !v.errors(&thing, &bad).is_empty(),
            "{bad} should not validate"
        );
    }
    let map = json!({"$ref": "#/components/schemas/Map"});
    assert!(v
        .errors(&map, &json!({"id": "0191e3b2-7c4d-7def-8a9b-0123456789ab"}))
        .is_empty());
    assert!(!v.errors(&map, &json!({"id": 7})).is_empty());
    assert!(is_date_time("2026-01-15T08:20:30.123Z"));
    assert!(!is_date_time("2026-13-15T08:20:30Z"));
    assert!(!is_date_time("2026-01-15T08:20:30"));
}

// ---------------------------------------------------------------------------------------
// The document itself

#[test]
fn the_document_is_openapi_3_1_and_every_ref_resolves() {
    let doc = ours();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1.")),
        "openapi is {}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    assert_eq!(
        doc["servers"],
        json!([{"url": "/", "description": "This server"}])
    );

    let mut refs = Vec::new();
    collect_refs(&doc, "#", &mut refs);
    assert!(refs.len() > 20, "suspiciously few $refs: {}", refs.len());
    let unresolved: Vec<_> = refs
        .iter()
        .filter(|(_, r)| !r.starts_with("#/") || resolve(&doc, r).is_none())
        .collect();
    assert!(
        unresolved.is_empty(),
        "unresolved $refs (at, ref): {unresolved:?}"
    );

    // Operation ids are unique, every operation answers something, and the security
    // schemes it names exist.
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    let mut ids = BTreeSet::new();
    for (path, method, op) in operations(&doc) {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path} has no operationId"));
        assert!(ids.insert(id.to_string()), "operationId {id} is used twice");
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
        for requirement in op["security"].as_array().into_iter().flatten() {
            for name in requirement
                .as_object()
                .expect("a security requirement is an object")
                .keys()
            {
                assert!(
                    schemes.contains_key(name),
                    "{method} {path} names the unknown security scheme {name}"
                );
            }
        }
        // Path parameters are declared for every placeholder.
        for placeholder in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        {
            let declared = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| deref(&doc, p))
                .any(|p| p["in"] == "path" && p["name"] == placeholder && p["required"] == true);
            assert!(
                declared,
                "{method} {path} does not declare the required path parameter {placeholder}"
            );
        }
    }
}

#[test]
fn the_document_is_formatted_canonically() {
    // Two-space indentation, key order kept, one final newline: what `serde_json` writes, so
    // that a regenerated document diffs cleanly.
    let text = std::fs::read_to_string(our_path()).expect("read docs/openapi.json");
    let value: Value = serde_json::from_str(&text).expect("JSON");
    let canonical = serde_json::to_string_pretty(&value).expect("serialize") + "\n";
    if text != canonical {
        let line = text
            .lines()
            .zip(canonical.lines())
            .position(|(a, b)| a != b)
            .map_or(0, |n| n + 1);
        panic!("docs/openapi.json is not formatted as serde_json::to_string_pretty + newline (first difference near line {line})");
    }
}

/// Which way a schema is used: in a response ours may require more than the reference, in a
/// request it may not.
#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Response,
    Request,
}

fn required_of(schema: &Value) -> BTreeSet<String> {
    schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

/// What a schema of the reference promises that ours must keep.
fn schema_compat(
    rdoc: &Value,
    rs: &Value,
    odoc: &Value,
    os: &Value,
    at: &str,
    dir: Direction,
    problems: &mut Vec<String>,
) {
    let (rs, os) = (deref(rdoc, rs), deref(odoc, os));
    let (r_required, o_required) = (required_of(rs), required_of(os));
    match dir {
        Direction::Response => {
            for missing in r_required.difference(&o_required) {
                problems.push(format!(
                    "{at}: {missing:?} is required by the reference but not by ours"
                ));
            }
        }
        Direction::Request => {
            for extra in o_required.difference(&r_required) {
                problems.push(format!(
                    "{at}: ours requires {extra:?}, the reference does not"
                ));
            }
        }
    }
    if let (Some(rt), Some(ot)) = (rs.get("type"), os.get("type")) {
        if rt != ot {
            problems.push(format!("{at}: type {ot} differs from the reference's {rt}"));
        }
    }
    for keyword in ["default", "minimum", "maximum", "maxLength", "format"] {
        if let Some(expected) = rs.get(keyword) {
            if os.get(keyword) != Some(expected) {
                problems.push(format!(
                    "{at}: {keyword} is {:?}, the reference's is {expected}",
                    os.get(keyword)
                ));
            }
        }
    }
    if let Some(properties) = rs["properties"].as_object() {
        for (name, rp) in properties {
            match os["properties"].get(name) {
                Some(op) => {
                    schema_compat(rdoc, rp, odoc, op, &format!("{at}.{name}"), dir, problems)
                }
                None => problems.push(format!(
                    "{at}: the property {name:?} of the reference is missing"
                )),
            }
        }
    }
    if let Some(ri) = rs.get("items") {
        match os.get("items") {
            Some(oi) => schema_compat(rdoc, ri, odoc, oi, &format!("{at}[]"), dir, problems),
            None => problems.push(format!("{at}: items are not described")),
        }
    }
    if let (Some(ra), Some(oa)) = (rs["anyOf"].as_array(), os["anyOf"].as_array()) {
        // Branch by branch, when both keep the same branches (string | null and the like).
        if ra.len() == oa.len() {
            for (idx, (rb, ob)) in ra.iter().zip(oa).enumerate() {
                schema_compat(rdoc, rb, odoc, ob, &format!("{at}|{idx}"), dir, problems);
            }
        }
    }
}

fn parameters(doc: &Value, op: &Value) -> Vec<Value> {
    op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| deref(doc, p).clone())
        .collect()
}

fn same_parameter(a: &Value, b: &Value) -> bool {
    let (an, bn) = (
        a["name"].as_str().unwrap_or_default(),
        b["name"].as_str().unwrap_or_default(),
    );
    a["in"] == b["in"]
        && if a["in"] == "header" {
            an.eq_ignore_ascii_case(bn)
        } else {
            an == bn
        }
}

#[test]
fn the_document_keeps_every_promise_of_the_reference() {
    let (rdoc, odoc) = (reference(), ours());
    let mut problems = Vec::new();
    for (path, method, rop) in operations(&rdoc) {
        let Some(oop) = odoc["paths"].get(&path).and_then(|item| item.get(&method)) else {
            problems.push(format!(
                "{} {path} of the reference is missing",
                method.to_uppercase()
            ));
            continue;
        };
        let at = format!("{} {path}", method.to_uppercase());
        let (rparams, oparams) = (parameters(&rdoc, &rop), parameters(&odoc, oop));
        for rp in &rparams {
            let name = rp["name"].as_str().unwrap_or_default();
            let Some(opar) = oparams.iter().find(|o| same_parameter(rp, o)) else {
                problems.push(format!(
                    "{at}: the {} parameter {name} is missing",
                    rp["in"].as_str().unwrap_or_default()
                ));
                continue;
            };
            if rp["required"] != true && opar["required"] == true {
                problems.push(format!(
                    "{at}: ours requires the parameter {name}, the reference does not"
                ));
            }
            schema_compat(
                &rdoc,
                &rp["schema"],
                &odoc,
                &opar["schema"],
                &format!("{at} parameter {name}"),
                Direction::Request,
                &mut problems,
            );
        }
        for opar in &oparams {
            if opar["required"] == true && !rparams.iter().any(|rp| same_parameter(rp, opar)) {
                problems.push(format!(
                    "{at}: ours adds the required parameter {}",
                    opar["name"]
                ));
            }
        }
        if let Some(rbody) = rop.get("requestBody") {
            let rbody = deref(&rdoc, rbody);
            match oop.get("requestBody").map(|b| deref(&odoc, b)) {
                None => problems.push(format!("{at}: the request body is not described")),
                Some(obody) => {
                    for (media, rmedia) in rbody["content"].as_object().into_iter().flatten() {
                        match obody["content"].get(media) {
                            None => problems.push(format!(
                                "{at}: the request body media type {media} is missing"
                            )),
                            Some(omedia) => schema_compat(
                                &rdoc,
                                &rmedia["schema"],
                                &odoc,
                                &omedia["schema"],
                                &format!("{at} body"),
                                Direction::Request,
                                &mut problems,
                            ),
                        }
                    }
                }
            }
        }
        for (status, rresponse) in rop["responses"].as_object().into_iter().flatten() {
            let Some(oresponse) = oop["responses"].get(status) else {
                problems.push(format!("{at}: the {status} response is missing"));
                continue;
            };
            let (rresponse, oresponse) = (deref(&rdoc, rresponse), deref(&odoc, oresponse));
            for (media, rmedia) in rresponse["content"].as_object().into_iter().flatten() {
                // An empty schema (`{}`) promises nothing about the body.
                if rmedia["schema"].as_object().is_some_and(|s| s.is_empty()) {
                    continue;
                }
                match oresponse["content"].get(media) {
                    None => {
                        problems.push(format!("{at}: the {status} media type {media} is missing"))
                    }
                    Some(omedia) => schema_compat(
                        &rdoc,
                        &rmedia["schema"],
                        &odoc,
                        &omedia["schema"],
                        &format!("{at} {status}"),
                        Direction::Response,
                        &mut problems,
                    ),
                }
            }
        }
    }
    // Every schema of the reference is kept, by name. Request schemas may not require more.
    for (name, rs) in rdoc["components"]["schemas"]
        .as_object()
        .expect("reference schemas")
    {
        match odoc["components"]["schemas"].get(name) {
            None => problems.push(format!("the schema {name} of the reference is missing")),
            Some(os) => {
                let dir = if name.ends_with("Request") {
                    Direction::Request
                } else {
                    Direction::Response
                };
                schema_compat(&rdoc, rs, &odoc, os, name, dir, &mut problems);
            }
        }
    }
    assert!(
        problems.is_empty(),
        "ours breaks the reference:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_documented_extensions_are_there() {
    let doc = ours();
    let required = |name: &str| required_of(schema_named(&doc, name));
    let properties = |name: &str| -> BTreeSet<String> {
        schema_named(&doc, name)["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect()
    };
    for field in [
        "actor_name",
        "target_name",
        "ip_address",
        "user_agent",
        "request_id",
        "seq",
        "hash",
        "prev_hash",
    ] {
        assert!(
            properties("AuditLogResponse").contains(field),
            "AuditLogResponse lacks {field}"
        );
    }
    assert!(
        required("AuditLogResponse").is_superset(&["seq".to_string(), "hash".to_string()].into())
    );
    assert_eq!(
        schema_named(&doc, "AuditLogResponse")["properties"]["seq"]["type"],
        "integer"
    );
    for field in ["next_cursor", "total_count_exact"] {
        assert!(
            required("PaginatedResponse_AuditLogResponse_").contains(field),
            "the list response lacks {field}"
        );
    }
    assert_eq!(
        schema_named(&doc, "ExportRequest")["properties"]["format"]["enum"],
        json!(["jsonl", "csv"])
    );
    assert_eq!(
        schema_named(&doc, "ExportRequest")["properties"]["format"]["default"],
        "jsonl"
    );
    assert_eq!(
        schema_named(&doc, "ExportRequest")["properties"]["gzip"]["type"],
        "boolean"
    );
    for field in ["expires_at", "format", "gzip"] {
        assert!(
            properties("ExportJobResponse").contains(field),
            "ExportJobResponse lacks {field}"
        );
    }
    assert_eq!(required("HTTPError"), ["detail".to_string()].into());
    let cursor = parameters(&doc, operation(&doc, "/api/audit-logs", "get"))
        .into_iter()
        .find(|p| p["name"] == "cursor")
        .expect("the list has a cursor parameter");
    assert_eq!(cursor["in"], "query");
    // The ingest format is NewEvent, field for field.
    let new_event: BTreeSet<String> = properties("NewEvent");
    let fields: BTreeSet<String> = auditlog_core::event::NEW_EVENT_FIELDS
        .iter()
        .map(|f| f.to_string())
        .collect();
    assert_eq!(
        new_event, fields,
        "NewEvent differs from auditlog_core's ingest fields"
    );
    assert_eq!(required("NewEvent"), ["action_key".to_string()].into());
    let limits = [
        ("action_key", auditlog_core::validate::MAX_ACTION_KEY),
        ("action_verb", auditlog_core::validate::MAX_TYPE),
        ("actor_id", auditlog_core::validate::MAX_ID),
        ("target_id", auditlog_core::validate::MAX_ID),
        ("request_id", auditlog_core::validate::MAX_ID),
        ("actor_email", auditlog_core::validate::MAX_EMAIL),
        ("target_email", auditlog_core::validate::MAX_EMAIL),
        ("actor_name", auditlog_core::validate::MAX_NAME),
        ("target_name", auditlog_core::validate::MAX_NAME),
        ("target_type", auditlog_core::validate::MAX_TYPE),
        ("service_name", auditlog_core::validate::MAX_TYPE),
        ("user_agent", auditlog_core::validate::MAX_USER_AGENT),
    ];
    for (field, max) in limits {
        assert_eq!(
            schema_named(&doc, "NewEvent")["properties"][field]["maxLength"],
            json!(max),
            "NewEvent.{field} maxLength differs from auditlog_core::validate"
        );
    }
    let batch = &operation(&doc, "/api/audit-logs/events", "post")["requestBody"]["content"]
        ["application/json"]["schema"]["anyOf"][1];
    assert_eq!(batch["maxItems"], json!(auditlog_service::MAX_BATCH));
    // Error statuses are documented with HTTPError, 422 with HTTPValidationError.
    for (path, method, op) in operations(&doc) {
        for (status, response) in op["responses"].as_object().expect("responses") {
            let response = deref(&doc, response);
            let schema = response.pointer("/content/application~1json/schema");
            let expected = match status.as_str() {
                "422" => "#/components/schemas/HTTPValidationError",
                s if s.starts_with('4') => "#/components/schemas/HTTPError",
                _ => continue,
            };
            assert_eq!(
                schema.and_then(|s| s.get("$ref")).and_then(Value::as_str),
                Some(expected),
                "{} {path} {status} should be documented as {expected}",
                method.to_uppercase()
            );
        }
    }
    let too_many = deref(
        &doc,
        &operation(&doc, "/api/audit-logs", "get")["responses"]["429"],
    )
    .clone();
    assert!(
        too_many["headers"].get("Retry-After").is_some(),
        "429 documents Retry-After"
    );
}

// ---------------------------------------------------------------------------------------
// Requests, through the test kit's HTTP/1.1 client

/// Sends one request on a new connection (`Connection: close`) and reads the whole answer;
/// panics, naming the request, when the exchange fails at the transport level.
async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let request = Request::new(method, path).headers(headers).raw_body(body);
    http::send(addr, &request)
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

// ---------------------------------------------------------------------------------------
// A real server

struct Fixture {
    addr: SocketAddr,
    state: AppState,
    org: auditlog_store::Org,
    /// An administrator's API token.
    admin: String,
    /// A member's API token (may not read the audit log).
    member: String,
    /// An ingest key bound to the organization.
    ingest: String,
    /// A platform-wide ingest key.
    platform_ingest: String,
    /// A service account's client credentials.
    client_id: String,
    client_secret: String,
    _dir: tempfile::TempDir,
}

/// How the server runs.
struct Setup {
    /// Start the export runner (`auditlog_server::serve`); without it jobs stay pending until
    /// the test runs them.
    runner: bool,
    configure: fn(&mut ServerConfig),
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            runner: true,
            configure: |_| {},
        }
    }
}

async fn start(setup: Setup) -> Result<Fixture, Box<dyn std::error::Error + Send + Sync>> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(auditlog_sqlite::SqliteStore::open(dir.path())?);
    let key = auditlog_service::keys::load_or_create(dir.path())?;
    let service =
        auditlog_service::Service::new(store.clone(), auditlog_core::Catalog::builtin(), key);
    let at_the_command_line = auditlog_service::grant::Operator::at_the_command_line();
    service
        .create_org(
            &at_the_command_line,
            NewOrg {
                name: "acme".into(),
                display_name: "Acme".into(),
                audit_logs_enabled: true,
            },
        )
        .await?;
    let org = service
        .operator_org(&at_the_command_line, "acme")
        .await?
        .ok_or("acme was just created")?;
    let operator = Actor::operator();
    let admin_user = service
        .add_user(&org, "admin@acme.example", None, Role::Admin, &operator)
        .await?;
    let (_, admin) = service
        .create_api_token(&org, &admin_user, "t", None, &operator)
        .await?;
    let member_user = service
        .add_user(
            &org,
            "member@acme.example",
            Some("Member"),
            Role::Member,
            &operator,
        )
        .await?;
    let (_, member) = service
        .create_api_token(&org, &member_user, "m", None, &operator)
        .await?;
    let (_, ingest) = service.create_ingest_key(Some(&org), "i").await?;
    let (_, platform_ingest) = service.create_ingest_key(None, "platform").await?;
    let (account, client_secret) = service
        .create_service_account(&org, "ci-bot", &operator)
        .await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let mut config = ServerConfig::new(dir.path().join("exports"), format!("http://{addr}"));
    (setup.configure)(&mut config);
    let state = AppState::new(service, config);
    if setup.runner {
        tokio::spawn(auditlog_server::serve(
            state.clone(),
            listener,
            std::future::pending(),
        ));
    } else {
        let app = auditlog_server::router(state.clone())
            .into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
    }
    Ok(Fixture {
        addr,
        state,
        org: org.org().clone(),
        admin,
        member,
        ingest,
        platform_ingest,
        client_id: account.client_id,
        client_secret,
        _dir: dir,
    })
}

impl Fixture {
    async fn get(&self, path: &str, token: &str) -> Response {
        let auth = format!("Bearer {token}");
        send(
            self.addr,
            "GET",
            path,
            &[
                ("Authorization", &auth),
                ("X-Org-Name", "acme"),
                ("X-API-Version", "v1"),
            ],
            b"",
        )
        .await
    }

    async fn post_json(
        &self,
        path: &str,
        token: &str,
        body: &Value,
        extra: &[(&str, &str)],
    ) -> Response {
        let auth = format!("Bearer {token}");
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("X-Org-Name", "acme"),
            ("Content-Type", "application/json"),
        ];
        headers.extend_from_slice(extra);
        send(
            self.addr,
            "POST",
            path,
            &headers,
            body.to_string().as_bytes(),
        )
        .await
    }

    async fn ingest(&self, events: &Value) -> Vec<String> {
        let response = self
            .post_json("/api/audit-logs/events", &self.ingest, events, &[])
            .await;
        assert_eq!(response.status, 201, "ingest failed: {}", response.text());
        let body = response.json();
        Validator::new(&ours()).assert_valid(
            "the ingest response",
            schema_named(&ours(), "IngestResponse"),
            &body,
        );
        body["ids"]
            .as_array()
            .expect("ids")
            .iter()
            .map(|v| v.as_str().expect("id").to_string())
            .collect()
    }
}

/// Checks that an answer is what the document says `method path` may answer: a documented
/// status, a documented media type, and a JSON body that validates against the documented
/// schema. Returns the problems.
fn documented_problems(doc: &Value, path: &str, method: &str, response: &Response) -> Vec<String> {
    let at = format!("{} {path} → {}", method.to_uppercase(), response.status);
    let op = operation(doc, path, method);
    let status = response.status.to_string();
    let class = format!("{}XX", &status[..1]);
    let Some(documented) = op["responses"]
        .get(&status)
        .or_else(|| op["responses"].get(&class))
        .or_else(|| op["responses"].get("default"))
    else {
        return vec![format!(
            "{at}: the status is not documented (body {:?})",
            response.text()
        )];
    };
    let documented = deref(doc, documented);
    let mut problems = Vec::new();
    for (name, _) in documented["headers"].as_object().into_iter().flatten() {
        // Headers documented for an error are sent with it (Retry-After, WWW-Authenticate).
        if response.status >= 400 && response.header(name).is_none() {
            problems.push(format!("{at}: the documented header {name} is missing"));
        }
    }
    let Some(content) = documented["content"].as_object() else {
        return problems;
    };
    let Some(media) = response.media_type() else {
        problems.push(format!(
            "{at}: no Content-Type, documented {:?}",
            content.keys().collect::<Vec<_>>()
        ));
        return problems;
    };
    let entry = content.iter().find(|(m, _)| {
        m.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case(&media)
    });
    let Some((_, entry)) = entry else {
        problems.push(format!(
            "{at}: Content-Type {media} is not documented ({:?})",
            content.keys().collect::<Vec<_>>()
        ));
        return problems;
    };
    if media == "application/json" {
        let body: Value = match serde_json::from_slice(&response.body) {
            Ok(body) => body,
            Err(e) => {
                problems.push(format!(
                    "{at}: the body is not JSON ({e}): {:?}",
                    response.text()
                ));
                return problems;
            }
        };
        if let Some(schema) = entry.get("schema") {
            for error in Validator::new(doc).errors(schema, &body) {
                problems.push(format!("{at}: {error}"));
            }
        }
    }
    problems
}

fn assert_documented(doc: &Value, path: &str, method: &str, response: &Response) {
    let problems = documented_problems(doc, path, method, response);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Routes as `(OpenAPI path, method)`.
type Routes = BTreeSet<(String, String)>;

/// Every `.rs` file under `dir`, recursively, in a stable order.
fn rust_files(dir: &std::path::Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The routes the server registers anywhere in `src/`, as `(OpenAPI path, method)`, split
/// into the web page's (files under `src/page/`, which the document does not describe) and
/// everything else, by a plain string search for `.route("…", get(…).post(…))`.
fn routes_in_source() -> (Routes, Routes) {
    let src = manifest_dir().join("src");
    let (mut page, mut api) = (BTreeSet::new(), BTreeSet::new());
    for path in rust_files(&src) {
        let source = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let routes = routes_in_file(&source, &path);
        if path.starts_with(src.join("page")) {
            page.extend(routes);
        } else {
            api.extend(routes);
        }
    }
    (page, api)
}

/// The routes one source file registers.
fn routes_in_file(source: &str, path: &std::path::Path) -> Routes {
    let mut routes = BTreeSet::new();
    let mut rest = source;
    while let Some(start) = rest.find(".route(") {
        rest = &rest[start + ".route(".len()..];
        let chunk_end = rest.find(".route(").unwrap_or(rest.len());
        let chunk = &rest[..chunk_end];
        let Some(open) = chunk.find('"') else {
            continue;
        };
        let Some(close) = chunk[open + 1..].find('"') else {
            continue;
        };
        let route = &chunk[open + 1..open + 1 + close];
        // axum 0.7 wrote `:name` and `*name`; 0.8 writes `{name}` like OpenAPI.
        let openapi_path: Vec<String> = route
            .split('/')
            .map(|segment| {
                match segment
                    .strip_prefix(':')
                    .or_else(|| segment.strip_prefix('*'))
                {
                    Some(name) => format!("{{{name}}}"),
                    None => segment.replace("{*", "{"),
                }
            })
            .collect();
        let openapi_path = openapi_path.join("/");
        let handlers = &chunk[open + 1 + close..];
        let mut found = false;
        for method in METHODS {
            let needles = [
                format!("({method}("),
                format!(" {method}("),
                format!(".{method}("),
                format!("::{method}("),
            ];
            if needles.iter().any(|n| handlers.contains(n.as_str())) {
                routes.insert((openapi_path.clone(), method.to_string()));
                found = true;
            }
        }
        assert!(
            found,
            "no method found for the route {route:?} in {}",
            path.display()
        );
    }
    routes
}

// ---------------------------------------------------------------------------------------
// Document against server

#[test]
fn every_route_of_the_source_is_documented_and_nothing_else() {
    let (page, source) = routes_in_source();
    assert!(
        source.len() >= 16,
        "found only {} API routes in src/: {source:?}",
        source.len()
    );
    assert!(
        page.len() >= 10,
        "found only {} page routes in src/page/: {page:?}",
        page.len()
    );
    // The page serves HTML; a JSON endpoint registered among its routes would escape the
    // document, so none may live there.
    let api_in_page: Vec<_> = page
        .iter()
        .filter(|(path, _)| path.starts_with("/api/"))
        .collect();
    assert!(
        api_in_page.is_empty(),
        "API routes registered by the page: {api_in_page:?}"
    );
    let documented: BTreeSet<(String, String)> = operations(&ours())
        .into_iter()
        .map(|(p, m, _)| (p, m))
        .collect();
    let undocumented: Vec<_> = source.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&source).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "routed but not documented: {undocumented:?}\ndocumented but not routed: {unrouted:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_operation_is_routed_and_answers_as_documented() -> TestResult {
    let fx = start(Setup::default()).await?;
    let doc = ours();
    let mut problems = Vec::new();
    for (path, method, op) in operations(&doc) {
        let concrete: String = path
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    Uuid::new_v4().to_string()
                } else {
                    s.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let security: Vec<String> = op["security"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_object)
            .flat_map(|o| o.keys().cloned())
            .collect();
        let token = if security.iter().any(|s| s == "JWT_or_Access_Token") {
            Some(fx.admin.as_str())
        } else if security.iter().any(|s| s == "IngestKey") {
            Some(fx.ingest.as_str())
        } else {
            None
        };
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &str)> = vec![("X-Org-Name", "acme"), ("X-API-Version", "v1")];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth));
        }
        let body = match op["requestBody"]["content"].as_object() {
            Some(content) if content.contains_key("application/json") => {
                headers.push(("Content-Type", "application/json"));
                b"{}".to_vec()
            }
            Some(content) if content.contains_key("application/x-www-form-urlencoded") => {
                headers.push(("Content-Type", "application/x-www-form-urlencoded"));
                b"grant_type=client_credentials".to_vec()
            }
            _ => Vec::new(),
        };
        let response = send(fx.addr, &method.to_uppercase(), &concrete, &headers, &body).await;
        let at = format!("{} {concrete}", method.to_uppercase());
        let unrouted = response.status == 405
            || (response.status == 404
                && !serde_json::from_slice::<Value>(&response.body)
                    .is_ok_and(|b| b["detail"].is_string()));
        if unrouted {
            problems.push(format!(
                "{at}: not routed ({} with body {:?})",
                response.status,
                response.text()
            ));
            continue;
        }
        problems.extend(documented_problems(&doc, &path, &method, &response));
    }
    assert!(
        problems.is_empty(),
        "the server and the document disagree:\n  {}",
        problems.join("\n  ")
    );
    // And an unknown path is what "not routed" looks like, so the check above means something.
    let unknown = fx.get("/api/audit-logs-nope", &fx.admin).await;
    assert_eq!(unknown.status, 404);
    assert!(
        serde_json::from_slice::<Value>(&unknown.body).map_or(true, |b| !b["detail"].is_string())
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_serves_the_file() -> TestResult {
    let fx = start(Setup::default()).await?;
    let response = send(fx.addr, "GET", "/api/openapi.json", &[], b"").await;
    assert_eq!(response.status, 200);
    assert_eq!(response.media_type().as_deref(), Some("application/json"));
    let file = std::fs::read(our_path())?;
    assert!(
        response.body == file,
        "GET /api/openapi.json differs from docs/openapi.json byte for byte"
    );
    assert_eq!(response.json(), ours());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Responses against the reference's schemas and ours

/// Events of every shape the ingest format allows.
fn event_shapes() -> Value {
    json!([
        // Minimal.
        {"action_key": "channel_created"},
        // Absent fields sent as null.
        {"action_key": "channel_deleted", "actor_email": null, "meta": null, "occurred_at": null, "ip_address": null},
        // Everything.
        {
            "action_key": "channel_created",
            "action_verb": "created",
            "actor_id": Uuid::new_v4(),
            "actor_email": "jane@acme.example",
            "actor_name": "Jane Doe",
            "actor_type": "user",
            "target_id": Uuid::new_v4(),
            "target_email": "owner@acme.example",
            "target_name": "conda-mirror",
            "target_type": "channel",
            "service_name": "repo",
            "ip_address": "2001:db8::7",
            "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
            "request_id": "req-8f1c",
            "meta": {"channel": {"name": "conda-mirror", "private": true}, "tags": ["a", "b"], "n": 3, "ratio": 0.5, "none": null},
            "occurred_at": "2026-01-15T10:20:30.123456+02:00"
        },
        // A service account.
        {
            "action_key": "token_created",
            "actor_type": "service_account",
            "actor_id": Uuid::new_v4(),
            "actor_name": "ci-bot",
            "ip_address": "10.0.0.7",
            "occurred_at": "2026-01-14T00:00:00Z"
        },
        // The system.
        {"action_key": "policy_updated", "actor_type": "system", "service_name": "scheduler", "meta": {}},
        // Unicode at the limits of the reference's lengths.
        {
            "action_key": "organization_user_added",
            "actor_email": format!("{}@acme.example", "é".repeat(300)),
            "target_type": "t".repeat(100),
            "service_name": "s".repeat(100),
            "action_verb": "added"
        }
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_get_one_validate_against_both_documents() -> TestResult {
    let fx = start(Setup::default()).await?;
    let (rdoc, odoc) = (reference(), ours());
    let (rv, ov) = (Validator::new(&rdoc), Validator::new(&odoc));
    let mut ids = fx.ingest(&event_shapes()).await;
    // A single event, not in an array.
    ids.extend(
        fx.ingest(&json!({"action_key": "channel_deleted", "target_name": "old"}))
            .await,
    );
    assert_eq!(ids.len(), 7);

    let list = fx.get("/api/audit-logs?limit=1000", &fx.admin).await;
    assert_eq!(list.status, 200, "{}", list.text());
    let body = list.json();
    rv.assert_valid(
        "the list (reference)",
        schema_named(&rdoc, "PaginatedResponse_AuditLogResponse_"),
        &body,
    );
    ov.assert_valid(
        "the list (ours)",
        schema_named(&odoc, "PaginatedResponse_AuditLogResponse_"),
        &body,
    );
    assert_documented(&odoc, "/api/audit-logs", "get", &list);
    let listed: BTreeSet<&str> = body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    for id in &ids {
        assert!(
            listed.contains(id.as_str()),
            "the list lacks the ingested event {id}"
        );
    }
    // The service's own records (users added, tokens created) are in the list too.
    assert!(
        listed.len() > ids.len(),
        "expected the service's own records in the list"
    );
    assert_eq!(body["total_count"], json!(listed.len()));
    assert_eq!(body["next_cursor"], Value::Null);

    // Keyset pages, each valid, together the whole list.
    let mut paged = Vec::new();
    let mut next: Option<String> = None;
    for _ in 0..100 {
        let path = match &next {
            Some(cursor) => format!("/api/audit-logs?limit=2&sort=occurred_at&cursor={cursor}"),
            None => "/api/audit-logs?limit=2&sort=occurred_at".to_string(),
        };
        let page = fx.get(&path, &fx.admin).await;
        assert_eq!(page.status, 200, "{}", page.text());
        let page = page.json();
        rv.assert_valid(
            "a page (reference)",
            schema_named(&rdoc, "PaginatedResponse_AuditLogResponse_"),
            &page,
        );
        ov.assert_valid(
            "a page (ours)",
            schema_named(&odoc, "PaginatedResponse_AuditLogResponse_"),
            &page,
        );
        paged.extend(
            page["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(|i| i["id"].as_str().expect("id").to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => next = Some(cursor.to_string()),
            None => break,
        }
    }
    assert_eq!(
        paged.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        listed,
        "keyset pages differ from the list"
    );
    assert_eq!(paged.len(), listed.len(), "keyset pages repeat entries");

    for id in &ids {
        let one = fx.get(&format!("/api/audit-logs/{id}"), &fx.admin).await;
        assert_eq!(one.status, 200, "{}", one.text());
        let body = one.json();
        rv.assert_valid(
            "an entry (reference)",
            schema_named(&rdoc, "AuditLogResponse"),
            &body,
        );
        ov.assert_valid(
            "an entry (ours)",
            schema_named(&odoc, "AuditLogResponse"),
            &body,
        );
        assert_documented(&odoc, "/api/audit-logs/{audit_log_id}", "get", &one);
        assert_eq!(body["id"], json!(id));
    }
    // The full event comes back with every field it was sent with.
    let full = fx
        .get(&format!("/api/audit-logs/{}", ids[2]), &fx.admin)
        .await
        .json();
    for field in [
        "actor_name",
        "target_name",
        "ip_address",
        "user_agent",
        "request_id",
        "actor_email",
        "target_email",
    ] {
        assert!(full[field].is_string(), "{field} is missing from {full}");
    }
    assert_eq!(full["occurred_at"], "2026-01-15T08:20:30.123Z");

    // The extension reads validate against ours.
    for path in [
        "/api/audit-logs/facets",
        "/api/audit-logs/actions",
        "/api/audit-logs/checkpoint",
        "/api/audit-logs/public-key",
    ] {
        let response = fx.get(path, &fx.admin).await;
        assert_eq!(response.status, 200, "{path}: {}", response.text());
        assert_documented(&odoc, path, "get", &response);
    }
    let facets = fx
        .get(
            "/api/audit-logs/facets?q=action_key:channel_created",
            &fx.admin,
        )
        .await
        .json();
    assert_eq!(facets["actions"][0]["action_key"], "channel_created");
    assert_eq!(facets["actions"][0]["count"], 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_validate_against_both_documents() -> TestResult {
    // No runner: jobs stay pending until the test runs them.
    let fx = start(Setup {
        runner: false,
        ..Setup::default()
    })
    .await?;
    let (rdoc, odoc) = (reference(), ours());
    let (rv, ov) = (Validator::new(&rdoc), Validator::new(&odoc));
    fx.ingest(&event_shapes()).await;

    let requests = [
        json!({}),
        json!({"q": ["action_key:channel_created,channel_deleted"], "search_operator": "and", "from_date": "2020-01-01T00:00:00Z", "to_date": null}),
        json!({"format": "csv", "gzip": true}),
        json!({"format": "jsonl", "gzip": false, "q": [], "search_operator": "or"}),
    ];
    let mut jobs = Vec::new();
    for request in &requests {
        let created = fx
            .post_json("/api/audit-logs/export", &fx.admin, request, &[])
            .await;
        assert_eq!(created.status, 200, "{request}: {}", created.text());
        let body = created.json();
        rv.assert_valid(
            "an export job id (reference)",
            response_schema(&rdoc, "/api/audit-logs/export", "post", "200"),
            &body,
        );
        ov.assert_valid(
            "an export job id (ours)",
            response_schema(&odoc, "/api/audit-logs/export", "post", "200"),
            &body,
        );
        jobs.push(body["id"].as_str().expect("id").to_string());
    }
    for (job, request) in jobs.iter().zip(&requests) {
        let status = fx
            .get(&format!("/api/audit-logs/export/{job}"), &fx.admin)
            .await;
        assert_eq!(status.status, 200, "{}", status.text());
        let body = status.json();
        assert_eq!(body["status"], "pending");
        rv.assert_valid(
            "a pending export (reference)",
            schema_named(&rdoc, "ExportJobResponse"),
            &body,
        );
        ov.assert_valid(
            "a pending export (ours)",
            schema_named(&odoc, "ExportJobResponse"),
            &body,
        );
        assert_documented(&odoc, "/api/audit-logs/export/{job_id}", "get", &status);
        assert_eq!(
            body["format"],
            request.get("format").cloned().unwrap_or(json!("jsonl"))
        );
        assert_eq!(
            body["gzip"],
            request.get("gzip").cloned().unwrap_or(json!(false))
        );
        // Not ready: documented 409.
        let early = fx
            .get(&format!("/api/audit-logs/export/{job}/download"), &fx.admin)
            .await;
        assert_eq!(early.status, 409, "{}", early.text());
        assert_documented(
            &odoc,
            "/api/audit-logs/export/{job_id}/download",
            "get",
            &early,
        );
    }

    while fx.state.jobs.run_next().await?.is_some() {}

    for (job, request) in jobs.iter().zip(&requests) {
        let status = fx
            .get(&format!("/api/audit-logs/export/{job}"), &fx.admin)
            .await;
        let body = status.json();
        assert_eq!(body["status"], "completed", "{body}");
        rv.assert_valid(
            "a completed export (reference)",
            schema_named(&rdoc, "ExportJobResponse"),
            &body,
        );
        ov.assert_valid(
            "a completed export (ours)",
            schema_named(&odoc, "ExportJobResponse"),
            &body,
        );
        assert_documented(&odoc, "/api/audit-logs/export/{job_id}", "get", &status);
        for field in [
            "download_url",
            "completed_at",
            "expires_at",
            "total_records",
        ] {
            assert!(
                !body[field].is_null(),
                "a completed export lacks {field}: {body}"
            );
        }
        let url = body["download_url"].as_str().expect("download_url");
        let path = url
            .strip_prefix(&format!("http://{}", fx.addr))
            .unwrap_or_else(|| panic!("download_url {url} is not on this server"));
        assert_eq!(path, format!("/api/audit-logs/export/{job}/download"));

        let file = fx.get(path, &fx.admin).await;
        assert_eq!(file.status, 200, "{}", file.text());
        assert_documented(
            &odoc,
            "/api/audit-logs/export/{job_id}/download",
            "get",
            &file,
        );
        let gzip = request["gzip"] == true;
        let csv = request["format"] == "csv";
        match (csv, gzip) {
            (_, true) => {
                assert_eq!(file.media_type().as_deref(), Some("application/gzip"));
                assert_eq!(&file.body[..2], &[0x1f, 0x8b], "not gzip");
            }
            (true, false) => assert_eq!(file.media_type().as_deref(), Some("text/csv")),
            (false, false) => {
                assert_eq!(file.media_type().as_deref(), Some("application/x-ndjson"));
                let text = file.text();
                let lines: Vec<&str> = text.lines().collect();
                assert!(
                    lines.len() >= 3,
                    "an export holds entries, a checkpoint and a tree checkpoint: {text:?}"
                );
                let (tree, lines) = lines.split_last().expect("lines");
                let tree: Value = serde_json::from_str(tree)?;
                assert_eq!(tree["type"], "tree_checkpoint");
                assert!(tree["note"].is_string(), "{tree}");
                let (checkpoint, entries) = lines.split_last().expect("lines");
                for line in entries {
                    let entry: Value = serde_json::from_str(line)?;
                    rv.assert_valid(
                        "an exported entry (reference)",
                        schema_named(&rdoc, "AuditLogResponse"),
                        &entry,
                    );
                    ov.assert_valid(
                        "an exported entry (ours)",
                        schema_named(&odoc, "AuditLogResponse"),
                        &entry,
                    );
                    assert!(
                        entry["prev_hash"].is_string(),
                        "an exported entry lacks prev_hash: {entry}"
                    );
                    assert!(
                        entry["inclusion_proof"]["hashes"].is_array(),
                        "an exported entry lacks its inclusion proof: {entry}"
                    );
                }
                ov.assert_valid(
                    "the export's checkpoint",
                    schema_named(&odoc, "Checkpoint"),
                    &serde_json::from_str(checkpoint)?,
                );
                assert_eq!(body["total_records"], json!(entries.len()));
            }
        }
    }
    Ok(())
}

/// Every parameter and body field of the reference, sent with an empty value: where the
/// reference's schema refuses `""` (an integer, a date-time), the server answers 422 naming
/// it; an empty value is never taken as an absent one. Where the schema allows `""` (plain
/// strings, `q`'s array of strings) nothing is asserted: the server may still refuse it for
/// what it means (an empty `q` entry has no column). A required body, sent empty, is a 422.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_value_is_refused_wherever_the_reference_refuses_it() -> TestResult {
    let fx = start(Setup::default()).await?;
    let rdoc = reference();
    let validator = Validator::new(&rdoc);
    let refuses_empty = |schema: &Value| {
        let instance = if deref(&rdoc, schema)["type"] == "array" {
            json!([""])
        } else {
            json!("")
        };
        !validator.errors(schema, &instance).is_empty()
    };
    let auth = format!("Bearer {}", fx.admin);
    let mut checked = Vec::new();
    let mut problems = Vec::new();
    for (path, method, op) in operations(&rdoc) {
        let concrete: String = path
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    Uuid::new_v4().to_string()
                } else {
                    s.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for param in parameters(&rdoc, &op) {
            let name = param["name"].as_str().unwrap_or_default();
            if param["in"] != "query" || !refuses_empty(&param["schema"]) {
                continue;
            }
            let r = send(
                fx.addr,
                &method.to_uppercase(),
                &format!("{concrete}?{name}="),
                &[("Authorization", &auth), ("X-Org-Name", "acme")],
                b"",
            )
            .await;
            let locs: Vec<Value> = r.json()["detail"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| d["loc"].clone())
                .collect();
            if r.status != 422 || !locs.contains(&json!(["query", name])) {
                problems.push(format!(
                    "{method} {path}?{name}= answered {} {}",
                    r.status,
                    r.text().chars().take(300).collect::<String>()
                ));
            }
            checked.push(format!("{path}?{name}="));
        }
        let Some(body) = op["requestBody"]["content"]["application/json"]["schema"].as_object()
        else {
            continue;
        };
        let body_schema = deref(&rdoc, &Value::Object(body.clone())).clone();
        if op["requestBody"]["required"] == true {
            let r = send(
                fx.addr,
                &method.to_uppercase(),
                &concrete,
                &[("Authorization", &auth), ("X-Org-Name", "acme")],
                b"",
            )
            .await;
            if r.status != 422 || r.json()["detail"][0]["loc"] != json!(["body"]) {
                problems.push(format!(
                    "{method} {path} without a body answered {} {}",
                    r.status,
                    r.text().chars().take(300).collect::<String>()
                ));
            }
            checked.push(format!("{path} without a body"));
        }
        for (field, schema) in body_schema["properties"].as_object().into_iter().flatten() {
            if !refuses_empty(schema) {
                continue;
            }
            let r = fx
                .post_json(&concrete, &fx.admin, &json!({ field.as_str(): "" }), &[])
                .await;
            let locs: Vec<Value> = r.json()["detail"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| d["loc"].clone())
                .collect();
            if r.status != 422 || !locs.contains(&json!(["body", field])) {
                problems.push(format!(
                    "{method} {path} with {field}: \"\" answered {} {}",
                    r.status,
                    r.text().chars().take(300).collect::<String>()
                ));
            }
            checked.push(format!("{path} body {field}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The reference has integers and dates in the list's query and the export's body.
    for expected in [
        "/api/audit-logs?limit=",
        "/api/audit-logs?offset=",
        "/api/audit-logs?from_date=",
        "/api/audit-logs?to_date=",
        "/api/audit-logs/export without a body",
        "/api/audit-logs/export body from_date",
        "/api/audit-logs/export body to_date",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected} was not checked: {checked:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_validate_against_both_documents() -> TestResult {
    let fx = start(Setup::default()).await?;
    let (rdoc, odoc) = (reference(), ours());
    let (rv, ov) = (Validator::new(&rdoc), Validator::new(&odoc));
    let check = |what: &str, response: &Response, path: &str, method: &str| {
        assert_eq!(response.status, 422, "{what}: {}", response.text());
        let body = response.json();
        rv.assert_valid(what, schema_named(&rdoc, "HTTPValidationError"), &body);
        ov.assert_valid(what, schema_named(&odoc, "HTTPValidationError"), &body);
        assert_documented(&odoc, path, method, response);
        body
    };

    let list = fx.get("/api/audit-logs?limit=0&offset=-1&from_date=yesterday&q=colour:red&search_operator=xor&sort=actor", &fx.admin).await;
    let body = check("a bad list query", &list, "/api/audit-logs", "get");
    let locs: BTreeSet<String> = body["detail"]
        .as_array()
        .expect("detail")
        .iter()
        .map(|d| d["loc"][1].as_str().unwrap_or("").to_string())
        .collect();
    for name in [
        "limit",
        "offset",
        "from_date",
        "q",
        "search_operator",
        "sort",
    ] {
        assert!(
            locs.contains(name),
            "no problem reported for {name}: {body}"
        );
    }
    assert!(body["detail"]
        .as_array()
        .expect("detail")
        .iter()
        .all(|d| d["loc"][0] == "query"));

    let list = fx.get("/api/audit-logs?limit=1001", &fx.admin).await;
    check(
        "limit above the reference's maximum",
        &list,
        "/api/audit-logs",
        "get",
    );

    let one = fx.get("/api/audit-logs/not-a-uuid", &fx.admin).await;
    let body = check(
        "a bad entry id",
        &one,
        "/api/audit-logs/{audit_log_id}",
        "get",
    );
    assert_eq!(body["detail"][0]["loc"], json!(["path", "audit_log_id"]));

    let job = fx.get("/api/audit-logs/export/not-a-uuid", &fx.admin).await;
    check(
        "a bad job id",
        &job,
        "/api/audit-logs/export/{job_id}",
        "get",
    );

    let export = fx
        .post_json(
            "/api/audit-logs/export",
            &fx.admin,
            &json!({"format": "xml", "from_date": "soon", "colour": 1}),
            &[],
        )
        .await;
    let body = check(
        "a bad export request",
        &export,
        "/api/audit-logs/export",
        "post",
    );
    let locs: BTreeSet<String> = body["detail"]
        .as_array()
        .expect("detail")
        .iter()
        .map(|d| d["loc"][1].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        locs,
        ["colour", "format", "from_date"].map(String::from).into()
    );

    // Each problem at ["body", index, field].
    for (events, loc) in [
        (
            json!([{"action_key": "channel_created"}, {"action_key": "channel_created", "actor_email": "not an email"}]),
            json!(["body", 1, "actor_email"]),
        ),
        (
            json!([{"action_key": "channel_created"}, {"action_key": "channel_created"}, {"action_key": "channel_created", "actor_typo": "x"}]),
            json!(["body", 2, "actor_typo"]),
        ),
        (
            json!({"action_key": "channel_created", "occurred_at": "yesterday"}),
            json!(["body", 0, "occurred_at"]),
        ),
        (
            json!({"actor_email": "a@b.c"}),
            json!(["body", 0, "action_key"]),
        ),
    ] {
        let ingest = fx
            .post_json("/api/audit-logs/events", &fx.ingest, &events, &[])
            .await;
        let body = check("a bad batch", &ingest, "/api/audit-logs/events", "post");
        let locs: Vec<&Value> = body["detail"]
            .as_array()
            .expect("detail")
            .iter()
            .map(|d| &d["loc"])
            .collect();
        assert!(locs.contains(&&loc), "{loc} is not reported: {body}");
    }
    // Nothing of the batch was stored.
    let list = fx
        .get("/api/audit-logs?q=action_key:channel_created", &fx.admin)
        .await
        .json();
    assert_eq!(list["total_count"], 0);
    // The refused events are counted, as documented.
    let rejections = fx.get("/api/audit-logs/rejections", &fx.admin).await;
    assert_documented(&odoc, "/api/audit-logs/rejections", "get", &rejections);
    assert_eq!(
        rejections.json()["items"][0]["action_key"],
        "channel_created"
    );

    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"action_key": "channel_created"}))
        .collect();
    let ingest = fx
        .post_json(
            "/api/audit-logs/events",
            &fx.ingest,
            &Value::Array(too_many),
            &[],
        )
        .await;
    check("a batch of 1001", &ingest, "/api/audit-logs/events", "post");
    let ingest = fx
        .post_json("/api/audit-logs/events", &fx.ingest, &json!([]), &[])
        .await;
    check("an empty batch", &ingest, "/api/audit-logs/events", "post");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_status_is_documented_and_shaped_as_http_error() -> TestResult {
    let fx = start(Setup::default()).await?;
    let doc = ours();
    let http_error = schema_named(&doc, "HTTPError");
    let v = Validator::new(&doc);
    let expect = |what: &str, response: &Response, status: u16, path: &str, method: &str| {
        assert_eq!(response.status, status, "{what}: {}", response.text());
        v.assert_valid(what, http_error, &response.json());
        assert_documented(&doc, path, method, response);
    };

    // 400: an API version other than v1.
    let auth = format!("Bearer {}", fx.admin);
    let r = send(
        fx.addr,
        "GET",
        "/api/audit-logs",
        &[("Authorization", &auth), ("X-API-Version", "v2")],
        b"",
    )
    .await;
    expect("X-API-Version v2", &r, 400, "/api/audit-logs", "get");

    // 401: no token, a bad token.
    let r = send(fx.addr, "GET", "/api/audit-logs", &[], b"").await;
    expect("no token", &r, 401, "/api/audit-logs", "get");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = fx.get("/api/audit-logs/checkpoint", "al_nope").await;
    expect("a bad token", &r, 401, "/api/audit-logs/checkpoint", "get");

    // 403: a member, an ingest key reading, an admin token ingesting, another organization.
    let r = fx.get("/api/audit-logs", &fx.member).await;
    expect("a member", &r, 403, "/api/audit-logs", "get");
    let r = fx.get("/api/audit-logs/facets", &fx.ingest).await;
    expect(
        "an ingest key reading",
        &r,
        403,
        "/api/audit-logs/facets",
        "get",
    );
    let r = fx
        .post_json(
            "/api/audit-logs/events",
            &fx.admin,
            &json!({"action_key": "channel_created"}),
            &[],
        )
        .await;
    expect(
        "a user ingesting",
        &r,
        403,
        "/api/audit-logs/events",
        "post",
    );
    let other = fx
        .state
        .service
        .create_org(
            &auditlog_service::grant::Operator::at_the_command_line(),
            NewOrg {
                name: "other".into(),
                display_name: "Other".into(),
                audit_logs_enabled: false,
            },
        )
        .await?;
    let r = send(
        fx.addr,
        "GET",
        "/api/audit-logs",
        &[("Authorization", &auth), ("X-Org-Name", "other")],
        b"",
    )
    .await;
    expect("another organization", &r, 403, "/api/audit-logs", "get");
    let r = send(
        fx.addr,
        "POST",
        "/api/audit-logs/events",
        &[
            ("Authorization", &format!("Bearer {}", fx.ingest)),
            ("X-Org-Name", &other.id.to_string()),
        ],
        b"{\"action_key\":\"channel_created\"}",
    )
    .await;
    expect(
        "an ingest key writing another organization",
        &r,
        403,
        "/api/audit-logs/events",
        "post",
    );
    // Not enrolled in early access.
    let operator = Actor::operator();
    let outsider = fx
        .state
        .service
        .add_user(&other, "admin@other.example", None, Role::Admin, &operator)
        .await?;
    let (_, outsider_token) = fx
        .state
        .service
        .create_api_token(&other, &outsider, "t", None, &operator)
        .await?;
    let r = send(
        fx.addr,
        "GET",
        "/api/audit-logs",
        &[
            ("Authorization", &format!("Bearer {outsider_token}")),
            ("X-Org-Name", "other"),
        ],
        b"",
    )
    .await;
    expect(
        "an organization not enrolled",
        &r,
        403,
        "/api/audit-logs",
        "get",
    );
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap_or("")
            .contains("early access"),
        "{}",
        r.text()
    );

    // 404: an unknown entry, job, organization.
    let r = fx
        .get(&format!("/api/audit-logs/{}", Uuid::new_v4()), &fx.admin)
        .await;
    expect(
        "an unknown entry",
        &r,
        404,
        "/api/audit-logs/{audit_log_id}",
        "get",
    );
    let r = fx
        .get(
            &format!("/api/audit-logs/export/{}", Uuid::new_v4()),
            &fx.admin,
        )
        .await;
    expect(
        "an unknown job",
        &r,
        404,
        "/api/audit-logs/export/{job_id}",
        "get",
    );
    let r = fx
        .get(
            &format!("/api/audit-logs/export/{}/download", Uuid::new_v4()),
            &fx.admin,
        )
        .await;
    expect(
        "an unknown job's file",
        &r,
        404,
        "/api/audit-logs/export/{job_id}/download",
        "get",
    );
    let platform = format!("Bearer {}", fx.platform_ingest);
    let r = send(
        fx.addr,
        "POST",
        "/api/audit-logs/events",
        &[("Authorization", &platform), ("X-Org-Name", "nope")],
        b"{\"action_key\":\"channel_created\"}",
    )
    .await;
    expect(
        "ingest into an unknown organization",
        &r,
        404,
        "/api/audit-logs/events",
        "post",
    );

    // 409: an idempotency key reused with another body; a replay is a 201.
    let key = [("Idempotency-Key", "batch-1")];
    let first = fx
        .post_json(
            "/api/audit-logs/events",
            &fx.ingest,
            &json!({"action_key": "channel_created"}),
            &key,
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text());
    let replay = fx
        .post_json(
            "/api/audit-logs/events",
            &fx.ingest,
            &json!({"action_key": "channel_created"}),
            &key,
        )
        .await;
    assert_eq!(replay.status, 201, "{}", replay.text());
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.json(), first.json());
    assert_documented(&doc, "/api/audit-logs/events", "post", &replay);
    let r = fx
        .post_json(
            "/api/audit-logs/events",
            &fx.ingest,
            &json!({"action_key": "channel_deleted"}),
            &key,
        )
        .await;
    expect(
        "an idempotency key reused",
        &r,
        409,
        "/api/audit-logs/events",
        "post",
    );

    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_get_413_as_http_error() -> TestResult {
    let fx = start(Setup {
        configure: |c| c.body_limit = 64 * 1024,
        ..Setup::default()
    })
    .await?;
    let doc = ours();
    let http_error = schema_named(&doc, "HTTPError");
    let v = Validator::new(&doc);
    let expect = |what: &str, response: &Response, status: u16, path: &str, method: &str| {
        assert_eq!(response.status, status, "{what}: {}", response.text());
        v.assert_valid(what, http_error, &response.json());
        assert_documented(&doc, path, method, response);
    };
    // 413: a body over the limit.
    let big = json!({"action_key": "channel_created", "meta": {"pad": "x".repeat(100 * 1024)}});
    let r = fx
        .post_json("/api/audit-logs/events", &fx.ingest, &big, &[])
        .await;
    expect(
        "a body over the limit",
        &r,
        413,
        "/api/audit-logs/events",
        "post",
    );
    let r = fx
        .post_json(
            "/api/audit-logs/export",
            &fx.admin,
            &json!({"q": ["x".repeat(100 * 1024)]}),
            &[],
        )
        .await;
    expect(
        "an export request over the limit",
        &r,
        413,
        "/api/audit-logs/export",
        "post",
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_requests_get_429_with_retry_after() -> TestResult {
    let fx = start(Setup {
        configure: |c| {
            c.rate_limit_per_second = 1;
            c.rate_limit_burst = 1;
        },
        ..Setup::default()
    })
    .await?;
    let doc = ours();
    let first = fx.get("/api/audit-logs/actions", &fx.admin).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let second = fx.get("/api/audit-logs/actions", &fx.admin).await;
    assert_eq!(second.status, 429, "{}", second.text());
    Validator::new(&doc).assert_valid("a 429", schema_named(&doc, "HTTPError"), &second.json());
    assert_documented(&doc, "/api/audit-logs/actions", "get", &second);
    let wait: u64 = second.header("retry-after").expect("Retry-After").parse()?;
    assert!(wait >= 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_answers_as_documented() -> TestResult {
    let fx = start(Setup::default()).await?;
    let doc = ours();
    let path = "/api/iam/token";
    let form = format!(
        "grant_type=client_credentials&client_id={}&client_secret={}",
        fx.client_id, fx.client_secret
    );
    let form_type = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = send(fx.addr, "POST", path, &form_type, form.as_bytes()).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_documented(&doc, path, "post", &r);
    let token = r.json();
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["expires_in"], 900);
    // The access token reads its organization's log without naming it.
    let auth = format!(
        "Bearer {}",
        token["access_token"].as_str().expect("access_token")
    );
    let list = send(
        fx.addr,
        "GET",
        "/api/audit-logs",
        &[("Authorization", &auth)],
        b"",
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.text());
    assert_documented(&doc, "/api/audit-logs", "get", &list);
    assert_eq!(list.json()["items"][0]["org_id"], json!(fx.org.id));

    let as_json = json!({"grant_type": "client_credentials", "client_id": fx.client_id, "client_secret": fx.client_secret});
    let r = send(
        fx.addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        as_json.to_string().as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_documented(&doc, path, "post", &r);

    let wrong = format!(
        "grant_type=client_credentials&client_id={}&client_secret=nope",
        fx.client_id
    );
    let r = send(fx.addr, "POST", path, &form_type, wrong.as_bytes()).await;
    assert_eq!(r.status, 401, "{}", r.text());
    assert_documented(&doc, path, "post", &r);
    let r = send(
        fx.addr,
        "POST",
        path,
        &form_type,
        b"grant_type=password&client_id=a&client_secret=b",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_documented(&doc, path, "post", &r);
    Ok(())
}
