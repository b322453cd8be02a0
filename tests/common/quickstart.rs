//! The example binaries and the bench server, started as a user would
//! start them.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

/// An example binary, built by `cargo build --examples` (scripts/test
/// does that first).
pub fn binary(name: &str) -> PathBuf {
    built(&target_dir().join("examples").join(name))
}

/// The bench server (`benches/server`), built by `cargo build --workspace
/// --bins` (scripts/test does that first).
pub fn bench_server() -> PathBuf {
    built(&target_dir().join("bench_server"))
}

/// A binary of the workspace (`tollgate` with feature `cli`), built by
/// `cargo build --workspace --bins --all-features` (scripts/test does that
/// first).
pub fn workspace_binary(name: &str) -> PathBuf {
    built(&target_dir().join(name))
}

/// `target/debug`, where this test binary's `deps/` lives.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf()
}

fn built(bin: &std::path::Path) -> PathBuf {
    assert!(
        bin.exists(),
        "{} is missing: build it first (scripts/test does)",
        bin.display()
    );
    bin.to_path_buf()
}

/// An empty directory of this test process for `name` (removed first if
/// a run before left it).
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running quickstart server; killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    /// Every line it printed after the first.
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// The quickstart with its opt-in password grant on: most tests sign
    /// the demo user in with one request, as `curl` does. `env` may turn
    /// it off again.
    pub fn start(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let mut with_password = vec![("TOLLGATE_DEMO_PASSWORD_GRANT", "on")];
        with_password.extend_from_slice(env);
        Self::as_shipped(data_dir, &with_password)
    }

    /// The quickstart with only `env` over its defaults (no password
    /// grant: users sign in through `/authorize`).
    pub fn as_shipped(data_dir: &std::path::Path, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary("quickstart"));
        command
            .env("TOLLGATE_DATA_DIR", data_dir)
            .env_remove("DATABASE_URL")
            .env_remove("TOLLGATE_DEMO_PASSWORD_GRANT")
            .envs(env.iter().copied());
        Self::spawn(command)
    }

    /// Another example that prints `... listening on URL` first.
    pub fn example(name: &str) -> Self {
        Self::example_with(name, &[])
    }

    /// Another example, with `env` set.
    pub fn example_with(name: &str, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary(name));
        command.envs(env.iter().copied());
        Self::spawn(command)
    }

    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .env("TOLLGATE_ADDR", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        // Keep reading, so the server never writes into a closed pipe.
        let output = std::sync::Arc::<std::sync::Mutex<Vec<String>>>::default();
        let lines = std::sync::Arc::clone(&output);
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let base = first
            .trim()
            .split_once(" listening on ")
            .map(|(_, url)| url.to_owned())
            .unwrap_or_else(|| panic!("unexpected first line: {first:?}"));
        Self {
            child,
            base,
            output,
        }
    }

    /// Waits (at most 5 s) for an output line containing `needle`.
    pub fn wait_for_line(&self, needle: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            if let Some(l) = self
                .output
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
            {
                return l.clone();
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(5),
                "no line with {needle:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    /// The server process's peak resident memory so far (`VmHWM`), in
    /// bytes.
    pub fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kib * 1024
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
