//! Helpers: a temporary folder per test, a `weir` command with the built
//! plugins and a shared compile cache, a running `weir` with an admin API,
//! and NDJSON readers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Where `just plugins` puts NAME.wasm.
pub fn plugin_dir() -> PathBuf {
    let dir = std::env::var_os("WEIR_PLUGIN_DIR").map(PathBuf::from).unwrap_or_else(|| repo().join("target/plugins"));
    assert!(dir.join("split.wasm").is_file(), "{} has no plugins: run `just plugins` first", dir.display());
    dir
}

/// `weir` with the plugin dir, a compile cache shared by all tests, and quiet logs.
pub fn weir() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_weir"));
    cmd.env("WEIR_PLUGIN_DIR", plugin_dir())
        .env("WEIR_CACHE_DIR", repo().join("target/test-plugin-cache"))
        .env("RUST_LOG", "warn")
        .env_remove("WEIR_CONFIG");
    cmd
}

/// Run `weir ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    weir().args(args).stdin(Stdio::null()).output().expect("weir runs")
}

/// A temporary folder holding a test's config, inputs and outputs.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    pub fn new() -> Self {
        TestDir { dir: tempfile::tempdir().expect("a temp dir") }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write `contents` to `name`, returning its path.
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("writing a test file");
        path
    }

    /// Run `weir run -c CONFIG` with `config` written to weir.yaml; panic
    /// with stderr unless it succeeds.
    pub fn run_config(&self, config: &str) -> Output {
        let file = self.write("weir.yaml", config);
        let out = weir().args(["run", "-c"]).arg(&file).stdin(Stdio::null()).output().expect("weir runs");
        assert!(out.status.success(), "weir failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    }
}

/// A `weir run` in the background, with its admin API on `admin`.
pub struct Running {
    child: Child,
    admin: u16,
}

impl Running {
    /// Write `config` to `weir.yaml` in `dir`, start `weir run` on it and
    /// wait until `/ready` answers 200.
    pub fn start(dir: &TestDir, config: &str, admin: u16) -> Running {
        let file = dir.write("weir.yaml", config);
        let child = weir().args(["run", "-c"]).arg(&file).stdin(Stdio::null()).spawn().unwrap();
        // Built first, so that if it never gets ready, dropping it stops it.
        let running = Running { child, admin };
        assert!(wait_for(Duration::from_secs(20), || http("GET", admin, "/ready").is_some_and(|(s, _)| s == 200)));
        running
    }

    /// `POST /-/reload`: the status and the JSON answer.
    pub fn reload(&self) -> (u16, Value) {
        let (status, body) = http("POST", self.admin, "/-/reload").expect("the admin API answers");
        (status, serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}")))
    }

    /// `GET /metrics`: the Prometheus text.
    pub fn metrics(&self) -> String {
        http("GET", self.admin, "/metrics").expect("the admin API answers").1
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) {
        sigterm(self.child.id());
        assert!(self.child.wait().unwrap().success(), "weir exits cleanly");
    }
}

/// A test that fails before `stop` leaves no `weir` behind.
impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Parse NDJSON text.
pub fn ndjson(text: &[u8]) -> Vec<Value> {
    std::str::from_utf8(text)
        .expect("UTF-8")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Parse an NDJSON file; empty when it does not exist yet.
pub fn read_ndjson(path: &Path) -> Vec<Value> {
    std::fs::read(path).map(|b| ndjson(&b)).unwrap_or_default()
}

/// Poll `check` every 50 ms until it holds or `timeout` passes.
pub fn wait_for(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// A free TCP port on 127.0.0.1 (bound, then released for the child to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A minimal HTTP/1.1 request; returns the status and the body.
pub fn http(method: &str, port: u16, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// Send SIGTERM to a child.
pub fn sigterm(pid: u32) {
    let status = Command::new("kill").args(["-TERM", &pid.to_string()]).status().expect("kill runs");
    assert!(status.success());
}

/// The Python of the venv holding the pinned independent clients
/// (`tests/clients/requirements.txt`), installed on first use by
/// `tests/clients/python.sh` into `~/.cache/weir`.
pub fn python_clients() -> PathBuf {
    let out = Command::new("bash").arg(repo().join("tests/clients/python.sh")).output().expect("bash runs");
    assert!(out.status.success(), "tests/clients/python.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).expect("a UTF-8 path").trim())
}

/// Run a script of `tests/e2e/clients/` with the clients' Python; its one
/// line of JSON on stdout.
pub fn client(script: &str, args: &[&str]) -> Value {
    let out = Command::new(python_clients())
        .arg(repo().join("tests/e2e/clients").join(script))
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "{script} {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{script}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

/// A `weir run` in the background with JSON logs, whose log lines can be
/// waited for (a listener's address, say). Killed when dropped.
pub struct Background {
    child: std::process::Child,
    log: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl Background {
    /// Start `weir run` on `config` (written to weir.yaml in `dir`), logging
    /// at `rust_log`.
    pub fn start(dir: &TestDir, config: &str, rust_log: &str) -> Background {
        use std::io::BufRead;
        let file = dir.write("weir.yaml", config);
        let mut child = weir()
            .args(["--log-format", "json", "run", "-c"])
            .arg(&file)
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weir starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                let event = serde_json::from_str(&line).unwrap_or(Value::String(line));
                sink.lock().unwrap().push(event);
            }
        });
        Background { child, log }
    }

    /// The first log event whose message is `message`, waiting up to a
    /// minute; panics at once if weir exits first.
    pub fn wait_for_log(&mut self, message: &str) -> Value {
        let log = self.log.clone();
        let found = || log.lock().unwrap().iter().find(|e| e["message"] == message).cloned();
        let child = &mut self.child;
        let exited = std::cell::Cell::new(false);
        wait_for(Duration::from_secs(60), || {
            exited.set(child.try_wait().ok().flatten().is_some());
            exited.get() || found().is_some()
        });
        match found() {
            Some(event) => event,
            None => {
                // Let the log reader catch the last lines.
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "weir {} {message:?}:\n{}",
                    if exited.get() { "exited before it logged" } else { "never logged" },
                    self.log_text()
                )
            }
        }
    }

    /// Every log line so far, as text.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().iter().map(|e| format!("{e}\n")).collect()
    }

    /// SIGTERM, then expect a clean exit.
    pub fn stop(mut self) {
        sigterm(self.child.id());
        let exit = self.child.wait().expect("weir exits");
        assert!(exit.success(), "weir exits cleanly on SIGTERM:\n{}", self.log_text());
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
