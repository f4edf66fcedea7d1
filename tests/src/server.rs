//! Spawning the real server.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use crate::{
    build::server_binary,
    http::Client,
    stores::{self, TestStore},
};

/// A running `zaqar-server`, killed when dropped.
pub struct TestServer {
    binary: PathBuf,
    child: Option<Child>,
    dir: tempfile::TempDir,
    config_path: PathBuf,
    addresses: HashMap<String, String>,
    /// Dropped after the server is killed (fields drop in order after
    /// `Drop::drop`), so a throw-away database outlives its server.
    _store: TestStore,
}

/// A server run that ended.
#[derive(Debug)]
pub struct Exited {
    /// Its exit status.
    pub status: ExitStatus,
    /// What it printed on stdout.
    pub stdout: String,
    /// What it printed on stderr.
    pub stderr: String,
}

/// The configuration every test server starts from: admin mode (so health
/// is routed), the store `ZAQAR_TEST_STORE` picks (module `stores`; the
/// embedded store in the test's own directory by default), wsgi on a free
/// port.
fn base_config(store: &TestStore) -> toml::Table {
    let text = r#"
[server]
admin_mode = true
log_level = "info,zaqar_host=debug"

[drivers]
transports = ["wsgi"]

[drivers.transport.wsgi]
bind = "127.0.0.1"
port = 0

[notification]
allow_private_subscribers = true
"#;
    let mut config: toml::Table = text.parse().expect("base config is valid TOML");
    merge(
        &mut config,
        store.config.parse().expect("store config is valid TOML"),
    );
    config
}

