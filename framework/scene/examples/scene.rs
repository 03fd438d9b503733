//! Writes the default synthetic scene: `cargo run --release -p vigil-scene --example scene -- OUT [SEED]`.

fn main() {
    let mut args = std::env::args().skip(1);
    let out = args.next().unwrap_or_else(|| "scene".into());
    let seed = args.next().map(|s| s.parse().expect("SEED must be an integer")).unwrap_or(0);
    let config = vigil_scene::SceneConfig { seed, ..Default::default() };
    match vigil_scene::generate(&config, std::path::Path::new(&out)) {
        Ok(s) => {
            println!("{} videos, {} frames, {} anomalous, in {}", s.videos, s.frames, s.anomalous_frames, s.root.display());
            for e in &s.events {
                println!("  video {}: {} at frames {}..={}", e.video, e.kind.as_str(), e.first_frame, e.last_frame);
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
