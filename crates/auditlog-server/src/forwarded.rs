//! The client's address behind reverse proxies: `Forwarded` (RFC 7239, its `for=`) and
//! `X-Forwarded-For` are believed only when the direct peer is a configured trusted proxy,
//! and then read from the right, skipping the trusted proxies' own addresses (the
//! rightmost-untrusted rule). Whatever a client writes into those headers itself lies to the
//! left of what its proxies append, so it is never reached unless the client is itself in a
//! trusted range.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;

/// An IP address or a CIDR range of them (`10.0.0.0/8`, `127.0.0.1`, `2001:db8::/32`), as
/// `--trusted-proxy` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    /// The first address of the range: the given address with its host bits cleared.
    network: IpAddr,
    /// How many leading bits an address must share with `network`.
    prefix_len: u8,
}

impl IpRange {
    /// Whether `address` lies in the range. An IPv4 address written as IPv6
    /// (`::ffff:192.0.2.1`) is the IPv4 address it stands for.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = prefix_mask_v4(self.prefix_len);
                u32::from(address) & mask == u32::from(network)
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = prefix_mask_v6(self.prefix_len);
                u128::from(address) & mask == u128::from(network)
            }
            _ => false,
        }
    }
}

impl FromStr for IpRange {
    type Err = InvalidIpRange;

    fn from_str(text: &str) -> Result<IpRange, InvalidIpRange> {
        let value = text.trim();
        let invalid = |reason: &str| InvalidIpRange {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        let (address, prefix) = match value.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (value, None),
        };
        if address.is_empty() {
            return Err(invalid("expected an IP address such as 10.0.0.0/8 or ::1"));
        }
        let address: IpAddr = address.parse().map_err(|_| {
            invalid("expected an IP address such as 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32")
        })?;
        // A range written as IPv4-mapped IPv6 means the IPv4 addresses, which is how
        // `contains` sees them too.
        let (address, mapped_bits) = match address {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), 96),
                None => (address, 0),
            },
            IpAddr::V4(_) => (address, 0),
        };
        let max_len: u8 = if address.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => max_len,
            Some(prefix) => {
                let digits_only = !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_digit());
                let len = prefix
                    .parse::<u8>()
                    .ok()
                    .filter(|_| digits_only)
                    .and_then(|len| len.checked_sub(mapped_bits))
                    .filter(|len| *len <= max_len);
                len.ok_or_else(|| {
                    invalid(if address.is_ipv4() {
                        "the prefix length of an IPv4 range is a number from 0 to 32"
                    } else {
                        "the prefix length of an IPv6 range is a number from 0 to 128"
                    })
                })?
            }
        };
        let network = match address {
            IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & prefix_mask_v4(prefix_len)).into()),
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & prefix_mask_v6(prefix_len)).into()),
        };
        Ok(IpRange {
            network,
            prefix_len,
        })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

/// A `--trusted-proxy` value that is not an address or a range, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidIpRange {
    /// The value as given.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for InvalidIpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a trusted proxy address or CIDR range: {}",
            self.value, self.reason
        )
    }
}

impl std::error::Error for InvalidIpRange {}

fn prefix_mask_v4(prefix_len: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0)
}

fn prefix_mask_v6(prefix_len: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix_len))
        .unwrap_or(0)
}

/// The address of the client a request comes from: the TCP peer's, unless the peer is one
/// of `trusted_proxies`; then the rightmost address of `Forwarded` or `X-Forwarded-For` that
/// is not itself a trusted proxy (or, when every address listed is one, the leftmost).
///
/// A header this cannot use (an address it must read that is not one, `for=unknown`, an
/// obfuscated identifier) leaves the peer's address: a bad header never fails a request.
/// When a trusted peer sends both headers and they name different clients, neither is
/// believed either: a proxy that writes one of them usually passes the other through from the
/// client untouched, so one of the two may be the client's own invention.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpRange]) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted_proxies) {
        return peer;
    }
    let from_forwarded = joined_header(headers, "forwarded").map(|value| {
        value.and_then(|value| {
            let nodes = forwarded_for_nodes(&value)?;
            rightmost_untrusted(nodes.iter().map(String::as_str), trusted_proxies)
        })
    });
    let from_x_forwarded_for = joined_header(headers, "x-forwarded-for").map(|value| {
        value.and_then(|value| rightmost_untrusted(value.split(','), trusted_proxies))
    });
    // `None`: the header is absent; `Some(None)`: present but unusable.
    match (from_forwarded, from_x_forwarded_for) {
        (None, None) => peer,
        (Some(found), None) | (None, Some(found)) => found.unwrap_or(peer),
        (Some(Some(a)), Some(Some(b))) if a == b => a,
        (Some(_), Some(_)) => peer,
    }
}

fn is_trusted(address: IpAddr, trusted_proxies: &[IpRange]) -> bool {
    trusted_proxies.iter().any(|range| range.contains(address))
}

