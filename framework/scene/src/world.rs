//! What moves where. Normal walkers all look alike (small upright figures
//! that differ only in shirt colour) and walk left to right along a walkway
//! at about the same speed. Each anomalous video adds one event: a fast
//! cyclist, a walker against the flow, or a cart (an object of unusual
//! shape and size).

use crate::rng::Rng;
use crate::SceneConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnomalyKind {
    /// A cyclist riding with the flow at about four times walking speed.
    FastMover,
    /// A walker, like all the others, walking right to left.
    AgainstFlow,
    /// A wide, low hand cart pushed with the flow at walking speed.
    OddShape,
}

impl AnomalyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::FastMover => "fast mover",
            AnomalyKind::AgainstFlow => "against the flow",
            AnomalyKind::OddShape => "odd shape",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Look {
    Walker { shirt: [u8; 3] },
    Cyclist,
    Cart,
}

/// One object in one frame: where its feet touch the ground.
#[derive(Debug, Clone, Copy)]
pub struct Placed {
    pub x: f32,
    pub y: f32,
    pub look: Look,
    /// Distance walked so far (drives the leg swing).
    pub stride: f32,
    pub anomalous: bool,
}

/// The walkway's feet band, as fractions of the frame height.
pub const WALKWAY: (f32, f32) = (0.38, 0.92);
pub const WALK_SPEED: (f32, f32) = (1.6, 2.2);
const FAST_SPEED: f32 = 7.5;
const SHIRTS: [[u8; 3]; 4] = [[70, 90, 140], [125, 70, 65], [70, 115, 80], [115, 115, 125]];

struct Mover {
    x: f32,
    y: f32,
    speed: f32,
    look: Look,
    walked: f32,
    anomalous: bool,
}

/// Which anomaly video `index` shows: every other video is normal.
pub fn anomaly_of(index: usize) -> Option<AnomalyKind> {
    const KINDS: [AnomalyKind; 3] = [AnomalyKind::FastMover, AnomalyKind::AgainstFlow, AnomalyKind::OddShape];
    (index % 2 == 1).then(|| KINDS[(index / 2) % 3])
}

/// The objects of every frame of one video.
pub fn simulate(config: &SceneConfig, index: usize, rng: &mut Rng) -> Vec<Vec<Placed>> {
    let (w, h) = (config.width as f32, config.height as f32);
    let lane = |rng: &mut Rng| rng.range(WALKWAY.0 * h, WALKWAY.1 * h);
    let walker = |rng: &mut Rng, x: f32| Mover {
        x,
        y: lane(rng),
        speed: rng.range(WALK_SPEED.0, WALK_SPEED.1),
        look: Look::Walker { shirt: SHIRTS[rng.below(SHIRTS.len())] },
        walked: rng.range(0.0, 20.0),
        anomalous: false,
    };
    let mut movers: Vec<Mover> = (0..config.walkers)
        .map(|_| {
            let x = rng.range(-10.0, w + 10.0);
            walker(rng, x)
        })
        .collect();

    let frames = config.frames_per_video;
    // The event starts so that it is over (or cut by the video's end)
    // after roughly 30-40 frames: at walking speed an object would
    // otherwise stay in view for most of a short video.
    let event = anomaly_of(index).map(|kind| {
        let start = match kind {
            AnomalyKind::FastMover => (frames as f32 * rng.range(0.25, 0.45)) as usize,
            _ => frames.saturating_sub(30 + rng.below(10)),
        };
        (kind, start)
    });

    let mut out = Vec::with_capacity(frames);
    for frame in 0..frames {
        if let Some((kind, start)) = event {
            if frame == start {
                let speed = rng.range(WALK_SPEED.0, WALK_SPEED.1);
                let (x, speed, look) = match kind {
                    AnomalyKind::FastMover => (-12.0, FAST_SPEED, Look::Cyclist),
                    AnomalyKind::AgainstFlow => (w + 6.0, -speed, Look::Walker { shirt: SHIRTS[rng.below(SHIRTS.len())] }),
                    AnomalyKind::OddShape => (-16.0, speed, Look::Cart),
                };
                movers.push(Mover { x, y: lane(rng), speed, look, walked: 0.0, anomalous: true });
            }
        }
        out.push(movers.iter().map(|m| Placed { x: m.x, y: m.y, look: m.look, stride: m.walked, anomalous: m.anomalous }).collect());
        for m in &mut movers {
            m.x += m.speed;
            m.walked += m.speed.abs();
        }
        // Walkers that left on the right come back on the left, on a new lane.
        for m in movers.iter_mut() {
            if !m.anomalous && m.x > w + 12.0 {
                let x = -12.0 - rng.range(0.0, 30.0);
                *m = walker(rng, x);
            }
        }
        movers.retain(|m| !m.anomalous || (m.x > -40.0 && m.x < w + 40.0));
    }
    out
}
