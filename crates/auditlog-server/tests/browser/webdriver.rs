//! A small W3C WebDriver client for chromedriver: just the commands these tests use, spoken
//! as JSON over [`crate::http`]. (A full client crate would add a second HTTP stack, two
//! Unicode data sets and a minute of compile time for a dozen commands.)
//!
//! [`Driver`] owns the chromedriver process: it is started on a free port in its own process
//! group, and dropping it kills that group (chromedriver and every Chromium it started), also
//! when a test fails. [`Browser`] is one session: one Chromium with a fresh profile.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine;
use serde_json::{json, Value};

use crate::http;

/// The key WebDriver names element references by.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long [`Browser::wait_for`] and friends wait by default.
pub const WAIT: Duration = Duration::from_secs(10);

/// Special keys, as WebDriver codes.
pub mod keys {
    pub const TAB: &str = "\u{E004}";
    pub const ENTER: &str = "\u{E007}";
    pub const SPACE: &str = " ";
}

/// Where the programs are.
#[derive(Clone, Debug)]
pub struct Programs {
    pub chromedriver: PathBuf,
    pub chromium: PathBuf,
}

impl Programs {
    /// The chromedriver of `AUDITLOG_CHROMEDRIVER` (or Debian's) and the Chromium of
    /// `AUDITLOG_CHROMIUM` (or Debian's); `None` when they are not installed. A path named
    /// in the environment that does not exist is a mistake, not a reason to skip.
    pub fn find() -> Option<Programs> {
        let pick = |var: &str, default: &str| match std::env::var_os(var) {
            Some(path) if !path.is_empty() => {
                let path = PathBuf::from(path);
                assert!(path.exists(), "{var}={} does not exist", path.display());
                Some(path)
            }
            _ => Some(PathBuf::from(default)).filter(|p| p.exists()),
        };
        Some(Programs {
            chromedriver: pick("AUDITLOG_CHROMEDRIVER", "/usr/bin/chromedriver")?,
            chromium: pick("AUDITLOG_CHROMIUM", "/usr/bin/chromium")?,
        })
    }
}

/// A running chromedriver; killed (with its browsers) on drop.
pub struct Driver {
    child: Child,
    host: String,
    chromium: PathBuf,
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it is ready.
    pub async fn start(programs: &Programs) -> Result<Driver> {
        let mut last_error = anyhow!("chromedriver did not start");
        // The free port is found by binding and releasing it; another process could take it
        // in between, so a failed start is retried on another port.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let child = std::os::unix::process::CommandExt::process_group(
                Command::new(&programs.chromedriver)
                    .arg(format!("--port={port}"))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
                0,
            )
            .spawn()
            .with_context(|| format!("start {}", programs.chromedriver.display()))?;
            let driver = Driver {
                child,
                host: format!("127.0.0.1:{port}"),
                chromium: programs.chromium.clone(),
            };
            match driver.wait_ready().await {
                Ok(()) => return Ok(driver),
                Err(e) => last_error = e,
            }
        }
        Err(last_error)
    }

    async fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(response) = http::request(&self.host, "GET", "/status", &[], b"").await {
                let value: Value = serde_json::from_slice(&response.body).unwrap_or_default();
                if value["value"]["ready"] == json!(true) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("chromedriver on {} was not ready within 10 s", self.host);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new session: a headless Chromium with a fresh profile.
    pub async fn browser(&self) -> Result<Browser> {
        let profile = tempfile::tempdir()?;
        let capabilities = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "pageLoadStrategy": "normal",
                "goog:chromeOptions": {
                    "binary": self.chromium,
                    "args": [
                        "--headless=new",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-quic",
                        "--no-first-run",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--disable-dev-shm-usage",
                        "--lang=en-US",
                        format!("--user-data-dir={}", profile.path().display()),
                        "--window-size=1400,1000",
                    ],
                },
            } },
        });
        let value = call(&self.host, "POST", "/session", Some(capabilities)).await?;
        let id = value["sessionId"]
            .as_str()
            .context("no sessionId in the new session's answer")?
            .to_string();
        let browser = Browser {
            session: Session {
                host: self.host.clone(),
                id,
            },
            _profile: profile,
        };
        browser
            .session
            .post(
                "/timeouts",
                json!({ "implicit": 0, "pageLoad": 30_000, "script": 30_000 }),
            )
            .await?;
        Ok(browser)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The whole process group: chromedriver and the Chromium processes it started.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one WebDriver command and returns its `value`, or the WebDriver error as an error.
