//! Issue 17, events on a message engine: the NATS JetStream sink
//! (framework/events-nats) against a real `nats-server -js`, on its own and
//! behind `vigil score --events nats://...`, across broker restarts.

use async_nats::jetstream;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};
use vigil_events::{Event, EventSink};
use vigil_events_nats::{event_id, JetStreamSink, NatsSettings, DEFAULT_STREAM};
use vigil_tests::nats::*;

#[test]
fn every_event_arrives_once_across_a_broker_restart() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let port = free_port();
    let server = NatsServer::start(port, &store);
    let url = server.url();
    let mut sink = JetStreamSink::connect(NatsSettings::new(&url, "cam1")).unwrap();
    assert_eq!(sink.name(), format!("NATS JetStream {url} (vigil.events.cam1)"));
    let events: Vec<Event> = (0..60).map(|i| event("gate/north", i * 10)).collect();

    for event in &events[..20] {
        sink.emit(event).unwrap();
    }
    // Stopped with some of the first 20 events likely still in flight.
    server.stop();
    let started = Instant::now();
    for event in &events[20..40] {
        sink.emit(event).unwrap();
    }
    assert!(started.elapsed() < Duration::from_secs(1), "emit waited for the broker: {:?}", started.elapsed());
    assert!(sink.pending() >= 20, "only {} events queued while the broker is down", sink.pending());

    let server = NatsServer::start(port, &store);
    for event in &events[40..] {
        sink.emit(event).unwrap();
    }
    sink.finish().unwrap();
    assert_eq!(sink.pending(), 0);

    let (stored, count) = read_stream(&server.url(), DEFAULT_STREAM);
    assert_eq!(count, 60, "the stream holds {count} messages");
    assert_eq!(stored.len(), 60);
    let ids: BTreeSet<&str> = stored.iter().map(|s| s.id.as_str()).collect();
    let expected: BTreeSet<String> = events.iter().map(|e| event_id("cam1", e)).collect();
    assert_eq!(ids, expected.iter().map(String::as_str).collect());
    let by_id: HashMap<String, &Event> = events.iter().map(|e| (event_id("cam1", e), e)).collect();
    for s in &stored {
        assert_eq!(&s.event, by_id[&s.id], "the payload of {}", s.id);
        assert_eq!(s.camera, "cam1");
    }
    // One event in flight at a time: the stream has them in emit order.
    assert_eq!(stored.iter().map(|s| s.event.clone()).collect::<Vec<_>>(), events);
}

#[test]
fn republishing_an_event_is_deduplicated() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let port = free_port();
    let mut server = NatsServer::start(port, &store);
    let repeated = event("lobby", 1200);
    let publish = |url: String, camera: &str| {
        let mut sink = JetStreamSink::connect(NatsSettings::new(url, camera)).unwrap();
        sink.emit(&repeated).unwrap();
        sink.finish().unwrap();
    };
    // A scorer that restarts scores the same video again and emits its
    // events a second time, through a second sink; and a third time after
    // the broker restarted too (it rebuilds its duplicate window from the
    // stored messages).
    publish(server.url(), "cam1");
    publish(server.url(), "cam1");
    server.stop();
    server = NatsServer::start(port, &store);
    publish(server.url(), "cam1");
    let (stored, count) = read_stream(&server.url(), DEFAULT_STREAM);
    assert_eq!(count, 1);
    assert_eq!(stored[0].id, "cam1/lobby/1200");
    assert_eq!(stored[0].event, repeated);

    // The same event seen by another camera is another event.
    publish(server.url(), "cam2");
    let (stored, count) = read_stream(&server.url(), DEFAULT_STREAM);
    assert_eq!(count, 2);
    assert_eq!((stored[1].id.as_str(), stored[1].camera.as_str()), ("cam2/lobby/1200", "cam2"));
}

#[test]
fn connecting_to_nothing_fails_with_a_clear_error() {
    init_logs();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let error = JetStreamSink::connect(NatsSettings::new(&url, "cam1")).err().expect("connected to nothing");
    assert!(started.elapsed() < Duration::from_secs(6), "took {:?} to fail", started.elapsed());
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(error.to_string().starts_with(&format!("cannot reach NATS at {url}: ")), "{error}");
}

