//! Plain HTTP requests of the browser tests, through the test kit's HTTP/1.1 client: the
//! WebDriver client's JSON to chromedriver, and the tests' own requests to the server
//! (minting a sign-in link, downloading an export with the browser's session cookie).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use auditlog_testkit::http::{self, Request};

pub use auditlog_testkit::http::Response;

/// Longest any one request may take before the test fails instead of hanging.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Sends one request to `host` (`127.0.0.1:port`) and reads the whole response.
pub async fn request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response> {
    let addr: SocketAddr = host
        .parse()
        .with_context(|| format!("{host} is not an address and port"))?;
    let request = Request::new(method, path)
        .headers(headers)
        .raw_body(body)
        .timeout(TIMEOUT);
    http::send(addr, &request)
        .await
        .with_context(|| format!("{method} {path} on {host}"))
}