async fn call(host: &str, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers: &[(&str, &str)] = if method == "POST" {
        &[("Content-Type", "application/json; charset=utf-8")]
    } else {
        &[]
    };
    let response = http::request(host, method, path, headers, body.as_bytes()).await?;
    let mut value: Value = serde_json::from_slice(&response.body).with_context(|| {
        format!(
            "{method} {path}: answer is not JSON: {}",
            response.text().chars().take(300).collect::<String>()
        )
    })?;
    let value = value["value"].take();
    if response.status >= 400 {
        bail!(
            "WebDriver {method} {path}: {}: {}",
            value["error"].as_str().unwrap_or("error"),
            value["message"]
                .as_str()
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("")
        );
    }
    Ok(value)
}

/// The address of one session's commands.
#[derive(Clone, Debug)]
struct Session {
    host: String,
    id: String,
}

impl Session {
    fn path(&self, tail: &str) -> String {
        format!("/session/{}{tail}", self.id)
    }

    async fn get(&self, tail: &str) -> Result<Value> {
        call(&self.host, "GET", &self.path(tail), None).await
    }

    async fn post(&self, tail: &str, body: Value) -> Result<Value> {
        call(&self.host, "POST", &self.path(tail), Some(body)).await
    }

    fn element(&self, value: &Value, what: &str) -> Result<Element> {
        let id = value[ELEMENT_KEY]
            .as_str()
            .with_context(|| format!("{what}: not an element reference: {value}"))?;
        Ok(Element {
            session: self.clone(),
            id: id.to_string(),
            what: what.to_string(),
        })
    }

    fn elements(&self, value: &Value, what: &str) -> Result<Vec<Element>> {
        value
            .as_array()
            .with_context(|| format!("{what}: not a list of elements"))?
            .iter()
            .map(|v| self.element(v, what))
            .collect()
    }
}

/// How to find elements.
fn locator(selector: &str) -> Value {
    if selector.starts_with('/') || selector.starts_with("(/") {
        json!({ "using": "xpath", "value": selector })
    } else {
        json!({ "using": "css selector", "value": selector })
    }
}

/// One browser session. Close it with [`Browser::close`]; a session left open (a failed
/// test) ends when its [`Driver`] is dropped.
pub struct Browser {
    session: Session,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Ends the session and its Chromium.
    pub async fn close(self) -> Result<()> {
        call(&self.session.host, "DELETE", &self.session.path(""), None).await?;
        Ok(())
    }

