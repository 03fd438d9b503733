//! Live streams for the tests: a frame folder encoded as MPEG-TS with the
//! `ffmpeg` program (scripts/deps.sh installs it), served in real time over
//! UDP on the loopback interface.

use std::io::{BufRead, BufReader, Read};
use std::net::UdpSocket;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Whether the `ffmpeg` program runs.
pub fn have_ffmpeg() -> bool {
    Command::new("ffmpeg").arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

/// Encodes the frame folder `frames` as MPEG-2 in MPEG-TS at 25 frames/s,
/// a keyframe every 5 frames so a receiver that joins late starts soon.
pub fn encode(frames: &Path, out: &Path) {
    let pattern = frames.join("*.png");
    let status = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-framerate", "25", "-pattern_type", "glob", "-i"])
        .arg(&pattern)
        .args(["-c:v", "mpeg2video", "-q:v", "2", "-g", "5"])
        .arg(out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not encode {}", pattern.display());
}

/// Serves `video` looped in real time to `url` until killed.
pub fn serve(video: &Path, url: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-loglevel", "error", "-re", "-stream_loop", "-1", "-i"])
        .arg(video)
        .args(["-c", "copy", "-f", "mpegts", url])
        .stdin(Stdio::null())
        .spawn()
        .expect("start ffmpeg")
}

pub fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A UDP port nobody uses right now.
pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).expect("bind a UDP socket").port()
}

/// A running command whose stderr is read as it comes, so that a test can
/// act on what it has said (a stream's sender stopped or restarted when the
/// scorer reports a reconnection) instead of on a clock that a loaded
/// machine does not keep.
pub struct Watched {
    child: Child,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<Vec<u8>>>,
}

impl Watched {
    /// Starts `command` with stdout and stderr piped.
    pub fn spawn(mut command: Command) -> Watched {
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start the command");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let stderr_pipe = child.stderr.take().expect("piped stderr");
        let stderr = Arc::new(Mutex::new(String::new()));
        let shared = stderr.clone();
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                let mut text = shared.lock().unwrap_or_else(|e| e.into_inner());
                text.push_str(&line);
                text.push('\n');
            }
            Vec::new()
        });
        let out_reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = stdout.read_to_end(&mut bytes);
            bytes
        });
        Watched { child, stderr, readers: vec![out_reader, err_reader] }
    }

    /// Waits until stderr contains `needle`; panics with what it said if
    /// that takes longer than `limit` or the command ends first.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) {
        let started = Instant::now();
        loop {
            if self.stderr.lock().unwrap_or_else(|e| e.into_inner()).contains(needle) {
                return;
            }
            let ended = self.child.try_wait().expect("poll the command").is_some();
            assert!(
                !ended && started.elapsed() < limit,
                "waited {:.0} s for `{needle}`{}; stderr so far:\n{}",
                started.elapsed().as_secs_f64(),
                if ended { " but the command ended" } else { "" },
                self.stderr.lock().unwrap_or_else(|e| e.into_inner())
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the command to end and returns all it printed.
    pub fn finish(mut self) -> Output {
        let status = self.child.wait().expect("wait for the command");
        let mut readers = self.readers.drain(..);
        let stdout = readers.next().expect("stdout reader").join().expect("read stdout");
        readers.next().expect("stderr reader").join().expect("read stderr");
        let stderr = std::mem::take(&mut *self.stderr.lock().unwrap_or_else(|e| e.into_inner())).into_bytes();
        Output { status, stdout, stderr }
    }
}
