//! A small HTTP/1.1 client over plain TCP, enough for tests and benchmarks to see exactly
//! what a client on the network sees (status, headers, bytes) without a client crate.
//!
//! - [`send`]: one [`Request`] on a connection of its own (`Connection: close`).
//! - [`send_blocking`]: the same for tests without a runtime (those that drive processes).
//! - [`Connection`]: a keep-alive connection that sends ready-made requests one at a time
//!   and reads exactly one response for each, whole or streamed to a sink; it reconnects
//!   when the server closed the previous connection. The benchmarks use it.
//!
//! A response is read until its framing says it is complete (`Content-Length`, the last
//! chunk, or no body for 1xx/204/304 and `HEAD`), or until the server closes when it has no
//! framing; never until the server closes when it does not have to (chromedriver keeps the
//! connection open after `Connection: close`). The request is written while the response is
//! read, so that a server that answers before reading the whole body (413) is seen answering,
//! not as a failed write.

use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// How long a request sent with [`send`] may take unless [`Request::timeout`] says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The most a response's status line and headers may take.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Request bodies sent with `Transfer-Encoding: chunked` go in chunks of this size.
const CHUNK_BYTES: usize = 8 * 1024;

/// One request: method, path (with its query string), headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    chunked: bool,
    timeout: Duration,
}

impl Request {
    /// `method path`, no headers, no body.
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_string(),
            path: path.to_string(),
            headers: Vec::new(),
            body: Vec::new(),
            chunked: false,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Request {
        Request::new("POST", path)
    }

    /// Adds a header (several of one name are sent as given).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Adds each header.
    pub fn headers(self, headers: &[(&str, &str)]) -> Request {
        headers
            .iter()
            .fold(self, |request, (name, value)| request.header(name, value))
    }

    /// `Authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Request {
        self.header("Authorization", &format!("Bearer {token}"))
    }

    /// A JSON body with its `Content-Type`.
    pub fn json(self, value: &Value) -> Request {
        self.body("application/json", value.to_string())
    }

    /// A body with its `Content-Type`.
    pub fn body(self, content_type: &str, body: impl Into<Vec<u8>>) -> Request {
        self.raw_body(body).header("Content-Type", content_type)
    }

    /// A body without a `Content-Type` (give one with [`Request::header`] if wanted).
    pub fn raw_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// Sends the body with `Transfer-Encoding: chunked` instead of a `Content-Length`.
    pub fn chunked(mut self) -> Request {
        self.chunked = true;
        self
    }

    /// How long [`send`] waits for the whole exchange before failing with `TimedOut`.
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = timeout;
        self
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The path with its query string.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The complete request for `host` as bytes, for a keep-alive [`Connection`]
    /// (keep-alive is HTTP/1.1's default, so no `Connection` header is added).
    pub fn encode(&self, host: &str) -> Vec<u8> {
        self.encode_with(host, None)
    }

    fn encode_with(&self, host: &str, connection: Option<&str>) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\nHost: {host}\r\n", self.method, self.path);
        if let Some(connection) = connection {
            let _ = write!(head, "Connection: {connection}\r\n");
        }
        if self.chunked {
            head.push_str("Transfer-Encoding: chunked\r\n");
        } else {
            let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        }
        for (name, value) in &self.headers {
            let _ = write!(head, "{name}: {value}\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if self.chunked {
            for chunk in self.body.chunks(CHUNK_BYTES) {
                bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                bytes.extend_from_slice(chunk);
                bytes.extend_from_slice(b"\r\n");
            }
            bytes.extend_from_slice(b"0\r\n\r\n");
        } else {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// A response: status, headers (names lowercased, in order) and the body, de-chunked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers in the order received, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body bytes (empty when it was streamed to a sink).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The media type of `Content-Type`, without parameters, lowercased.
    pub fn media_type(&self) -> Option<String> {
        self.header("content-type").map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics showing the status and body when it is not.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// The `loc` arrays of a 422 answer's `detail` (auditlog's validation error shape, which
    /// is the reference API's), as JSON; panics when the body has none.
    #[track_caller]
    pub fn locs(&self) -> Vec<Vec<Value>> {
        let body = self.json();
        body["detail"]
            .as_array()
            .unwrap_or_else(|| panic!("no detail array in {body}"))
            .iter()
            .map(|detail| {
                detail["loc"]
                    .as_array()
                    .unwrap_or_else(|| panic!("no loc in {detail}"))
                    .clone()
            })
            .collect()
    }

    /// Panics, showing the body, unless the status is `status`.
    #[track_caller]
    pub fn expect(self, status: u16) -> Response {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }
}

/// Sends `request` to `addr` on a connection of its own (`Connection: close`) and reads the
/// whole response. Transport failures (refused, reset before a complete response, timeout)
/// are errors.
pub async fn send(addr: SocketAddr, request: &Request) -> io::Result<Response> {
    let bytes = request.encode_with(&addr.to_string(), Some("close"));
    let no_body = request.method.eq_ignore_ascii_case("HEAD");
    let exchange = async {
        let (reader, mut writer) = TcpStream::connect(addr).await?.into_split();
        let mut reader = BufReader::new(reader);
        let mut body = Vec::new();
        let (mut response, _) = exchange(&mut reader, &mut writer, &bytes, no_body, &mut |chunk| {
            body.extend_from_slice(chunk)
        })
        .await?;
        response.body = body;
        Ok(response)
    };
    tokio::time::timeout(request.timeout, exchange)
        .await
        .map_err(|_| {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "{} {}: no complete answer within {:?}",
                    request.method, request.path, request.timeout
                ),
            )
        })?
}

