//! The one process supervisor of xtask: `up`, the bench's stack and
//! deploy-check's smoke run start nats-server and the services with it.
//!
//! A [`Supervisor`] spawns named processes with their arguments and
//! environment, sends each line of their output to our stdout (prefixed
//! with the name) or to a log file, picks values such as a bound address
//! out of their start-up log lines ([`Watch`]), waits for readiness, and
//! stops the processes — the services together, then the first started
//! (the broker); SIGTERM, a grace period, then kill — when dropped or on
//! Ctrl-C.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};

/// How long a process gets to stop after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(10);

/// Every live supervisor's processes, for the Ctrl-C handler.
static SUPERVISORS: Mutex<Vec<Weak<Mutex<Vec<Process>>>>> = Mutex::new(Vec::new());
/// Set once Ctrl-C (or SIGTERM) arrived.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Set while [`Supervisor::run_until_interrupted`] waits: it then stops the
/// processes itself and returns normally.
static WAITING: AtomicBool = AtomicBool::new(false);

/// Where a process's output (stdout and stderr) goes.
pub(crate) enum Output {
    /// To our stdout, each line prefixed with the process's name.
    Prefixed,
    /// Into this file (created or truncated), as it comes.
    File(PathBuf),
}

/// A start-up log line to pick a value out of, e.g. the address a service
/// bound when it was given port 0.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Watch {
    /// Text the line contains (an event's message, say).
    line: String,
    /// The value follows the first of these the line contains.
    after: Vec<String>,
}

impl Watch {
    /// The string field `key` of our services' log event `message`, in
    /// their JSON (`"key":"value"`) or text (` key="value"`) format.
    pub(crate) fn field(message: &str, key: &str) -> Watch {
        Watch {
            line: message.to_owned(),
            after: vec![format!("\"{key}\":\""), format!(" {key}=\"")],
        }
    }

    /// The word after `text`, in a line containing it.
    pub(crate) fn after(text: &str) -> Watch {
        Watch {
            line: text.to_owned(),
            after: vec![text.to_owned()],
        }
    }

    fn value_in(&self, line: &str) -> Option<String> {
        if !line.contains(&self.line) {
            return None;
        }
        self.after.iter().find_map(|marker| {
            let start = line.find(marker.as_str())? + marker.len();
            let rest = line.get(start..)?;
            let end = rest
                .find(|c: char| c == '"' || c == ',' || c == '}' || c.is_whitespace())
                .unwrap_or(rest.len());
            Some(rest[..end].to_owned()).filter(|value| !value.is_empty())
        })
    }
}

/// The values a process's watched lines gave, as they arrive.
struct Watched {
    watches: Vec<Watch>,
    values: Mutex<Vec<Option<String>>>,
    changed: Condvar,
}

impl Watched {
    fn see(&self, line: &str) {
        let Ok(mut values) = self.values.lock() else {
            return;
        };
        for (watch, value) in self.watches.iter().zip(values.iter_mut()) {
            if value.is_none() {
                *value = watch.value_in(line);
            }
        }
        self.changed.notify_all();
    }
}

/// One supervised process.
struct Process {
    name: String,
    child: Child,
    watched: Arc<Watched>,
    /// Whether its output goes to our stdout (then stopping is announced).
    prefixed: bool,
}

/// Where the lines of one output stream go.
#[derive(Clone)]
enum Sink {
    Prefixed(String),
    File(Arc<Mutex<File>>),
}

impl Sink {
    fn write(&self, line: &str) {
        match self {
            Sink::Prefixed(prefix) => println!("{prefix}{line}"),
            Sink::File(file) => {
                if let Ok(mut file) = file.lock() {
                    let _ = writeln!(file, "{line}");
                }
            }
        }
    }
}

/// Processes started together, stopped in reverse order on drop or Ctrl-C.
pub(crate) struct Supervisor {
    processes: Arc<Mutex<Vec<Process>>>,
}

