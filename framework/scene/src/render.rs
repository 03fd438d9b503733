//! Draws a frame: the fixed background (grass, a paved walkway, planters),
//! then the objects back to front. An owner buffer records which pixels an
//! anomalous object ends up covering: that is the frame's pixel mask.

use crate::rng::Rng;
use crate::world::{Look, Placed, WALKWAY};

pub struct Frame {
    pub rgb: Vec<u8>,
    /// 255 where an anomalous object is visible.
    pub mask: Vec<u8>,
}

struct Canvas<'a> {
    w: i32,
    h: i32,
    frame: &'a mut Frame,
    anomalous: bool,
}

impl Canvas<'_> {
    fn put(&mut self, x: i32, y: i32, color: [u8; 3]) {
        if x < 0 || y < 0 || x >= self.w || y >= self.h {
            return;
        }
        let i = (y * self.w + x) as usize;
        self.frame.rgb[i * 3..i * 3 + 3].copy_from_slice(&color);
        self.frame.mask[i] = if self.anomalous { 255 } else { 0 };
    }

    /// Pixels whose centres fall in [x0, x1) x [y0, y1).
    fn rect(&mut self, x0: f32, y0: f32, x1: f32, y1: f32, color: [u8; 3]) {
        for y in (y0 - 0.5).ceil() as i32..(y1 - 0.5).ceil() as i32 {
            for x in (x0 - 0.5).ceil() as i32..(x1 - 0.5).ceil() as i32 {
                self.put(x, y, color);
            }
        }
    }

    /// Pixels whose centres lie between radii `inner` and `outer`.
    fn disc(&mut self, cx: f32, cy: f32, outer: f32, inner: f32, color: [u8; 3]) {
        for y in (cy - outer).floor() as i32..=(cy + outer).ceil() as i32 {
            for x in (cx - outer).floor() as i32..=(cx + outer).ceil() as i32 {
                let d = ((x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2)).sqrt();
                if d <= outer && d >= inner {
                    self.put(x, y, color);
                }
            }
        }
    }
}

const SKIN: [u8; 3] = [205, 165, 135];
const TROUSERS: [u8; 3] = [45, 45, 55];
const DARK: [u8; 3] = [30, 30, 30];

fn draw(c: &mut Canvas, o: &Placed) {
    let (x, y) = (o.x, o.y);
    match o.look {
        Look::Walker { shirt } => {
            let swing = (o.stride * 0.45).sin() * 1.5;
            c.rect(x - 2.5 + swing, y - 6.0, x - 0.5 + swing, y, TROUSERS);
            c.rect(x + 0.5 - swing, y - 6.0, x + 2.5 - swing, y, TROUSERS);
            c.rect(x - 3.0, y - 13.0, x + 3.0, y - 6.0, shirt);
            c.disc(x, y - 15.5, 2.4, 0.0, SKIN);
        }
        Look::Cyclist => {
            c.disc(x - 6.0, y - 3.5, 3.5, 2.2, DARK);
            c.disc(x + 6.0, y - 3.5, 3.5, 2.2, DARK);
            c.rect(x - 6.0, y - 5.0, x + 6.0, y - 4.0, [180, 30, 30]);
            c.rect(x - 1.0, y - 8.0, x + 1.0, y - 4.0, [180, 30, 30]);
            c.rect(x - 2.0, y - 16.0, x + 3.0, y - 8.0, [235, 200, 40]);
            c.disc(x + 2.0, y - 18.0, 2.4, 0.0, SKIN);
        }
        Look::Cart => {
            c.rect(x - 13.0, y - 14.0, x + 13.0, y - 3.0, DARK);
            c.rect(x - 12.0, y - 13.0, x + 12.0, y - 4.0, [160, 115, 55]);
            c.rect(x - 12.0, y - 9.0, x + 12.0, y - 8.0, [120, 85, 40]);
            c.disc(x - 8.0, y - 2.0, 2.2, 0.0, DARK);
            c.disc(x + 8.0, y - 2.0, 2.2, 0.0, DARK);
        }
    }
}

/// The fixed background of the scene (the same for every video).
pub fn background(w: u32, h: u32, rng: &mut Rng) -> Vec<u8> {
    let (w, h) = (w as i32, h as i32);
    let top = (WALKWAY.0 * h as f32) as i32 - 20;
    let bottom = (WALKWAY.1 * h as f32) as i32 + 4;
    let mut rgb = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let noise = rng.range(-7.0, 7.0);
            let base: [f32; 3] = if y < top || y > bottom {
                [88.0, 112.0, 78.0]
            } else if (x + (y / 12) * 6) % 24 == 0 || (y - top) % 12 == 0 {
                [128.0, 124.0, 116.0]
            } else {
                [152.0, 147.0, 137.0]
            };
            rgb.extend(base.map(|v| (v + noise).clamp(0.0, 255.0) as u8));
        }
    }
    let mut frame = Frame { rgb, mask: vec![0; (w * h) as usize] };
    let mut canvas = Canvas { w, h, frame: &mut frame, anomalous: false };
    // Planters on the grass above the walkway and a bench below it.
    for i in 0..4 {
        let cx = (i as f32 + 0.5) * w as f32 / 4.0 + rng.range(-10.0, 10.0);
        canvas.disc(cx, top as f32 / 2.0, 7.0, 0.0, [52, 78, 48]);
        canvas.disc(cx, top as f32 / 2.0, 8.5, 7.0, [95, 90, 85]);
    }
    if bottom + 10 < h {
        let x = rng.range(0.2, 0.6) * w as f32;
        canvas.rect(x, bottom as f32 + 5.0, x + 30.0, bottom as f32 + 9.0, [110, 80, 50]);
    }
    frame.rgb
}

/// Draws `objects` (nearest last) over `background`.
pub fn render(background: &[u8], w: u32, h: u32, objects: &[Placed]) -> Frame {
    let mut frame = Frame { rgb: background.to_vec(), mask: vec![0; (w * h) as usize] };
    let mut order: Vec<&Placed> = objects.iter().collect();
    order.sort_by(|a, b| a.y.total_cmp(&b.y));
    for o in order {
        let mut canvas = Canvas { w: w as i32, h: h as i32, frame: &mut frame, anomalous: o.anomalous };
        draw(&mut canvas, o);
    }
    frame
}