#[test]
fn finish_says_how_many_events_the_broker_never_acknowledged() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start(free_port(), &dir.path().join("store"));
    let url = server.url();
    let mut finished =
        JetStreamSink::connect(NatsSettings { finish_timeout: Duration::from_secs(1), ..NatsSettings::new(&url, "cam1") }).unwrap();
    let dropped =
        JetStreamSink::connect(NatsSettings { finish_timeout: Duration::from_millis(500), ..NatsSettings::new(&url, "cam2") }).unwrap();
    server.stop();
    for start in 0..3 {
        finished.emit(&event("v", start)).unwrap();
    }
    let started = Instant::now();
    let error = finished.finish().unwrap_err();
    assert_eq!(error.to_string(), format!("3 events were not delivered to NATS at {url} within 1 s"));
    assert!(started.elapsed() < Duration::from_secs(3), "finish took {:?}", started.elapsed());
    assert!(finished.emit(&event("v", 9)).is_err(), "an event emitted after finish is refused");

    // Dropped without finish, a sink gives up after its finish timeout too.
    let mut dropped = dropped;
    dropped.emit(&event("v", 0)).unwrap();
    let started = Instant::now();
    drop(dropped);
    assert!(started.elapsed() < Duration::from_secs(3), "drop took {:?}", started.elapsed());
}

#[test]
fn a_full_buffer_makes_emit_wait_for_the_broker() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let port = free_port();
    let server = NatsServer::start(port, &store);
    let mut sink = JetStreamSink::connect(NatsSettings { buffer_events: 3, ..NatsSettings::new(server.url(), "cam1") }).unwrap();
    server.stop();
    for start in 0..3 {
        sink.emit(&event("v", start)).unwrap();
    }
    let emitter = std::thread::spawn(move || {
        for start in 3..5 {
            sink.emit(&event("v", start)).unwrap();
        }
        sink
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!emitter.is_finished(), "emit did not wait for room in a full buffer");
    let server = NatsServer::start(port, &store);
    let mut sink = emitter.join().unwrap();
    sink.finish().unwrap();
    let (stored, _) = read_stream(&server.url(), DEFAULT_STREAM);
    assert_eq!(stored.iter().map(|s| s.event.start).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
}

#[test]
fn a_server_without_jetstream_or_a_stream_without_the_subject_is_refused() {
    init_logs();
    let dir = tempfile::tempdir().unwrap();
    let server = NatsServer::start_without_jetstream(free_port(), &dir.path().join("plain"));
    let error = JetStreamSink::connect(NatsSettings::new(server.url(), "cam1")).err().expect("connected without JetStream");
    let text = error.to_string();
    assert!(text.starts_with(&format!("cannot get or create the JetStream stream VIGIL_EVENTS on NATS at {}: ", server.url())), "{text}");
    assert!(text.ends_with("(does the server run JetStream, nats-server -js?)"), "{text}");

    let server = NatsServer::start(free_port(), &dir.path().join("store"));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let context = jetstream::new(async_nats::connect(server.url()).await.unwrap());
        let config = jetstream::stream::Config { name: "OTHER".into(), subjects: vec!["other.>".into()], ..Default::default() };
        context.create_stream(config).await.unwrap();
    });
    let settings = NatsSettings { stream: "OTHER".into(), ..NatsSettings::new(server.url(), "cam1") };
    let error = JetStreamSink::connect(settings).err().expect("connected to a stream without the camera's subject");
    assert_eq!(
        error.to_string(),
        format!(
            "the JetStream stream OTHER on NATS at {} takes the subjects [\"other.>\"], not vigil.events.cam1: \
             give another stream name, or add vigil.events.> to its subjects",
            server.url()
        )
    );
}

