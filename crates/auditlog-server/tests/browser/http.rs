//! A minimal HTTP/1.1 client over a TCP stream: one request per connection. Two users: the
//! WebDriver client (JSON to chromedriver) and the tests' own requests to the server (minting
//! a sign-in link, downloading an export with the browser's session cookie).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest any one request may take before the test fails instead of hanging.
const TIMEOUT: Duration = Duration::from_secs(60);

/// A response: status, headers (names lowercased) and the whole body (chunked decoded).
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that (lowercase) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request to `host` (`127.0.0.1:port`) and reads the whole response.
pub async fn request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response> {
    let exchange = async {
        let mut stream = TcpStream::connect(host)
            .await
            .with_context(|| format!("connect to {host}"))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(body).await?;
        // Read until the body is complete by its length (or its last chunk), not until the
        // peer closes: chromedriver keeps the connection open after `Connection: close`.
        let mut raw = Vec::new();
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            if let Some(response) = parse(&raw)? {
                return Ok(response);
            }
            let n = stream.read(&mut buffer).await?;
            if n == 0 {
                return parse_closed(&raw);
            }
            raw.extend_from_slice(&buffer[..n]);
        }
    };
    tokio::time::timeout(TIMEOUT, exchange)
        .await
        .with_context(|| format!("{method} {path} on {host} took longer than {TIMEOUT:?}"))?
}

/// The response once `raw` holds all of it by its framing; `None` while more is to come.
fn parse(raw: &[u8]) -> Result<Option<Response>> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&raw[..end]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
    let length = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse::<usize>().ok());
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(length) = length {
        (rest.len() >= length).then(|| rest[..length].to_vec())
    } else if status == 204 || status == 304 || (100..200).contains(&status) {
        Some(Vec::new())
    } else {
        // Delimited by the end of the connection.
        None
    };
    Ok(body.map(|body| Response {
        status,
        headers,
        body,
    }))
}

/// The response of a connection the peer closed: the body is whatever came.
fn parse_closed(raw: &[u8]) -> Result<Response> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!(
            "the connection closed after {} bytes, before the response head",
            raw.len()
        );
    };
    if let Some(response) = parse(raw)? {
        return Ok(response);
    }
    let mut with_length = raw[..end].to_vec();
    let body = &raw[end + 4..];
    with_length.extend_from_slice(format!("\r\ncontent-length: {}\r\n\r\n", body.len()).as_bytes());
    with_length.extend_from_slice(body);
    parse(&with_length)?.context("the response is incomplete")
}

/// A chunked body once its last chunk has come; `None` before.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}