/// [`send`] for code without a runtime: runs it on a small runtime of its own. Must not be
/// called from inside a runtime.
pub fn send_blocking(addr: SocketAddr, request: &Request) -> io::Result<Response> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(send(addr, request))
}

/// A keep-alive connection: one request at a time, exactly one response read for each.
#[derive(Debug)]
pub struct Connection {
    addr: SocketAddr,
    stream: Option<(BufReader<OwnedReadHalf>, OwnedWriteHalf)>,
}

impl Connection {
    /// Connects to `addr`.
    pub async fn open(addr: SocketAddr) -> io::Result<Connection> {
        let mut connection = Connection { addr, stream: None };
        connection.connect().await?;
        Ok(connection)
    }

    async fn connect(&mut self) -> io::Result<()> {
        let stream = TcpStream::connect(self.addr).await?;
        // Requests are written whole; waiting to coalesce them only adds latency.
        stream.set_nodelay(true)?;
        let (reader, writer) = stream.into_split();
        self.stream = Some((BufReader::with_capacity(64 * 1024, reader), writer));
        Ok(())
    }

    /// Sends a complete request (from [`Request::encode`]) and reads its response whole.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<Response> {
        let mut body = Vec::new();
        let mut response = self
            .send_streaming(request, &mut |chunk| body.extend_from_slice(chunk))
            .await?;
        response.body = body;
        Ok(response)
    }

    /// Sends a complete request and hands the response body to `sink` piece by piece, so
    /// that a large download is never held in memory; the returned body is empty. After an
    /// error (or when cancelled) the connection is dropped and the next request reconnects.
    pub async fn send_streaming(
        &mut self,
        request: &[u8],
        sink: &mut (dyn FnMut(&[u8]) + Send),
    ) -> io::Result<Response> {
        if self.stream.is_none() {
            self.connect().await?;
        }
        // Taken out for the exchange and put back only after a complete one, so that an
        // exchange that fails or is cancelled (a timeout) never leaves half a response behind.
        let (mut reader, mut writer) = self.stream.take().expect("connected above");
        let no_body = request.starts_with(b"HEAD ");
        let (response, keep_alive) =
            exchange(&mut reader, &mut writer, request, no_body, sink).await?;
        if keep_alive {
            self.stream = Some((reader, writer));
        }
        Ok(response)
    }
}