/// `vigil score` of a manifest's camera whose `[events] nats` is a live
/// JetStream: a live stream (the camera's scene served in real time over
/// UDP, one event per 1.6 s loop of it) is scored for 8 s; the broker is
/// stopped once the first event is out and started again 2 s later, while
/// scoring goes on and the next event closes. The stream
/// then holds every event of events.jsonl exactly once, under the camera's
/// subject and message ids.
#[test]
fn vigil_score_publishes_every_event_once_across_a_broker_restart() {
    use vigil_tests::stream::{encode, free_udp_port, have_ffmpeg, serve, stop};
    if !have_ffmpeg() {
        vigil_stage_testkit::skip("the `ffmpeg` program is not installed (scripts/deps.sh installs it)");
        return;
    }
    init_logs();
    let work = std::path::PathBuf::from(vigil_stage_testkit::context("nats-score").work_dir.to_string());
    let (port, store) = (free_port(), work.join("nats-store"));
    let server = NatsServer::start(port, &store);
    let f = vigil_tests::fleet::fleet(&work.join("fleet"), 1, &format!("[events]\nnats = \"{}\"\n", server.url()));
    let models = f.work.join("models");
    vigil_tests::succeeded(&f.vigil(&["fit", "--manifest", f.manifest.to_str().unwrap(), "--out", models.to_str().unwrap()], &[]));
    let video = f.work.join("scene.ts");
    encode(&f.scenes[0].frames_root.join("01"), &video);
    let url = format!("udp://127.0.0.1:{}", free_udp_port());
    let manifest = std::fs::read_to_string(&f.manifest).unwrap();
    let live = f.scenes[0].frames_root.display().to_string();
    std::fs::write(&f.manifest, manifest.replace(&format!("live = {live:?}"), &format!("live = {url:?}"))).unwrap();

    let sender = serve(&video, &url);
    std::thread::sleep(Duration::from_millis(300));
    let scores = f.work.join("scores");
    // At 1.0 each loop of the scene's anomaly is one event (5 in 8 s).
    let args = ["score", "--manifest", f.manifest.to_str().unwrap(), "--models", models.to_str().unwrap(), "--index", "0"];
    let extra = ["--out", scores.to_str().unwrap(), "--threshold", "1", "--set", "stage.decode.options.duration_s=8"];
    let scoring = std::process::Command::new(vigil_tests::vigil_bin())
        .args(args.iter().chain(&extra))
        .env("VIGIL_CACHE_DIR", f.work.join("cache"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start vigil score");
    let events_file =
        || std::fs::read_dir(scores.join("cam-0")).ok()?.next()?.ok().map(|run| run.path().join("events.jsonl")).filter(|p| p.is_file());
    let started = Instant::now();
    while events_file().and_then(|p| std::fs::read_to_string(p).ok()).is_none_or(|text| text.is_empty()) {
        assert!(started.elapsed() < Duration::from_secs(20), "no event within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    server.stop();
    let stopped_at = started.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let server = NatsServer::start(port, &store);
    let output = scoring.wait_with_output().expect("wait for vigil score");
    stop(sender);
    let log = vigil_tests::text(&output.stderr);
    assert!(output.status.success(), "{log}");

    let written: Vec<Event> = std::fs::read_to_string(events_file().unwrap())
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("an event per line"))
        .collect();
    let last_start = written.last().map_or(0, |e| e.start);
    assert!(written.len() >= 3, "only {} events: {log}", written.len());
    let (stored, count) = read_stream(&server.url(), DEFAULT_STREAM);
    let ids: Vec<&str> = stored.iter().map(|s| s.id.as_str()).collect();
    let expected: Vec<String> = written.iter().map(|e| event_id("cam-0", e)).collect();
    assert_eq!(count as usize, written.len(), "the stream holds each event of events.jsonl once");
    assert_eq!(ids, expected.iter().map(String::as_str).collect::<Vec<_>>(), "in order, under the camera's ids");
    assert!(stored.iter().all(|s| s.camera == "cam-0"));
    assert_eq!(stored.iter().map(|s| s.event.clone()).collect::<Vec<_>>(), written);
    println!(
        "{} events (the last starting at frame {last_start}); broker stopped {:.1} s into scoring for 2 s; all delivered once",
        written.len(),
        stopped_at.as_secs_f64()
    );
}
