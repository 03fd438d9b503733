//! A real `nats-server` for the event-sink tests: started on a free port of
//! 127.0.0.1 with its own store directory, stopped (killed if the test
//! fails) when dropped; and a reader of everything a JetStream stream holds.

use async_nats::jetstream::{self, consumer::pull};
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use vigil_events::{Event, EventBox};
use vigil_events_nats::CAMERA_HEADER;

/// `nats-server` from the PATH, or where the Debian package puts it (not on
/// a regular user's PATH).
pub fn nats_server_program() -> PathBuf {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>());
    on_path
        .chain(["/usr/sbin".into(), "/usr/local/bin".into()])
        .map(|dir| dir.join("nats-server"))
        .find(|program| program.is_file())
        .unwrap_or_else(|| {
            panic!("nats-server is not installed (not on the PATH nor in /usr/sbin): run scripts/deps.sh, which installs it")
        })
}

/// Shows the sink's logs (at `RUST_LOG`, `debug` by default) in the output
/// of a failing test.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "vigil_events_nats=debug".into());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
}

/// A port of 127.0.0.1 that nothing listens on and that no other test of
/// this process has been given. The tests run in parallel and some stop
/// their server and start it again on the same port: without the record, the
/// kernel could hand that port to another test in the gap, and one test would
/// talk to (or kill) the other's server.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if given.insert(port) {
            return port;
        }
    }
}

/// A running `nats-server -js`; dropping it kills the server.
pub struct NatsServer {
    child: Child,
    port: u16,
}

impl NatsServer {
    /// Starts a server on `port` storing its streams in `store`, and waits
    /// until it accepts connections.
    pub fn start(port: u16, store: &Path) -> NatsServer {
        Self::launch(port, store, true)
    }

    /// Starts a server without JetStream (`store` only holds its log).
    pub fn start_without_jetstream(port: u16, store: &Path) -> NatsServer {
        Self::launch(port, store, false)
    }

    fn launch(port: u16, store: &Path, jetstream: bool) -> NatsServer {
        let log_path = store.with_extension(format!("{port}.log"));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&log_path).unwrap();
        // A restart appends to the same log: only what follows counts.
        let log_start = log.metadata().unwrap().len() as usize;
        let mut command = Command::new(nats_server_program());
        command.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
        if jetstream {
            command.arg("-js").arg("-sd").arg(store);
        }
        let child = command.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().expect("cannot start nats-server");
        let mut server = NatsServer { child, port };
        // Ready is what this server says in its own log, not that something
        // answers on the port: a connection probe can be answered by another
        // process, or by itself (a TCP self-connect when the kernel picks the
        // port as the probe's own source port).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read(&log_path).unwrap_or_default();
            if String::from_utf8_lossy(text.get(log_start..).unwrap_or_default()).contains("Server is ready") {
                return server;
            }
            let exited = server.child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                panic!("nats-server did not start ({exited:?}); its log:\n{}", String::from_utf8_lossy(&text));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server the way an operator would (SIGTERM: it closes its
    /// store cleanly) and waits for it to exit.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on our own child's pid, which we have not reaped yet.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "nats-server did not stop within 10 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn event(video: &str, start: u32) -> Event {
    Event {
        video: video.into(),
        start,
        end: start + 5,
        peak_frame: start + 2,
        peak_score: 1.5 + start as f32 / 7.0,
        threshold: 1.25,
        boxes: vec![EventBox { x1: 1.0, y1: 2.5, x2: 30.0, y2: 40.25, score: 0.75 }],
    }
}

/// A message of the stream: its `Nats-Msg-Id`, its camera header and the
/// event it carries.
#[derive(Debug)]
pub struct Stored {
    pub id: String,
    pub camera: String,
    pub event: Event,
}

/// Every message of `stream`, read in order by a pull consumer delivering
/// all of them, and the stream's message count.
pub fn read_stream(url: &str, stream: &str) -> (Vec<Stored>, u64) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let context = jetstream::new(client);
        let mut stream = context.get_stream(stream).await.unwrap();
        let count = stream.info().await.unwrap().state.messages;
        let consumer = stream
            .create_consumer(pull::Config { deliver_policy: jetstream::consumer::DeliverPolicy::All, ..Default::default() })
            .await
            .unwrap();
        let mut messages = consumer.fetch().max_messages(10_000).messages().await.unwrap();
        let mut stored = Vec::new();
        while let Some(message) = messages.next().await {
            let message = message.unwrap();
            let headers = message.headers.as_ref().expect("a message without headers");
            let header = |name: &str| headers.get(name).unwrap_or_else(|| panic!("no {name} header")).as_str().to_string();
            stored.push(Stored {
                id: header("Nats-Msg-Id"),
                camera: header(CAMERA_HEADER),
                event: serde_json::from_slice(&message.payload).unwrap(),
            });
        }
        (stored, count)
    })
}