/// How a response's body is delimited.
enum Framing {
    /// No body (1xx, 204, 304, an answer to `HEAD`).
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// Writes `request` while reading one response (its body to `sink`); answers the response
/// (body empty) and whether the connection may carry another request. A failed write
/// matters only when no complete response came.
async fn exchange(
    reader: &mut BufReader<OwnedReadHalf>,
    writer: &mut OwnedWriteHalf,
    request: &[u8],
    no_body: bool,
    sink: &mut (dyn FnMut(&[u8]) + Send),
) -> io::Result<(Response, bool)> {
    let write = async {
        writer.write_all(request).await?;
        writer.flush().await
    };
    let read = async {
        let (response, framing, keep_alive) = read_head(reader, no_body).await?;
        let keep_alive = match framing {
            Framing::Empty => keep_alive,
            Framing::Length(length) => {
                copy_exact(reader, length, sink).await?;
                keep_alive
            }
            Framing::Chunked => {
                read_chunked(reader, sink).await?;
                keep_alive
            }
            Framing::UntilClose => {
                loop {
                    let buf = reader.fill_buf().await?;
                    if buf.is_empty() {
                        break;
                    }
                    let n = buf.len();
                    sink(buf);
                    reader.consume(n);
                }
                false
            }
        };
        Ok::<_, io::Error>((response, keep_alive))
    };
    let (written, read) = tokio::join!(write, read);
    match (read, written) {
        // A server that answered without reading everything closes: do not reuse it.
        (Ok((response, keep_alive)), written) => Ok((response, keep_alive && written.is_ok())),
        (Err(_), Err(write_error)) => Err(write_error),
        (Err(read_error), Ok(())) => Err(read_error),
    }
}

fn invalid(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

/// Reads a response's status line and headers (skipping interim 1xx responses): the
/// response without its body, how the body is framed, and whether the connection stays open.
async fn read_head(
    reader: &mut BufReader<OwnedReadHalf>,
    no_body: bool,
) -> io::Result<(Response, Framing, bool)> {
    let mut line = Vec::new();
    let mut status = None;
    let mut headers = Vec::new();
    let mut total = 0;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed before a complete response",
            ));
        }
        total += n;
        if total > MAX_HEAD_BYTES {
            return Err(invalid("response headers longer than 64 KiB"));
        }
        let text = std::str::from_utf8(&line)
            .map_err(|_| invalid("response headers are not UTF-8"))?
            .trim_end();
        let Some(code) = status else {
            let code = text
                .split(' ')
                .nth(1)
                .and_then(|code| code.parse::<u16>().ok())
                .ok_or_else(|| invalid(format!("bad status line {text:?}")))?;
            status = Some(code);
            continue;
        };
        if text.is_empty() {
            if (100..200).contains(&code) {
                // An interim response: the real one follows.
                status = None;
                headers.clear();
                continue;
            }
            break;
        }
        if let Some((name, value)) = text.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    let status = status.expect("the loop ends after a status line");
    let find = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let keep_alive = !find("connection").is_some_and(|value| value.eq_ignore_ascii_case("close"));
    let framing = if no_body || status == 204 || status == 304 {
        Framing::Empty
    } else if find("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        Framing::Chunked
    } else if let Some(length) = find("content-length") {
        Framing::Length(
            length
                .parse()
                .map_err(|_| invalid(format!("bad content-length {length:?}")))?,
        )
    } else {
        Framing::UntilClose
    };
    let response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    Ok((response, framing, keep_alive))
}

/// Hands exactly `left` bytes to `sink`.
async fn copy_exact(
    reader: &mut BufReader<OwnedReadHalf>,
    mut left: u64,
    sink: &mut (dyn FnMut(&[u8]) + Send),
) -> io::Result<()> {
    while left > 0 {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            // A connection cut mid-body must not pass for a short response.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed inside a response body",
            ));
        }
        let n = (buf.len() as u64).min(left) as usize;
        sink(&buf[..n]);
        reader.consume(n);
        left -= n as u64;
    }
    Ok(())
}

/// Hands a chunked body to `sink`, chunk data only; reads the trailers.
async fn read_chunked(
    reader: &mut BufReader<OwnedReadHalf>,
    sink: &mut (dyn FnMut(&[u8]) + Send),
) -> io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the connection closed inside a chunked body",
            ));
        }
        let text = std::str::from_utf8(&line).map_err(|_| invalid("bad chunk size line"))?;
        let size_text = text.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        if size == 0 {
            // Trailers, then an empty line.
            loop {
                line.clear();
                let n = reader.read_until(b'\n', &mut line).await?;
                if n == 0 || line == b"\r\n" || line == b"\n" {
                    return Ok(());
                }
            }
        }
        copy_exact(reader, size, sink).await?;
        line.clear();
        reader.read_until(b'\n', &mut line).await?;
        if line != b"\r\n" && line != b"\n" {
            return Err(invalid("a chunk does not end with CRLF"));
        }
    }
}

