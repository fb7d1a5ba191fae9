//! The binary run as a user runs it: commands, `serve`, `dev`, their logs.

use super::{Env, TestIssuer, eventually};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

/// A free TCP port on loopback (for processes that bind it themselves).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The binary as a user runs it: a clean environment plus what is given, in
/// a folder of the test's own. The one way tests launch it.
pub struct Binary {
    command: Command,
    _dir: Option<tempfile::TempDir>,
}

/// The binary, in a new temporary folder.
pub fn binary() -> Binary {
    let dir = tempfile::tempdir().unwrap();
    let mut binary = binary_in(dir.path());
    binary._dir = Some(dir);
    binary
}

/// The binary, in `dir`.
pub fn binary_in(dir: &Path) -> Binary {
    let mut command = Command::new(env!("CARGO_BIN_EXE_actix-auth0-api"));
    command.current_dir(dir).env_clear();
    Binary { command, _dir: None }
}

impl Binary {
    /// Adds arguments.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.command.args(args);
        self
    }

    /// Sets environment variables.
    pub fn envs<K: AsRef<std::ffi::OsStr>, V: AsRef<std::ffi::OsStr>>(
        mut self,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.command.envs(env);
        self
    }

    /// Runs it to its end.
    pub fn output(mut self) -> Output {
        self.command.output().unwrap()
    }

    /// Runs it to its end with `input` on its standard input.
    pub fn output_with_input(mut self, input: &[u8]) -> Output {
        use std::io::Write;
        let mut child = self
            .command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        // Written beside the reads: a process that stops reading early
        // must not block the test (a broken pipe is its business).
        let writer = std::thread::spawn(move || drop(stdin.write_all(&input)));
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        output
    }

    /// Runs it to its end; its exit code and standard error.
    pub fn code_and_stderr(self) -> (Option<i32>, String) {
        let output = self.output();
        (output.status.code(), String::from_utf8(output.stderr).unwrap())
    }

    /// Runs it to its end; its standard output (it must succeed).
    pub fn stdout(self) -> String {
        let output = self.output();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    }

    /// Starts it; it is killed when the returned process is dropped.
    pub fn spawn(mut self, stdout: Stdio, stderr: Stdio) -> Process {
        let child = self.command.stdout(stdout).stderr(stderr).spawn().unwrap();
        Process {
            child,
            _dir: self._dir,
        }
    }
}