/// Merges `overlay` into `base`, table by table; other values replace.
fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(new)) => merge(existing, new),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl TestServer {
    /// A server with the base configuration.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// A server with `overlay` (TOML) merged over the base configuration.
    pub fn start_with(overlay: &str) -> Self {
        Self::start_with_env(overlay, &[])
    }

    /// Like [`TestServer::start_with`], with extra environment variables.
    pub fn start_with_env(overlay: &str, env: &[(&str, &str)]) -> Self {
        Self::start_binary(server_binary(), overlay, env)
    }

    /// Like [`TestServer::start_with`] with an optimised build, for
    /// benchmarks.
    pub fn start_release_with(overlay: &str) -> Self {
        Self::start_binary(crate::build::server_binary_release(), overlay, &[])
    }

    /// A server on the PostgreSQL database at `uri`, which other servers
    /// may share (one service of several hosts), with `overlay` merged over
    /// the base configuration.
    pub fn start_on_postgresql(uri: &str, overlay: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = stores::shared_postgresql(uri);
        Self::start_in(dir, store, server_binary(), overlay, &[])
    }

    /// A server on the Redis key prefix `prefix`, which other servers may
    /// share (one service of several hosts), with `overlay` merged over the
    /// base configuration.
    pub fn start_on_redis(prefix: &crate::RedisPrefix, overlay: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = stores::shared_redis(prefix);
        Self::start_in(dir, store, server_binary(), overlay, &[])
    }

    fn start_binary(binary: PathBuf, overlay: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = stores::for_server(&dir.path().join("data"));
        Self::start_in(dir, store, binary, overlay, env)
    }

    /// A server with `[plugins] builtins = false` on a fresh store of kind
    /// `store` (`embedded`, `postgresql`, `redis`), every plugin its
    /// configuration selects loaded from its library in `plugins/dylibs/`
    /// (whatever `ZAQAR_TEST_PLUGINS` says), with `overlay` merged over the
    /// base configuration.
    pub fn start_from_libraries(store: &str, overlay: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = stores::named(store, &dir.path().join("data"));
        let mut config = base_config(&store);
        merge(&mut config, overlay.parse().expect("overlay is valid TOML"));
        crate::dylib_plugins::load_from_libraries(&mut config);
        Self::start_in(dir, store, server_binary(), &config.to_string(), &[])
    }

    fn start_in(
        dir: tempfile::TempDir,
        store: TestStore,
        binary: PathBuf,
        overlay: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let config_path = Self::write_config(dir.path(), &store, overlay);
        let mut server = Self {
            binary,
            child: None,
            dir,
            config_path,
            addresses: HashMap::new(),
            _store: store,
        };
        server.spawn(env);
        server
    }

    fn write_config(dir: &Path, store: &TestStore, overlay: &str) -> PathBuf {
        let mut config = base_config(store);
        let overlay: toml::Table = overlay.parse().expect("overlay is valid TOML");
        merge(&mut config, overlay);
        crate::dylib_plugins::apply(&mut config);
        let path = dir.join("zaqar.toml");
        std::fs::write(&path, config.to_string()).expect("write config");
        path
    }

    /// Runs the server with `overlay` expecting it to exit by itself (a
    /// start-up failure, or a subcommand), within 60 s.
    pub fn run_to_exit(overlay: &str, args: &[&str], env: &[(&str, &str)]) -> Exited {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = stores::for_server(&dir.path().join("data"));
        let config_path = Self::write_config(dir.path(), &store, overlay);
        let mut child = isolated(Command::new(server_binary()))
            .current_dir(dir.path())
            .arg("--config")
            .arg(&config_path)
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn zaqar-server");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(_status) = child.try_wait().expect("wait") {
                let output = child.wait_with_output().expect("output");
                return Exited {
                    status: output.status,
                    stdout: String::from_utf8_lossy(&output.stdout).into(),
                    stderr: String::from_utf8_lossy(&output.stderr).into(),
                };
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let output = child.wait_with_output().expect("output");
                panic!(
                    "zaqar-server did not exit within 60 s; stderr:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn spawn(&mut self, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("log file");
        // Relative paths a plugin defaults to (`data`) land in the test's
        // own directory.
        let mut child = isolated(Command::new(&self.binary))
            .current_dir(self.dir.path())
            .arg("--config")
            .arg(&self.config_path)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn zaqar-server");
        let stdout = child.stdout.take().expect("stdout");
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);
        let expected = self.expected_transports();
        let deadline = Instant::now() + Duration::from_secs(60);
        self.addresses.clear();
        while self.addresses.len() < expected {
            match received.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some((name, address)) = parse_listening(&line) {
                        self.addresses.insert(name, address);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = self
                        .child
                        .as_mut()
                        .and_then(|c| c.try_wait().ok().flatten())
                    {
                        panic!(
                            "zaqar-server exited during start-up ({status}):\n{}",
                            self.log()
                        );
                    }
                    if Instant::now() > deadline {
                        panic!("zaqar-server did not start within 60 s:\n{}", self.log());
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    std::thread::sleep(Duration::from_millis(200));
                    panic!(
                        "zaqar-server closed stdout during start-up:\n{}",
                        self.log()
                    );
                }
            }
        }
    }

    fn expected_transports(&self) -> usize {
        let text = std::fs::read_to_string(&self.config_path).expect("config");
        let config: toml::Table = text.parse().expect("config");
        config
            .get("drivers")
            .and_then(|d| d.get("transports"))
            .and_then(|t| t.as_array())
            .map_or(1, |t| t.len())
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `host:port` of a transport (`wsgi`, `websocket`).
    pub fn address(&self, transport: &str) -> &str {
        self.addresses
            .get(transport)
            .unwrap_or_else(|| panic!("transport {transport} is not running"))
    }

    /// `http://host:port` of the wsgi transport.
    pub fn http_url(&self) -> String {
        format!("http://{}", self.address("wsgi"))
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A client with a fresh Client-ID and project `test-project`.
    pub fn client(&self) -> Client {
        Client::new(&self.http_url())
    }

    /// The server's resident memory in bytes (Linux), for benchmarks.
    pub fn resident_bytes(&self) -> u64 {
        crate::process_stats::resident_bytes(self.pid())
    }

    /// CPU time the server has used so far (user + system, Linux), for
    /// benchmarks.
    pub fn cpu_time(&self) -> std::time::Duration {
        crate::process_stats::cpu_time(self.pid())
    }

    /// The server's CPU time so far, user and system apart (Linux).
    pub fn cpu_split(&self) -> crate::process_stats::CpuSplit {
        crate::process_stats::cpu_split(self.pid())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits for the exit (at most 30 s).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("zaqar-server ignored SIGTERM for 30 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same configuration and data.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn(&[]);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The server command without the caller's `ZAQAR_*` configuration
/// variables and log filter, so only what a test sets applies.
fn isolated(mut command: Command) -> Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ZAQAR_") {
            command.env_remove(name);
        }
    }
    command.env_remove("RUST_LOG");
    command
}

fn parse_listening(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix("zaqar-server: transport ")?;
    let (name, address) = rest.split_once(" listening on ")?;
    Some((name.to_string(), address.trim().to_string()))
}