/// `text` percent-encoded for a query string: everything but the unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A server that reads one request head and answers `answer` as is, then closes (or,
    /// with `linger`, keeps the connection open as chromedriver does).
    async fn one_shot_server(answer: &'static [u8], linger: bool) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.expect("accept");
            let mut received = Vec::new();
            let mut buf = [0u8; 4096];
            while !received.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.expect("read");
                if n == 0 {
                    break;
                }
                received.extend_from_slice(&buf[..n]);
            }
            stream.write_all(answer).await.expect("answer");
            if linger {
                tokio::time::sleep(Duration::from_secs(30)).await;
            }
        });
        addr
    }

    #[test]
    fn encodes_length_and_chunked_requests() {
        let request = Request::post("/x?a=1")
            .header("X-Org-Name", "acme")
            .raw_body("hello");
        assert_eq!(
            String::from_utf8(request.encode_with("h:1", Some("close"))).unwrap(),
            "POST /x?a=1 HTTP/1.1\r\nHost: h:1\r\nConnection: close\r\nContent-Length: 5\r\n\
             X-Org-Name: acme\r\n\r\nhello"
        );
        let chunked = Request::post("/y").raw_body(vec![b'a'; 9000]).chunked();
        let bytes = String::from_utf8(chunked.encode("h:1")).unwrap();
        assert!(bytes.starts_with(
            "POST /y HTTP/1.1\r\nHost: h:1\r\nTransfer-Encoding: chunked\r\n\r\n2000\r\n"
        ));
        let last_chunk = format!("\r\n328\r\n{}\r\n0\r\n\r\n", "a".repeat(808));
        assert!(
            bytes.ends_with(&last_chunk),
            "8192 bytes, then 808, then the end"
        );
    }

    #[tokio::test]
    async fn reads_by_length_without_waiting_for_close() {
        let addr = one_shot_server(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
            true,
        )
        .await;
        let response = send(addr, &Request::get("/").timeout(Duration::from_secs(5)))
            .await
            .expect("a response");
        assert_eq!(response.status, 200);
        assert_eq!(response.header("CONTENT-TYPE"), Some("application/json"));
        assert_eq!(response.media_type().as_deref(), Some("application/json"));
        assert_eq!(response.json()["a"], 1);
    }

    #[tokio::test]
    async fn decodes_chunked_and_until_close_bodies() {
        let addr = one_shot_server(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            true,
        )
        .await;
        let response = send(addr, &Request::get("/")).await.expect("a response");
        assert_eq!((response.status, response.text().as_str()), (200, "abcde"));

        let addr = one_shot_server(b"HTTP/1.1 200 OK\r\n\r\nuntil the end", false).await;
        let response = send(addr, &Request::get("/")).await.expect("a response");
        assert_eq!(response.text(), "until the end");
    }

    #[tokio::test]
    async fn a_body_cut_short_is_an_error() {
        let addr =
            one_shot_server(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", false).await;
        let error = send(addr, &Request::get("/")).await.expect_err("cut short");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn keep_alive_connection_reconnects_after_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            // The first connection answers twice, the second time with `Connection: close`;
            // the second connection answers once.
            for answers in [2, 1] {
                let (stream, _) = listener.accept().await.expect("accept");
                let mut stream = BufReader::new(stream);
                for n in 0..answers {
                    let mut line = String::new();
                    loop {
                        line.clear();
                        stream.read_line(&mut line).await.expect("read");
                        if line == "\r\n" || line.is_empty() {
                            break;
                        }
                    }
                    let close = if answers == 2 && n == 1 {
                        "Connection: close\r\n"
                    } else {
                        ""
                    };
                    let answer = format!("HTTP/1.1 200 OK\r\n{close}Content-Length: 1\r\n\r\n{n}");
                    stream
                        .get_mut()
                        .write_all(answer.as_bytes())
                        .await
                        .expect("answer");
                }
            }
        });
        let mut connection = Connection::open(addr).await.expect("connect");
        let request = Request::get("/").encode(&addr.to_string());
        let mut seen = Vec::new();
        for _ in 0..3 {
            seen.push(connection.send(&request).await.expect("a response").text());
        }
        assert_eq!(seen, ["0", "1", "0"]);
    }

    #[test]
    fn percent_encodes_everything_but_unreserved() {
        assert_eq!(
            percent_encode("actor_email:ana.lópez@acme-analytics.com"),
            "actor_email%3Aana.l%C3%B3pez%40acme-analytics.com"
        );
    }
}