    /// Loads `url` and waits for the page (and any redirects) to load.
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.session
            .post("/url", json!({ "url": url }))
            .await
            .with_context(|| format!("go to {url}"))?;
        Ok(())
    }

    /// The current URL.
    pub async fn url(&self) -> Result<String> {
        Ok(self
            .session
            .get("/url")
            .await?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// The path and query of the current URL.
    pub async fn path(&self) -> Result<String> {
        let url = self.url().await?;
        let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        Ok(after_scheme
            .find('/')
            .map_or("/".to_string(), |i| after_scheme[i..].to_string()))
    }

    /// The first element matching a CSS selector (or an XPath starting with `/`).
    pub async fn find(&self, selector: &str) -> Result<Element> {
        match self.session.post("/element", locator(selector)).await {
            Ok(value) => self.session.element(&value, selector),
            Err(e) => Err(e.context(format!(
                "find {selector:?} on {}",
                self.url_or_blank().await
            ))),
        }
    }

    /// Every element matching.
    pub async fn find_all(&self, selector: &str) -> Result<Vec<Element>> {
        let value = self.session.post("/elements", locator(selector)).await?;
        self.session.elements(&value, selector)
    }

    /// Waits until an element matches, up to `timeout`.
    pub async fn wait_for_within(&self, selector: &str, timeout: Duration) -> Result<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.find_all(selector).await {
                Ok(found) if !found.is_empty() => {
                    return Ok(found.into_iter().next().expect("not empty"))
                }
                _ if Instant::now() > deadline => {
                    bail!(
                        "no {selector:?} within {timeout:?} on {}",
                        self.url_or_blank().await
                    )
                }
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Waits until an element matches, up to [`WAIT`].
    pub async fn wait_for(&self, selector: &str) -> Result<Element> {
        self.wait_for_within(selector, WAIT).await
    }

    /// Waits until the current path (and query) satisfies `check`.
    pub async fn wait_for_path(&self, what: &str, check: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let path = self.path().await?;
            if check(&path) {
                return Ok(path);
            }
            if Instant::now() > deadline {
                bail!("the URL did not become {what} within {WAIT:?}; it is {path}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs a script in the page (`arguments[i]` are `args`) and returns its result.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.session
            .post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// The text of the whole page as rendered.
    pub async fn body_text(&self) -> Result<String> {
        self.find("body").await?.text().await
    }

    /// The page's `<h1>`.
    pub async fn heading(&self) -> Result<String> {
        self.find("h1").await?.text().await
    }

    /// Every cookie of the current page, including HttpOnly ones.
    pub async fn cookies(&self) -> Result<Vec<(String, String)>> {
        let value = self.session.get("/cookie").await?;
        Ok(value
            .as_array()
            .context("cookies are not a list")?
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or("").to_string(),
                    c["value"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect())
    }

    /// Deletes every cookie: the next page is seen signed out.
    pub async fn clear_cookies(&self) -> Result<()> {
        call(
            &self.session.host,
            "DELETE",
            &self.session.path("/cookie"),
            None,
        )
        .await?;
        Ok(())
    }

    /// Presses keys (WebDriver codes, see [`keys`]) on whatever has the focus.
    pub async fn press(&self, text: &str) -> Result<()> {
        let mut actions = Vec::new();
        for ch in text.chars() {
            actions.push(json!({ "type": "keyDown", "value": ch.to_string() }));
            actions.push(json!({ "type": "keyUp", "value": ch.to_string() }));
        }
        self.session
            .post(
                "/actions",
                json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] }),
            )
            .await?;
        self.release().await
    }

    async fn release(&self) -> Result<()> {
        call(
            &self.session.host,
            "DELETE",
            &self.session.path("/actions"),
            None,
        )
        .await?;
        Ok(())
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let value = self.session.get("/screenshot").await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(value.as_str().context("screenshot is not base64 text")?)?;
        std::fs::write(path, png).with_context(|| format!("write {}", path.display()))
    }

    async fn url_or_blank(&self) -> String {
        self.url().await.unwrap_or_default()
    }
}

/// An element of the current page.
#[derive(Clone, Debug)]
pub struct Element {
    session: Session,
    id: String,
    what: String,
}

impl Element {
    fn path(&self, tail: &str) -> String {
        format!("/element/{}{tail}", self.id)
    }

    /// Clicks it (scrolling it into view), as a user would.
    pub async fn click(&self) -> Result<()> {
        self.session
            .post(&self.path("/click"), json!({}))
            .await
            .with_context(|| format!("click {:?}", self.what))?;
        Ok(())
    }

    /// Empties an input.
    pub async fn clear(&self) -> Result<()> {
        self.session.post(&self.path("/clear"), json!({})).await?;
        Ok(())
    }

    /// Types into it.
    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.session
            .post(&self.path("/value"), json!({ "text": text }))
            .await
            .with_context(|| format!("type into {:?}", self.what))?;
        Ok(())
    }

    /// Its rendered text.
    pub async fn text(&self) -> Result<String> {
        Ok(self
            .session
            .get(&self.path("/text"))
            .await?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// An attribute, as written in the HTML.
    pub async fn attr(&self, name: &str) -> Result<Option<String>> {
        let value = self
            .session
            .get(&self.path(&format!("/attribute/{name}")))
            .await?;
        Ok(value.as_str().map(str::to_string))
    }

    /// A DOM property (`value`, `checked`, `open`, `textContent`, …).
    pub async fn prop(&self, name: &str) -> Result<Value> {
        self.session
            .get(&self.path(&format!("/property/{name}")))
            .await
    }

    /// Its `textContent`, untouched by CSS (`text-transform`) or visibility.
    pub async fn content(&self) -> Result<String> {
        Ok(self
            .prop("textContent")
            .await?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// The first descendant matching.
    pub async fn find(&self, selector: &str) -> Result<Element> {
        let value = self
            .session
            .post(&self.path("/element"), locator(selector))
            .await
            .with_context(|| format!("find {selector:?} in {:?}", self.what))?;
        self.session.element(&value, selector)
    }

    /// Every descendant matching.
    pub async fn find_all(&self, selector: &str) -> Result<Vec<Element>> {
        let value = self
            .session
            .post(&self.path("/elements"), locator(selector))
            .await?;
        self.session.elements(&value, selector)
    }

    /// Moves the mouse over it.
    pub async fn hover(&self) -> Result<()> {
        let origin = json!({ ELEMENT_KEY: self.id });
        self.session
            .post(
                "/actions",
                json!({ "actions": [{
                    "type": "pointer",
                    "id": "mouse",
                    "parameters": { "pointerType": "mouse" },
                    "actions": [{ "type": "pointerMove", "duration": 0, "origin": origin, "x": 0, "y": 0 }],
                }] }),
            )
            .await
            .with_context(|| format!("hover {:?}", self.what))?;
        Ok(())
    }

    /// This element as a script argument.
    pub fn arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }
}
