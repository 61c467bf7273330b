//! A real headless Chromium for the GUI's tests, driven over W3C WebDriver by a
//! small client on the workspace's HTTP client (no WebDriver crate).
//!
//! `chromedriver --port=0` (Debian's `chromium-driver`, installed by
//! `scripts/setup.sh`) picks a free loopback port and prints it; the session
//! runs `chromium --headless=new --no-sandbox --disable-gpu` with a fresh
//! profile in a temp dir. Nothing downloads a browser: when `chromium` or
//! `chromedriver` is missing the start fails saying how to install them.
//! `WEFT_CHROMIUM` and `WEFT_CHROMEDRIVER` override where they are found.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long chromedriver may take to say which port it listens on.
const DRIVER_START: Duration = Duration::from_secs(20);

/// How to get the browser, in every message about a missing one.
pub const INSTALL_HINT: &str = "install Debian's packages: run `bash scripts/setup.sh` as root, or \
     `sudo apt-get install -y --no-install-recommends chromium chromium-driver` \
     (or point WEFT_CHROMIUM / WEFT_CHROMEDRIVER at them)";

#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error("{what} not found ({looked}): {INSTALL_HINT}")]
    Missing { what: &'static str, looked: String },
    #[error("cannot start chromedriver: {0}")]
    Spawn(#[source] std::io::Error),
    #[error("chromedriver did not print its port within {DRIVER_START:?}; its log:\n{0}")]
    NoPort(String),
    #[error("WebDriver {what}: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("WebDriver {what} answered {status}: {body}")]
    Refused {
        what: String,
        status: reqwest::StatusCode,
        body: String,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the screenshot is not base64: {0}")]
    Screenshot(String),
}

/// `name` as `env` says, else the first `candidates` found on PATH.
fn locate(env: &str, candidates: &[&str], what: &'static str) -> Result<PathBuf, BrowserError> {
    if let Some(p) = std::env::var_os(env).map(PathBuf::from) {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(BrowserError::Missing {
                what,
                looked: format!("{env}={}", p.display()),
            })
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for c in candidates {
            let p = dir.join(c);
            if p.is_file() {
                return Ok(p);
            }
        }
    }
    Err(BrowserError::Missing {
        what,
        looked: format!("{} on PATH", candidates.join(" or ")),
    })
}

/// A chromedriver process and one browser session; both end when dropped.
pub struct Browser {
    driver: Child,
    log: PathBuf,
    base: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless session.
    pub async fn start() -> Result<Browser, BrowserError> {
        let chromium = locate(
            "WEFT_CHROMIUM",
            &["chromium", "chromium-browser"],
            "chromium",
        )?;
        let driver_bin = locate("WEFT_CHROMEDRIVER", &["chromedriver"], "chromedriver")?;
        let profile = tempfile::tempdir().map_err(BrowserError::Spawn)?;
        let log = profile.path().join("chromedriver.log");
        let mut cmd = Command::new(&driver_bin);
        cmd.args(["--port=0", "--allowed-ips=127.0.0.1"])
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        // Its own process group, so that dropping it ends the browser too.
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut driver = cmd.spawn().map_err(BrowserError::Spawn)?;
        let (tx, rx) = mpsc::channel();
        if let Some(out) = driver.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if let Some(port) = line
                        .split("started successfully on port ")
                        .nth(1)
                        .and_then(|p| p.trim_end_matches('.').trim().parse::<u16>().ok())
                    {
                        let _ = tx.send(port);
                    }
                }
            });
        }
        let port = match rx.recv_timeout(DRIVER_START) {
            Ok(p) => p,
            Err(_) => {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                kill_group(&mut driver);
                return Err(BrowserError::NoPort(text));
            }
        };
        let mut b = Browser {
            driver,
            log,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _profile: profile,
        };
        let data_dir = b._profile.path().join("profile");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu",
                    "--disable-dev-shm-usage", "--no-first-run",
                    "--no-default-browser-check", "--window-size=1400,1000",
                    format!("--user-data-dir={}", data_dir.display()),
                ],
            },
        }}});
        let v = b.call(reqwest::Method::POST, "session", Some(caps)).await?;
        let id = v["sessionId"].as_str().unwrap_or_default().to_string();
        b.base = format!("{}/session/{id}", b.base);
        Ok(b)
    }

    /// chromedriver's log so far (printed by tests that fail).
    pub fn driver_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, BrowserError> {
        let url = if path.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{path}", self.base)
        };
        let what = format!("{method} {path}");
        let mut req = self
            .http
            .request(method, &url)
            .timeout(Duration::from_secs(60));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|source| BrowserError::Http {
            what: what.clone(),
            source,
        })?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(|source| BrowserError::Http {
            what: what.clone(),
            source,
        })?;
        if status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(BrowserError::Refused {
                what,
                status,
                body: v["value"].to_string(),
            })
        }
    }

    /// Navigates to `url` (waits for the page load, not for the app's data).
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        self.call(reqwest::Method::POST, "url", Some(json!({"url": url})))
            .await
            .map(|_| ())
    }

    /// The current URL as WebDriver reports it.
    pub async fn url(&self) -> Result<String, BrowserError> {
        Ok(self
            .call(reqwest::Method::GET, "url", None)
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value, BrowserError> {
        self.call(
            reqwest::Method::POST,
            "execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The text of the first element matching `css`, `None` when there is none.
    pub async fn text(&self, css: &str) -> Result<Option<String>, BrowserError> {
        let v = self
            .execute(
                "const e = document.querySelector(arguments[0]); return e ? e.innerText : null;",
                vec![json!(css)],
            )
            .await?;
        Ok(v.as_str().map(|s| s.trim().to_string()))
    }

    /// The WebDriver reference of the first element matching `css`.
    async fn element(&self, css: &str) -> Result<String, BrowserError> {
        let v = self
            .call(
                reqwest::Method::POST,
                "element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Ok(v[ELEMENT].as_str().unwrap_or_default().to_string())
    }

    /// Clicks the element matching `css`, as a user would.
    pub async fn click(&self, css: &str) -> Result<(), BrowserError> {
        let id = self.element(css).await?;
        self.call(
            reqwest::Method::POST,
            &format!("element/{id}/click"),
            Some(json!({})),
        )
        .await
        .map(|_| ())
    }

    /// Clears the input matching `css` and types `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) -> Result<(), BrowserError> {
        let id = self.element(css).await?;
        self.call(
            reqwest::Method::POST,
            &format!("element/{id}/clear"),
            Some(json!({})),
        )
        .await?;
        self.call(
            reqwest::Method::POST,
            &format!("element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await
        .map(|_| ())
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<(), BrowserError> {
        let v = self.call(reqwest::Method::GET, "screenshot", None).await?;
        let png = weft_model::resource::secret::decode_base64(v.as_str().unwrap_or_default())
            .map_err(|e| BrowserError::Screenshot(e.to_string()))?;
        let write = |p: &Path| -> std::io::Result<()> {
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(p, &png)
        };
        write(path).map_err(|source| BrowserError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    /// The browser console's messages so far (errors of the page's scripts, say).
    pub async fn console(&self) -> Result<Vec<String>, BrowserError> {
        let v = self
            .call(
                reqwest::Method::POST,
                "se/log",
                Some(json!({"type": "browser"})),
            )
            .await?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| format!("{} {}", e["level"], e["message"]))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Ends the session (the browser quits), then chromedriver (on drop).
    pub async fn close(self) {
        let _ = self.call(reqwest::Method::DELETE, "", None).await;
    }
}

/// SIGKILL to the process group of `child` (chromedriver and the browser it
/// started), then reap it.
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
        crate::process::print_log_if_failing("chromedriver", || self.driver_log());
    }
}
