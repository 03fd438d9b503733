//! The PNG writers: files decode as PNGs of the promised size, and what
//! they show is where it should be.

use vigil_eval::plot::colormap::turbo;
use vigil_eval::plot::heatmap::{blend, OVERLAY_ALPHA};
use vigil_eval::plot::roc::ROC_SIZE;
use vigil_eval::plot::timeline::TIMELINE_SIZE;
use vigil_eval::{anomalous_ranges, plot_heatmap, plot_roc, plot_timeline, RankedCounts, RgbFrame, ScoreMap, ANOMALY_SHADE};

fn out_dir(name: &str) -> std::path::PathBuf {
    // VIGIL_KEEP_PLOTS=DIR keeps the images for a look.
    let dir = match std::env::var_os("VIGIL_KEEP_PLOTS") {
        Some(d) => std::path::PathBuf::from(d),
        None => std::env::temp_dir().join(format!("vigil-eval-plots-{name}-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn load(path: &std::path::Path) -> image::RgbImage {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap().to_rgb8()
}

fn count_colour(img: &image::RgbImage, rgb: [u8; 3]) -> usize {
    img.pixels().filter(|p| p.0 == rgb).count()
}

#[test]
fn roc_plot_is_a_png_with_the_curve_drawn() {
    let scores: Vec<f64> = (0..100).map(|i| ((i * 37) % 100) as f64 / 100.0).collect();
    let labels: Vec<bool> = scores.iter().enumerate().map(|(i, &s)| s > 0.6 || i % 7 == 0).collect();
    let counts = RankedCounts::from_samples(&scores, &labels).unwrap();
    let dir = out_dir("roc");
    let path = dir.join("roc.png");
    let area = plot_roc(&path, "Frame-level ROC", &counts.roc_curve().unwrap(), counts.auroc().unwrap()).unwrap();
    let img = load(&path);
    assert_eq!(img.dimensions(), ROC_SIZE);
    // The curve colour is drawn, and the plot area is inside the image.
    assert!(count_colour(&img, [31, 119, 180]) > 500);
    assert!(area.pixels_x.start > 0 && area.pixels_x.end < ROC_SIZE.0 as i32);
    // The point (0, 0) of the data is the lower-left corner of the area.
    assert_eq!((area.column_of(0.0), area.row_of(0.0)), (area.pixels_x.start, area.pixels_y.end));
}

#[test]
fn timeline_shades_the_anomalous_frames_columns() {
    let scores: Vec<f32> = (0..100).map(|i| if (40..60).contains(&i) { 2.0 } else { (i % 5) as f32 * 0.1 }).collect();
    let labels: Vec<bool> = (0..100).map(|i| (40..60).contains(&i)).collect();
    assert_eq!(anomalous_ranges(&labels), [(40, 59)]);
    let dir = out_dir("timeline");
    let path = dir.join("timeline_01.png");
    let area = plot_timeline(&path, "Video 01", &scores, Some(&labels)).unwrap();
    let img = load(&path);
    assert_eq!(img.dimensions(), TIMELINE_SIZE);
    let shade = [ANOMALY_SHADE.0, ANOMALY_SHADE.1, ANOMALY_SHADE.2];
    // A row just above the score 2.0 line but below the legend.
    let row = area.row_of(2.0) - 12;
    let is_shade = |x: i32| img.get_pixel(x as u32, row as u32).0 == shade;
    // Frames 40..=59 cover x in [39.5, 59.5]; stay 2 pixels inside.
    let (from, to) = (area.column_of(39.5) + 2, area.column_of(59.5) - 2);
    assert!((from..=to).all(is_shade), "columns {from}..={to} of row {row} should be shaded");
    let before = area.column_of(39.5) - 3;
    let after = area.column_of(59.5) + 3;
    assert!(!is_shade(before) && !is_shade(after), "shading leaks outside frames 40..=59");
    assert!(!(area.column_of(5.0)..area.column_of(35.0)).any(is_shade));
    // Without labels nothing is shaded.
    let unlabeled = dir.join("timeline_unlabeled.png");
    plot_timeline(&unlabeled, "Video 01", &scores, None).unwrap();
    assert_eq!(count_colour(&load(&unlabeled), shade), 0);
    assert!(plot_timeline(&path, "x", &scores, Some(&labels[..10])).is_err());
}

#[test]
fn heatmap_blends_box_scores_over_the_frame() {
    // A 60 x 40 grey gradient frame; one box scoring 3 on a (0, 3) scale.
    let (w, h) = (60u32, 40u32);
    let pixels: Vec<u8> = (0..w * h).flat_map(|i| [(i % w * 4) as u8; 3]).collect();
    let frame = RgbFrame { width: w, height: h, pixels: &pixels };
    let map = ScoreMap::paint(h, w, &[[10.0, 5.0, 30.0, 25.0]], &[3.0]).unwrap();
    let dir = out_dir("heatmap");
    let path = dir.join("heatmap.png");
    let at = plot_heatmap(&path, "Video 01, frame 42: score 3.00", frame, &map, (0.0, 3.0)).unwrap();
    let img = load(&path);
    assert_eq!(img.dimensions(), at.size);
    assert!(at.scale >= 2, "small frames are enlarged");
    let shown = |fx: u32, fy: u32| img.get_pixel(at.origin.0 + fx * at.scale, at.origin.1 + fy * at.scale).0;
    let source = |fx: u32, fy: u32| [pixels[((fy * w + fx) * 3) as usize]; 3];
    // Inside the box: the top colour of the scale blended over the frame.
    assert_eq!(shown(20, 10), blend(source(20, 10), turbo(1.0)));
    assert!(OVERLAY_ALPHA > 0.0 && shown(20, 10) != source(20, 10));
    // Outside it: the frame untouched.
    assert_eq!(shown(5, 30), source(5, 30));
    assert_eq!(shown(45, 2), source(45, 2));
    // Mismatched sizes are errors.
    let small = ScoreMap::paint(10, 10, &[], &[]).unwrap();
    assert!(plot_heatmap(&path, "x", frame, &small, (0.0, 1.0)).unwrap_err().to_string().contains("score map is 10x10"));
}
