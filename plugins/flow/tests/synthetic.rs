//! Exact recovery of known motions of a textured image made by code.

use vigil_plugin_flow::{estimate_flow, estimate_flow_on_grid, FlowError, FlowField, FlowParams, GrayImage, Preset};

/// A smooth texture with structure at several scales and orientations,
/// coarse enough to survive the 1/4-scale pyramid level without aliasing.
fn texture(x: f32, y: f32) -> f32 {
    128.0
        + 35.0 * (0.19 * x + 0.11 * y).sin()
        + 30.0 * (0.09 * x - 0.21 * y).sin()
        + 25.0 * (0.07 * x + 0.05 * y).cos() * (0.13 * y).sin()
        + 15.0 * (0.15 * x).sin() * (0.12 * y + 1.0).cos()
}

fn render(w: usize, h: usize, at: impl Fn(f32, f32) -> (f32, f32)) -> GrayImage {
    let data = (0..h).flat_map(|y| (0..w).map(move |x| (x, y))).map(|(x, y)| {
        let (sx, sy) = at(x as f32, y as f32);
        texture(sx, sy)
    });
    GrayImage::new(w, h, data.collect())
}

/// Mean endpoint error away from a `margin`-pixel border (where content
/// enters or leaves the view and no method can know the motion).
fn interior_epe(flow: &FlowField, truth: impl Fn(f32, f32) -> (f32, f32), margin: usize) -> f64 {
    let (mut sum, mut n) = (0.0f64, 0usize);
    for y in margin..flow.height - margin {
        for x in margin..flow.width - margin {
            let (u, v) = flow.at(x, y);
            let (tu, tv) = truth(x as f32, y as f32);
            sum += (((u - tu).powi(2) + (v - tv).powi(2)) as f64).sqrt();
            n += 1;
        }
    }
    sum / n as f64
}

#[test]
fn recovers_subpixel_translations() {
    let (w, h) = (160, 120);
    let first = render(w, h, |x, y| (x, y));
    for (tx, ty) in [(0.3f32, -0.6f32), (2.5, 1.25), (-4.7, 3.1)] {
        // second(x + t) = first(x): the flow is t everywhere.
        let second = render(w, h, |x, y| (x - tx, y - ty));
        for preset in [Preset::Ultrafast, Preset::Fast, Preset::Medium] {
            let flow = estimate_flow(&first, &second, &FlowParams::preset(preset)).unwrap();
            let epe = interior_epe(&flow, |_, _| (tx, ty), 8);
            let bound = if preset == Preset::Ultrafast { 0.08 } else { 0.04 };
            assert!(epe < bound, "{preset:?} translation ({tx}, {ty}): EPE {epe:.4}");
        }
    }
}

#[test]
fn recovers_a_small_rotation() {
    let (w, h) = (160, 120);
    let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
    let angle = 2.0f32.to_radians();
    let (s, c) = angle.sin_cos();
    let first = render(w, h, |x, y| (x, y));
    // second(R p) = first(p): sample first at the inverse rotation.
    let second = render(w, h, |x, y| {
        let (dx, dy) = (x - cx, y - cy);
        (cx + c * dx + s * dy, cy - s * dx + c * dy)
    });
    let truth = |x: f32, y: f32| {
        let (dx, dy) = (x - cx, y - cy);
        (c * dx - s * dy - dx, s * dx + c * dy - dy)
    };
    for preset in [Preset::Fast, Preset::Medium] {
        let flow = estimate_flow(&first, &second, &FlowParams::preset(preset)).unwrap();
        let epe = interior_epe(&flow, truth, 10);
        assert!(epe < 0.1, "{preset:?} rotation: EPE {epe:.4}");
    }
}

#[test]
fn grid_flow_is_in_grid_pixels() {
    // A 1-pixel shift of 80x60 frames is a 2x2-pixel shift on a 160x120 grid.
    let first = render(80, 60, |x, y| (x, y));
    let second = render(80, 60, |x, y| (x - 1.0, y - 1.0));
    let flow = estimate_flow_on_grid(&first, &second, Some((160, 120)), &FlowParams::preset(Preset::Fast)).unwrap();
    assert_eq!((flow.width, flow.height), (80, 60));
    let epe = interior_epe(&flow, |_, _| (2.0, 2.0), 6);
    assert!(epe < 0.1, "EPE {epe:.4}");
}

#[test]
fn rejects_mismatched_sizes_and_bad_patches() {
    let a = render(20, 20, |x, y| (x, y));
    let b = render(21, 20, |x, y| (x, y));
    let err = estimate_flow(&a, &b, &FlowParams::default()).unwrap_err();
    assert_eq!(err, FlowError("images differ in size: 20x20 and 21x20".into()));
    let params = FlowParams { patch_size: 1, ..FlowParams::default() };
    assert!(estimate_flow(&a, &a, &params).unwrap_err().0.contains("patch size"));
}

#[test]
fn tiny_images_give_a_field_without_panicking() {
    for (w, h) in [(1, 1), (2, 2), (5, 3), (9, 40)] {
        let a = render(w, h, |x, y| (x, y));
        let b = render(w, h, |x, y| (x - 0.5, y));
        let flow = estimate_flow(&a, &b, &FlowParams::default()).unwrap();
        assert_eq!((flow.width, flow.height), (w, h));
        assert!(flow.data.iter().all(|v| v.is_finite()));
    }
}
