//! Accuracy on real data: mean endpoint error on the three FlyingChairs
//! pairs of the shared data. Zero flow scores 4.97 px there and OpenCV's DIS
//! 4.41 (ultrafast) / 4.06 (fast) / 4.42 (medium).

use vigil_plugin_flow::{estimate_flow, middlebury, FlowParams, GrayImage, Preset};
use vigil_stage_testkit::shared_data;

fn gray(path: &std::path::Path) -> GrayImage {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).to_rgb8();
    let (w, h) = img.dimensions();
    GrayImage::from_rgb(img.as_raw(), w as usize, h as usize)
}

#[test]
fn mean_epe_on_flyingchairs_beats_zero_flow_clearly() {
    let Some(root) = shared_data("flow/flyingchairs") else { return };
    let pairs: Vec<_> = (0..3)
        .map(|i| {
            let file = |suffix: &str| root.join(format!("000000{i}-{suffix}"));
            (gray(&file("img0.ppm")), gray(&file("img1.ppm")), middlebury::read_flo(&file("gt.flo")).unwrap())
        })
        .collect();
    for (preset, bound) in [(Preset::Ultrafast, 4.8), (Preset::Fast, 4.5), (Preset::Medium, 4.2)] {
        let params = FlowParams::preset(preset);
        let epe: f64 = pairs.iter().map(|(a, b, gt)| estimate_flow(a, b, &params).unwrap().endpoint_error(gt)).sum::<f64>() / 3.0;
        println!("{preset:?}: mean EPE {epe:.3} px");
        assert!(epe < bound, "{preset:?}: mean EPE {epe:.3} px, expected below {bound}");
    }
}