impl Supervisor {
    /// A supervisor with no process yet. The first one installs the Ctrl-C
    /// handler: it stops every supervisor's processes, then exits with 130
    /// (unless [`Supervisor::run_until_interrupted`] is waiting for it).
    pub(crate) fn new() -> anyhow::Result<Supervisor> {
        static HANDLER: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
        HANDLER
            .get_or_init(|| ctrlc::set_handler(on_interrupt).map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| anyhow::anyhow!("installing the Ctrl-C handler: {e}"))?;
        let processes = Arc::new(Mutex::new(Vec::new()));
        lock(&SUPERVISORS).push(Arc::downgrade(&processes));
        Ok(Supervisor { processes })
    }

    /// Starts `cmd` as `name` (unique among this supervisor's processes),
    /// with its output sent to `output` and the values of `watch` picked
    /// from it (see [`Supervisor::logged`]).
    pub(crate) fn spawn(
        &self,
        name: &str,
        mut cmd: Command,
        output: Output,
        watch: &[Watch],
    ) -> anyhow::Result<()> {
        // Spawning under the lock: the Ctrl-C handler holds it until we
        // exit, so no process starts after it stopped the others.
        let mut processes = lock(&self.processes);
        ensure!(
            !INTERRUPTED.load(Ordering::SeqCst),
            "interrupted before starting {name}"
        );
        let (sink, prefixed) = match output {
            Output::Prefixed => (Sink::Prefixed(format!("[{name:>11}] ")), true),
            Output::File(path) => {
                let file =
                    File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                (Sink::File(Arc::new(Mutex::new(file))), false)
            }
        };
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {name} ({cmd:?})"))?;
        let watched = Arc::new(Watched {
            watches: watch.to_vec(),
            values: Mutex::new(vec![None; watch.len()]),
            changed: Condvar::new(),
        });
        let streams = [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ];
        for stream in streams.into_iter().flatten() {
            let (sink, watched) = (sink.clone(), watched.clone());
            std::thread::spawn(move || pump(stream, &sink, &watched));
        }
        processes.push(Process {
            name: name.to_owned(),
            child,
            watched,
            prefixed,
        });
        Ok(())
    }