/// Every line of header `name`, joined with commas as HTTP defines a repeated list header
/// (RFC 9110 §5.3): `None` when absent, `Some(None)` when a line is not text.
fn joined_header(headers: &HeaderMap, name: &str) -> Option<Option<String>> {
    let mut lines = headers.get_all(name).iter().peekable();
    lines.peek()?;
    let mut joined = String::new();
    for line in lines {
        let Ok(text) = line.to_str() else {
            return Some(None);
        };
        if !joined.is_empty() {
            joined.push(',');
        }
        joined.push_str(text);
    }
    Some(Some(joined))
}

/// Walks `nodes` (nearest hop last) from the right: the first address that is not a trusted
/// proxy; the leftmost when all are. `None` when a node it must read is not an address.
fn rightmost_untrusted<'a>(
    nodes: impl DoubleEndedIterator<Item = &'a str>,
    trusted_proxies: &[IpRange],
) -> Option<IpAddr> {
    let mut farthest = None;
    for node in nodes.rev() {
        let address = node_address(node.trim())?;
        if !is_trusted(address, trusted_proxies) {
            return Some(address);
        }
        farthest = Some(address);
    }
    farthest
}

/// The address of a node as proxies write it: `192.0.2.7`, `192.0.2.7:4711`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:4711`.
fn node_address(node: &str) -> Option<IpAddr> {
    if let Ok(address) = node.parse::<IpAddr>() {
        return Some(address.to_canonical());
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (address, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return address
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|v6| IpAddr::V6(v6).to_canonical());
    }
    let (address, port) = node.rsplit_once(':')?;
    if !is_port(port) {
        return None;
    }
    address.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A port as RFC 7239 §6 allows it: digits, or an obfuscated `_` identifier.
fn is_port(port: &str) -> bool {
    (!port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()))
        || (port.len() > 1
            && port.starts_with('_')
            && port[1..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-'))
}

/// The `for=` node of each element of a `Forwarded` value, in order; `None` when an element
/// has none, has two, or a quoted string does not end (the value is then not usable at all,
/// since where one element ends is no longer certain).
fn forwarded_for_nodes(value: &str) -> Option<Vec<String>> {
    let mut nodes = Vec::new();
    for element in split_outside_quotes(value, ',')? {
        let mut node = None;
        for pair in split_outside_quotes(element, ';')? {
            let pair = pair.trim();
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=')?;
            if !name.trim().eq_ignore_ascii_case("for") {
                continue;
            }
            if node.is_some() {
                return None;
            }
            node = Some(unquote(value.trim())?);
        }
        nodes.push(node?);
    }
    Some(nodes)
}

/// `text` split at each `separator` that is not inside a quoted string.
fn split_outside_quotes(text: &str, separator: char) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (idx, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if quoted && c == '\\' {
            escaped = true;
        } else if c == '"' {
            quoted = !quoted;
        } else if c == separator && !quoted {
            parts.push(&text[start..idx]);
            start = idx + c.len_utf8();
        }
    }
    if quoted {
        return None;
    }
    parts.push(&text[start..]);
    Some(parts)
}

/// A token as it is, or a quoted string without its quotes and escapes.
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_string());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(values: &[&str]) -> Vec<IpRange> {
        values.iter().map(|v| v.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn ranges_parse_and_match_both_families() {
        let eight: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(eight.contains(ip("10.255.0.1")));
        assert!(!eight.contains(ip("11.0.0.1")));
        assert!(eight.contains(ip("::ffff:10.1.2.3")), "IPv4-mapped IPv6");
        assert!(
            !eight.contains(ip("::a00:1")),
            "not mapped: another address"
        );
        let host: IpRange = " 127.0.0.1 ".parse().unwrap();
        assert_eq!(host.to_string(), "127.0.0.1/32");
        assert!(host.contains(ip("127.0.0.1")) && !host.contains(ip("127.0.0.2")));
        let v6: IpRange = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let loopback: IpRange = "::1".parse().unwrap();
        assert_eq!(loopback.to_string(), "::1/128");
        assert!(loopback.contains(ip("::1")) && !loopback.contains(ip("127.0.0.1")));
        // Host bits are cleared, as `ip route` and Go's ParseCIDR read them.
        assert_eq!(
            "192.168.1.77/16".parse::<IpRange>().unwrap().to_string(),
            "192.168.0.0/16"
        );
        let everything: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(everything.contains(ip("203.0.113.9")) && !everything.contains(ip("::2")));
        let all_v6: IpRange = "::/0".parse().unwrap();
        assert!(all_v6.contains(ip("2001:db8::1")));
        let mapped: IpRange = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(mapped.to_string(), "10.0.0.0/8");
    }

    #[test]
    fn a_bad_range_is_refused_naming_it() {
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0.0/8/8",
            "10.0.0/8",
            "localhost",
            "/8",
            "10.0.0.0-10.0.0.255",
            "::ffff:10.0.0.0/95",
        ] {
            let error = bad.parse::<IpRange>().unwrap_err();
            assert_eq!(error.value, bad.trim());
            assert!(
                error.to_string().contains(&format!("{:?}", bad.trim())),
                "{error}"
            );
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_the_headers_say() {
        let trusted = ranges(&["10.0.0.0/8"]);
        let spoofed = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(
            client_address(ip("198.51.100.1"), &spoofed, &trusted),
            ip("198.51.100.1")
        );
        // Nobody is trusted by default.
        assert_eq!(
            client_address(ip("127.0.0.1"), &spoofed, &[]),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_trusted_peer_is_read_from_the_right() {
        let trusted = ranges(&["10.0.0.0/8", "127.0.0.1", "2001:db8:cafe::/48"]);
        let peer = ip("127.0.0.1");
        for (header, value, client) in [
            ("x-forwarded-for", "203.0.113.9", "203.0.113.9"),
            ("x-forwarded-for", "203.0.113.9, 10.0.0.2", "203.0.113.9"),
            // The client's own claim lies left of the address its proxy saw.
            (
                "x-forwarded-for",
                "1.2.3.4, 203.0.113.9, 10.0.0.2",
                "203.0.113.9",
            ),
            // What lies left of the answer is never read.
            ("x-forwarded-for", "garbage, 203.0.113.9", "203.0.113.9"),
            ("x-forwarded-for", "203.0.113.9:51234", "203.0.113.9"),
            ("x-forwarded-for", "2001:db8::7", "2001:db8::7"),
            ("x-forwarded-for", "[2001:db8::7]:443", "2001:db8::7"),
            ("x-forwarded-for", "::ffff:203.0.113.9", "203.0.113.9"),
            (
                "x-forwarded-for",
                "2001:db8::7, 2001:db8:cafe::1",
                "2001:db8::7",
            ),
            // Every hop a trusted proxy: the farthest.
            ("x-forwarded-for", "10.0.0.9, 10.0.0.2", "10.0.0.9"),
            ("forwarded", "for=203.0.113.9", "203.0.113.9"),
            ("forwarded", "For=\"203.0.113.9:4711\"", "203.0.113.9"),
            ("forwarded", "for=\"[2001:db8::7]:4711\"", "2001:db8::7"),
            (
                "forwarded",
                "for=1.2.3.4, for=203.0.113.9;proto=https;by=10.0.0.2, for=10.0.0.2",
                "203.0.113.9",
            ),
            (
                "forwarded",
                "proto=https;for=203.0.113.9;host=\"a,b;c\"",
                "203.0.113.9",
            ),
        ] {
            assert_eq!(
                client_address(peer, &headers(&[(header, value)]), &trusted),
                ip(client),
                "{header}: {value}"
            );
        }
        // Several lines of one header are one list, in order.
        let lines = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        assert_eq!(client_address(peer, &lines, &trusted), ip("203.0.113.9"));
        // The peer may reach us over IPv6 as a mapped IPv4 address.
        let header = headers(&[("x-forwarded-for", "203.0.113.9")]);
        assert_eq!(
            client_address(ip("::ffff:127.0.0.1"), &header, &trusted),
            ip("203.0.113.9")
        );
        // Both headers, agreeing.
        let both = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=203.0.113.9"),
        ]);
        assert_eq!(client_address(peer, &both, &trusted), ip("203.0.113.9"));
    }

    #[test]
    fn an_unusable_header_from_a_trusted_peer_leaves_the_peer() {
        let trusted = ranges(&["127.0.0.1", "10.0.0.0/8"]);
        let peer = ip("127.0.0.1");
        for (header, value) in [
            ("x-forwarded-for", ""),
            ("x-forwarded-for", "not-an-address"),
            ("x-forwarded-for", "203.0.113.9, "),
            ("x-forwarded-for", "203.0.113.9, garbage, 10.0.0.2"),
            ("x-forwarded-for", "203.0.113.9:port"),
            ("x-forwarded-for", "[203.0.113.9]"),
            ("x-forwarded-for", "[2001:db8::7"),
            ("forwarded", "for=unknown"),
            ("forwarded", "for=_hidden"),
            ("forwarded", "proto=https"),
            ("forwarded", "for=203.0.113.9;for=198.51.100.1"),
            ("forwarded", "for=\"203.0.113.9"),
            ("forwarded", "for"),
            ("forwarded", "for=203.0.113.9,"),
        ] {
            assert_eq!(
                client_address(peer, &headers(&[(header, value)]), &trusted),
                peer,
                "{header}: {value:?}"
            );
        }
        // Two headers naming different clients: neither.
        let disagree = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("forwarded", "for=198.51.100.1"),
        ]);
        assert_eq!(client_address(peer, &disagree, &trusted), peer);
        // A header line that is not text.
        let mut binary = HeaderMap::new();
        binary.insert(
            "x-forwarded-for",
            axum::http::HeaderValue::from_bytes(b"203.0.113.9\xff").unwrap(),
        );
        assert_eq!(client_address(peer, &binary, &trusted), peer);
    }
}