/// A running binary, killed when dropped.
pub struct Process {
    /// The process.
    pub child: Child,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `serve` against `issuer` on a free port, with `database_url`, its log (at
/// `rust_log`) sent to `stderr`.
pub struct ServeProcess {
    /// The process.
    pub process: Process,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
}

impl ServeProcess {
    /// Starts it; [`wait_ready`](Self::wait_ready) waits for it.
    pub fn start(issuer: &TestIssuer, database_url: &str, stderr: Stdio, rust_log: &str) -> Self {
        Self::start_with(issuer, database_url, stderr, rust_log, &[])
    }

    /// Starts it with more environment variables.
    pub fn start_with(
        issuer: &TestIssuer,
        database_url: &str,
        stderr: Stdio,
        rust_log: &str,
        env: Env<'_>,
    ) -> Self {
        let port = free_port();
        let process = binary()
            .args(&["serve"])
            .envs(issuer.env())
            .envs([
                ("DATABASE_URL", database_url),
                ("PORT", &port.to_string()),
                ("RUST_LOG", rust_log),
            ])
            .envs(env.iter().copied())
            .spawn(Stdio::null(), stderr);
        Self {
            process,
            address: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Waits up to ten seconds for `/readyz` to answer 200.
    pub async fn wait_ready(&self, client: &reqwest::Client) {
        wait_ready(&self.address, client).await;
    }

    /// The process id, for signals.
    pub fn pid(&self) -> u32 {
        self.process.child.id()
    }

    /// Sends it the signal `name` (`TERM`, `INT`...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    /// Kills it at once (SIGKILL, as a crash) and waits for it to end, so
    /// that its log is complete.
    pub fn kill(&mut self) {
        self.process.child.kill().unwrap();
        self.process.child.wait().unwrap();
    }

    /// Its exit status, once it has exited within `limit` (`None`: still running).
    pub async fn exit_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = &mut self.process.child;
        let mut exit = None;
        eventually(limit, async || {
            exit = child.try_wait().unwrap();
            exit.is_some()
        })
        .await;
        exit
    }
}

/// Waits up to ten seconds for `/readyz` at `address` to answer 200.
pub async fn wait_ready(address: &str, client: &reqwest::Client) {
    let url = format!("{address}/readyz");
    let ready = eventually(Duration::from_secs(10), async || {
        client.get(&url).send().await.is_ok_and(|r| r.status() == 200)
    });
    assert!(ready.await, "{address} never became ready");
}

/// A `dev` server started as a user starts it, killed when dropped.
pub struct DevServer {
    _process: Process,
    /// The three tokens its banner prints: no permissions, `read:messages`,
    /// `read:admin-messages`.
    pub tokens: Vec<String>,
    /// `http://127.0.0.1:PORT`.
    pub address: String,
}

/// Starts `dev` in `dir` on `port` and reads the three tokens its banner prints.
pub fn start_dev(dir: &Path, port: &str) -> DevServer {
    use std::io::BufRead;
    // A proxy that does not exist: the keys of this machine never go through one.
    let proxy = "http://127.0.0.1:9";
    let env = [
        ("PORT", port),
        ("http_proxy", proxy),
        ("HTTP_PROXY", proxy),
        ("ALL_PROXY", proxy),
    ];
    let mut process = binary_in(dir)
        .envs(env)
        .args(&["dev"])
        .spawn(Stdio::piped(), Stdio::null());
    let stdout = process.child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut server = DevServer {
        _process: process,
        tokens: Vec::new(),
        address: format!("http://127.0.0.1:{port}"),
    };
    while server.tokens.len() < 3 {
        let line = receiver
            .recv_timeout(Duration::from_secs(30))
            .expect("dev prints its banner");
        if let Some(rest) = line.strip_prefix("curl -H \"Authorization: Bearer ") {
            server.tokens.push(rest.split('"').next().unwrap().to_owned());
        }
    }
    server
}

/// A log file in a temporary folder, for a process's standard error.
pub struct LogFile {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl LogFile {
    /// An empty log file.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.log");
        Self { path, _dir: dir }
    }

    /// A handle to write it from a process.
    pub fn stdio(&self) -> Stdio {
        Stdio::from(std::fs::File::create(&self.path).unwrap())
    }

    /// What was written so far.
    pub fn read(&self) -> String {
        std::fs::read_to_string(&self.path).unwrap()
    }
}

/// A node script serving something a test talks to (tests/oidc/): killed
/// when dropped, and its standard input closed, which the scripts also take
/// as the end.
pub struct NodeProcess {
    _process: Process,
    /// The first line of JSON it printed: where it listens and what else
    /// the test needs.
    pub info: serde_json::Value,
    /// Its standard error.
    pub log: LogFile,
}

/// Starts `node script` with `env` and waits up to 30 seconds for the first
/// line of its standard output that is a JSON object (other lines are
/// skipped).
pub fn start_node_script(script: &Path, env: Env<'_>) -> NodeProcess {
    use std::io::BufRead;
    let log = LogFile::new();
    let mut command = Command::new("node");
    command
        .arg(script)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log.stdio());
    let child = command.spawn().expect("needs node (Node.js 20 or later) on PATH");
    // Killed when dropped, on the way out of a panic too.
    let mut process = Process { child, _dir: None };
    let stdout = process.child.stdout.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // Read to the end, so that what it prints later never meets a closed pipe.
        let mut sender = Some(sender);
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let json = serde_json::from_str::<serde_json::Value>(&line).ok();
            if let Some(info) = json.filter(serde_json::Value::is_object)
                && let Some(sender) = sender.take()
            {
                let _ = sender.send(Some(info));
            }
        }
        if let Some(sender) = sender {
            let _ = sender.send(None);
        }
    });
    match receiver.recv_timeout(Duration::from_secs(30)) {
        Ok(Some(info)) => NodeProcess {
            _process: process,
            info,
            log,
        },
        outcome => panic!(
            "{} printed no JSON line ({outcome:?}); its standard error:\n{}",
            script.display(),
            log.read()
        ),
    }
}

impl NodeProcess {
    /// A string member of [`info`](Self::info).
    pub fn get(&self, name: &str) -> &str {
        self.info[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name} in {}", self.info))
    }
}