    /// Waits (at most `timeout`) for the value `watch` (given to
    /// [`Supervisor::spawn`]) picks out of `name`'s output, failing early if
    /// any process exits.
    pub(crate) fn logged(
        &self,
        name: &str,
        watch: &Watch,
        timeout: Duration,
    ) -> anyhow::Result<String> {
        let watched = lock(&self.processes)
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.watched.clone())
            .with_context(|| format!("no process {name}"))?;
        let index = watched
            .watches
            .iter()
            .position(|w| w == watch)
            .with_context(|| format!("{name} was not started watching `{}`", watch.line))?;
        let deadline = Instant::now() + timeout;
        loop {
            {
                let values = lock(&watched.values);
                if let Some(value) = values.get(index).cloned().flatten() {
                    return Ok(value);
                }
                // Woken by each line; the timeout lets us notice an exit.
                let _ = watched
                    .changed
                    .wait_timeout(values, Duration::from_millis(100));
            }
            self.check_alive()?;
            ensure!(
                Instant::now() < deadline,
                "{name} did not log `{}` within {timeout:?}",
                watch.line
            );
        }
    }

    /// The address `name` logged by `watch`.
    pub(crate) fn logged_addr(
        &self,
        name: &str,
        watch: &Watch,
        timeout: Duration,
    ) -> anyhow::Result<SocketAddr> {
        let value = self.logged(name, watch, timeout)?;
        value
            .parse()
            .with_context(|| format!("{name} logged `{value}`, not an address"))
    }

    /// Polls `ok` every 100 ms until it holds; fails after `timeout` or as
    /// soon as any process exits.
    pub(crate) fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        mut ok: impl FnMut() -> bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        while !ok() {
            self.check_alive()?;
            ensure!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }

    /// Waits until `addr` accepts TCP connections (the port readiness of
    /// `name`).
    pub(crate) fn wait_for_port(
        &self,
        name: &str,
        addr: SocketAddr,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        self.wait_until(&format!("{name} to listen on {addr}"), timeout, || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        })
    }

    /// Fails naming the first process that has exited.
    pub(crate) fn check_alive(&self) -> anyhow::Result<()> {
        for process in lock(&self.processes).iter_mut() {
            if let Some(status) = process.child.try_wait()? {
                bail!("{} exited unexpectedly: {status}", process.name);
            }
        }
        Ok(())
    }

    /// Returns when Ctrl-C arrives (`Ok`) or a process exits (`Err`); the
    /// processes are stopped when the supervisor is dropped.
    pub(crate) fn run_until_interrupted(&self) -> anyhow::Result<()> {
        WAITING.store(true, Ordering::SeqCst);
        while !INTERRUPTED.load(Ordering::SeqCst) {
            self.check_alive()?;
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Stops the process started as `name`, if it runs.
    pub(crate) fn stop(&self, name: &str) {
        let stopped = {
            let mut processes = lock(&self.processes);
            match processes.iter().position(|p| p.name == name) {
                Some(at) => vec![processes.remove(at)],
                None => Vec::new(),
            }
        };
        stop_all(stopped);
    }

    /// Stops every process (see `stop_all`).
    pub(crate) fn stop_all(&self) {
        stop_all(std::mem::take(&mut *lock(&self.processes)));
    }

    /// The name and process id of every running process.
    pub(crate) fn pids(&self) -> Vec<(String, u32)> {
        lock(&self.processes)
            .iter()
            .map(|p| (p.name.clone(), p.child.id()))
            .collect()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Locks `mutex`, recovering it from a panicked holder (the data is a list
/// of processes, always valid).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Sends every line of `stream` to `sink` and past `watched`. Lines are read
/// as bytes: a line that is not UTF-8 must not stop the reading, or the
/// process would block on a full pipe.
fn pump(stream: Box<dyn Read + Send>, sink: &Sink, watched: &Watched) {
    let mut reader = BufReader::new(stream);
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        match reader.read_until(b'\n', &mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buffer);
                let line = line.trim_end_matches(['\n', '\r']);
                watched.see(line);
                sink.write(line);
            }
        }
    }
}

/// Stops `processes`: every one but the first at once (SIGTERM, up to
/// [`GRACE`] for all of them together to exit, then kill), then the first
/// (the broker, which the others drain into) the same way. One at a time in
/// reverse order made a stop take the sum of every service's drain.
fn stop_all(mut processes: Vec<Process>) {
    if processes.iter().any(|p| p.prefixed) {
        println!("Stopping...");
    }
    let first = (!processes.is_empty()).then(|| processes.remove(0));
    stop_together(processes);
    stop_together(first.into_iter().collect());
}

/// SIGTERM to each of `processes`, then up to [`GRACE`] for them all to
/// exit; the ones still running are killed.
fn stop_together(mut processes: Vec<Process>) {
    for process in &mut processes {
        if matches!(process.child.try_wait(), Ok(None)) {
            terminate(&process.child);
        }
    }
    let deadline = Instant::now() + GRACE;
    while !processes.is_empty() {
        processes.retain_mut(|process| match process.child.try_wait() {
            Ok(Some(_)) | Err(_) => false,
            Ok(None) if Instant::now() >= deadline => {
                eprintln!(
                    "{} did not stop within {} s; killing it",
                    process.name,
                    GRACE.as_secs()
                );
                let _ = process.child.kill();
                let _ = process.child.wait();
                false
            }
            Ok(None) => true,
        });
        if !processes.is_empty() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Asks `child` to stop as a signal from an operator would.
fn terminate(child: &Child) {
    #[cfg(unix)]
    {
        // `kill`, not libc: the workspace forbids unsafe code.
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
    }
    #[cfg(not(unix))]
    let _ = child;
}

/// The Ctrl-C (and SIGTERM) handler.
fn on_interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
    if WAITING.load(Ordering::SeqCst) {
        return;
    }
    let supervisors: Vec<_> = lock(&SUPERVISORS)
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    // Newest first, each one's processes in reverse order; the locks stay
    // held until we exit, so nothing starts meanwhile.
    let mut guards = Vec::new();
    for processes in supervisors.iter().rev() {
        let mut guard = lock(processes);
        stop_all(std::mem::take(&mut *guard));
        guards.push(guard);
    }
    std::process::exit(130);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn watches_pick_values_out_of_json_text_and_plain_lines() {
        let watch = Watch::field("Gateway listening.", "http_addr");
        let json = r#"{"timestamp":"t","level":"INFO","message":"Gateway listening.","http_addr":"127.0.0.1:4321"}"#;
        assert_eq!(watch.value_in(json).as_deref(), Some("127.0.0.1:4321"));
        let text = r#"t  INFO gateway: Gateway listening. http_addr="127.0.0.1:4321""#;
        assert_eq!(watch.value_in(text).as_deref(), Some("127.0.0.1:4321"));
        let other = r#"{"message":"Gateway built.","http_addr":"127.0.0.1:4321"}"#;
        assert_eq!(watch.value_in(other), None);

        let addr = Watch::field("Admin server listening.", "addr");
        let admin = r#"{"message":"Admin server listening.","admin_addr":"127.0.0.1:1"}"#;
        assert_eq!(addr.value_in(admin), None, "a longer key is another field");

        let nats = Watch::after("Listening for client connections on ");
        let line = "[1] 2026/01/01 00:00:00.000000 [INF] Listening for client connections on 127.0.0.1:40123";
        assert_eq!(nats.value_in(line).as_deref(), Some("127.0.0.1:40123"));
    }

    #[test]
    fn processes_are_watched_and_stopped() {
        let supervisor = Supervisor::new().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo 'ready at 127.0.0.1:9'; exec sleep 30"]);
        let watch = Watch::after("ready at ");
        supervisor
            .spawn(
                "sleeper",
                cmd,
                Output::Prefixed,
                std::slice::from_ref(&watch),
            )
            .unwrap();
        let addr = supervisor
            .logged_addr("sleeper", &watch, Duration::from_secs(10))
            .unwrap();
        assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], 9)));
        supervisor.check_alive().unwrap();
        let started = Instant::now();
        drop(supervisor);
        assert!(started.elapsed() < GRACE, "SIGTERM stops it at once");
    }

    #[test]
    fn services_stop_together_and_the_broker_last() {
        // Each "service" notes its SIGTERM, then waits (a bounded while)
        // for the others' before it exits, as a draining service takes a
        // while: stopped one at a time, each would wait in vain and the
        // log would show an exit before the next SIGTERM.
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let supervisor = Supervisor::new().unwrap();
        let script = |name: &str, wait_for: usize| {
            let mut cmd = Command::new("sh");
            cmd.args([
                "-c",
                &format!(
                    "trap 'echo term {name} >> {log}; i=0; \
                     while [ $(grep -c term {log}) -lt {wait_for} ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; \
                     echo exit {name} >> {log}; exit 0' TERM; \
                     while true; do sleep 0.05; done",
                    log = log.display()
                ),
            ]);
            cmd
        };
        supervisor
            .spawn("broker", script("broker", 1), Output::Prefixed, &[])
            .unwrap();
        for name in ["a", "b", "c"] {
            supervisor
                .spawn(name, script(name, 3), Output::Prefixed, &[])
                .unwrap();
        }
        // Let the shells install their traps.
        std::thread::sleep(Duration::from_millis(300));
        drop(supervisor);
        let log = std::fs::read_to_string(&log).unwrap();
        let lines: Vec<&str> = log.lines().collect();
        let first_exit = lines.iter().position(|l| l.starts_with("exit")).unwrap();
        let services_termed = lines[..first_exit]
            .iter()
            .filter(|l| l.starts_with("term") && !l.ends_with("broker"))
            .count();
        assert_eq!(
            services_termed, 3,
            "every service got SIGTERM before any exited: {lines:?}"
        );
        assert_eq!(lines.last(), Some(&"exit broker"), "{lines:?}");
        let broker_termed = lines.iter().position(|l| *l == "term broker").unwrap();
        assert_eq!(
            lines[..broker_termed]
                .iter()
                .filter(|l| l.starts_with("exit"))
                .count(),
            3,
            "the broker is stopped after the services exited: {lines:?}"
        );
    }

    #[test]
    fn an_exited_process_fails_the_wait() {
        let supervisor = Supervisor::new().unwrap();
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "exit 3"]);
        supervisor
            .spawn("quitter", cmd, Output::Prefixed, &[])
            .unwrap();
        let error = supervisor
            .wait_until("nothing", Duration::from_secs(10), || false)
            .unwrap_err();
        assert!(error.to_string().contains("quitter exited"), "{error}");
    }
}
