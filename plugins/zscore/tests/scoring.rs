//! The scorer's rules checked on small batches whose results are worked out
//! by hand in the comments.

use serde_json::json;
use vigil_plugin_zscore::ZScoreStage;
use vigil_stage_api::{names, Batch, FrameId, Tensor};
use vigil_stage_testkit as testkit;

/// One reconstructor's errors per box and (count, mean, std) per band.
struct Recon<'a> {
    id: &'a str,
    errors: Vec<f32>,
    stats: Vec<[f64; 3]>,
}

/// Frames `(video, frame)` of size 10 x 10, boxes (row, x1, y1, x2, y2).
fn batch(ids: &[(u32, u32)], boxes: &[[f32; 5]], bands: &[u32], recons: &[Recon<'_>]) -> Batch {
    let ids = ids.iter().map(|&(video, frame)| FrameId { video, frame }).collect();
    let mut b = Batch::new(ids)
        .with(names::FRAME_SIZE, Tensor::from_vec(vec![10u32, 10], &[1, 2]))
        .with(names::BOXES, Tensor::from_vec(boxes.iter().flatten().copied().collect::<Vec<f32>>(), &[boxes.len(), 5]))
        .with(names::BAND, Tensor::from_vec(bands.to_vec(), &[bands.len()]));
    for r in recons {
        b.insert(&names::errors_of(r.id), Tensor::from_vec(r.errors.clone(), &[r.errors.len()]));
        let flat: Vec<f64> = r.stats.iter().flatten().copied().collect();
        b.insert(&names::stats_of(r.id), Tensor::from_vec(flat, &[r.stats.len(), 3]));
    }
    b
}

/// The stage's outputs: (scores, raw_scores, box_scores).
type Outputs = (Vec<f32>, Vec<f32>, Vec<f32>);

/// Runs the stage through the testkit (options validated as the host does).
fn run(options: serde_json::Value, input: Batch) -> Result<Outputs, String> {
    let instance = testkit::create::<ZScoreStage>(options)?;
    let io = instance.io.clone();
    let mut scorer = testkit::into_scorer(instance);
    let out = scorer.score(input).into_result().map_err(|e| e.to_string())?;
    testkit::assert_contract(&io, &out);
    let get = |name: &str| out.get(name).unwrap().as_slice::<f32>().unwrap().to_vec();
    Ok((get("scores"), get("raw_scores"), get("box_scores")))
}

/// A single reconstructor with mean 0, std 1: box score = error.
fn identity(errors: Vec<f32>) -> Recon<'static> {
    Recon { id: "appearance", errors, stats: vec![[5.0, 0.0, 1.0]] }
}

#[test]
fn single_modality_uses_z_alone_whatever_its_weight() {
    // band 0: mean 10, std 2. Errors 14 and 7 give z = 2 and -1.5; the
    // weight 0.5 does not apply to a lone reconstructor.
    let recon = Recon { id: "appearance", errors: vec![14.0, 7.0], stats: vec![[4.0, 10.0, 2.0]] };
    let input = batch(&[(0, 0), (0, 1)], &[[0., 0., 0., 4., 4.], [1., 0., 0., 4., 4.]], &[0, 0], &[recon]);
    let (_, raw, boxes) = run(json!({"window": 1, "weights": {"appearance": 0.5}}), input).unwrap();
    assert_eq!(boxes, [2.0, -1.5]);
    assert_eq!(raw, [2.0, -1.5]);
}

#[test]
fn two_modalities_fuse_with_paper_or_given_weights() {
    // appearance: (14 - 10) / 2 = 2; motion: (80 - 100) / 10 = -2.
    let recons = || {
        [
            Recon { id: "appearance", errors: vec![14.0], stats: vec![[4.0, 10.0, 2.0]] },
            Recon { id: "motion", errors: vec![80.0], stats: vec![[4.0, 100.0, 10.0]] },
        ]
    };
    let boxes = [[0., 0., 0., 4., 4.]];
    // Paper defaults: 0.5 * 2 + 1.0 * -2 = -1.
    let (_, _, fused) = run(json!({"window": 1}), batch(&[(0, 0)], &boxes, &[0], &recons())).unwrap();
    assert_eq!(fused, [-1.0]);
    // ShanghaiTech's weights: 0.1 * 2 + 1.0 * -2 = -1.8.
    let given = json!({"window": 1, "weights": {"appearance": 0.1, "motion": 1.0}});
    let (_, _, fused) = run(given, batch(&[(0, 0)], &boxes, &[0], &recons())).unwrap();
    assert!((fused[0] - -1.8).abs() < 1e-6, "{fused:?}");
}

#[test]
fn zero_std_scales_by_one_and_untrained_band_scores_high() {
    // band 0: mean 5, std 0 -> z = 7 - 5 = 2; band 1 has no training boxes.
    let recon = Recon { id: "appearance", errors: vec![7.0, 1.0], stats: vec![[3.0, 5.0, 0.0], [0.0, 0.0, 0.0]] };
    let boxes = [[0., 0., 0., 4., 4.], [1., 0., 0., 4., 4.]];
    let (_, raw, fused) = run(json!({"window": 1}), batch(&[(0, 0), (0, 1)], &boxes, &[0, 1], &[recon])).unwrap();
    assert_eq!(fused, [2.0, 20.0]);
    assert_eq!(raw, [2.0, 20.0]);
    let recon = Recon { id: "appearance", errors: vec![7.0, 1.0], stats: vec![[3.0, 5.0, 0.0], [0.0, 0.0, 0.0]] };
    let (_, _, fused) = run(json!({"window": 1, "untrained_score": 33.0}), batch(&[(0, 0), (0, 1)], &boxes, &[0, 1], &[recon])).unwrap();
    assert_eq!(fused[1], 33.0);
}

#[test]
fn frame_takes_the_max_over_boxes_that_paint_pixels() {
    // Frames are 10 x 10.
    // row 0: overlapping boxes scoring 2 and 5 -> 5; a box scoring 100 whose
    //        ceil-ed x range [3, 3) is empty paints nothing.
    // row 1: no boxes -> no_box_score.
    // row 2: only a box past the right edge (x from ceil(10.2) = 11, clipped
    //        to [10, 10)) -> no pixel painted -> no_box_score.
    // row 3: a box partly left of the frame, clipped to x in [0, 2) -> -3.
    let boxes = [[0., 0., 0., 5., 5.], [0., 3., 3., 8., 8.], [0., 2.2, 0., 3.0, 9.], [2., 10.2, 0., 12., 5.], [3., -5., 1., 1.5, 4.]];
    let errors = vec![2.0, 5.0, 100.0, 50.0, -3.0];
    let ids = [(0, 0), (0, 1), (0, 2), (0, 3)];
    let (_, raw, fused) = run(json!({"window": 1}), batch(&ids, &boxes, &[0; 5], &[identity(errors.clone())])).unwrap();
    assert_eq!(fused, errors, "box scores are reported even when they paint nothing");
    assert_eq!(raw, [5.0, -20.0, -20.0, -3.0]);
    let (_, raw, _) = run(json!({"window": 1, "no_box_score": -7.0}), batch(&ids, &boxes, &[0; 5], &[identity(errors)])).unwrap();
    assert_eq!(raw, [5.0, -7.0, -7.0, -3.0]);
}

/// Video 0 scores [1, 2, 3], video 1 scores [10, 20], one box per frame.
fn two_videos() -> Batch {
    let ids = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)];
    let boxes: Vec<[f32; 5]> = (0..5).map(|r| [r as f32, 0., 0., 4., 4.]).collect();
    batch(&ids, &boxes, &[0; 5], &[identity(vec![1.0, 2.0, 3.0, 10.0, 20.0])])
}

#[test]
fn pooled_smoothing_runs_across_videos_with_zero_padding() {
    // Window 4 averages rows i-2 ..= i+1 of the concatenation, divided by 4:
    // row 0: (1+2)/4, row 1: (1+2+3)/4, row 2: (1+2+3+10)/4 (crosses into
    // video 1), row 3: (2+3+10+20)/4, row 4: (3+10+20)/4.
    let (scores, raw, _) = run(json!({"window": 4, "smoothing": "pooled"}), two_videos()).unwrap();
    assert_eq!(raw, [1.0, 2.0, 3.0, 10.0, 20.0]);
    assert_eq!(scores, [0.75, 1.5, 4.0, 8.75, 8.25]);
}

#[test]
fn per_video_smoothing_stops_at_video_ends() {
    // Same window, cut at each video's ends and divided by what remains:
    // video 0: (1+2)/2, (1+2+3)/3, (1+2+3)/3; video 1: (10+20)/2 twice.
    let (scores, _, _) = run(json!({"window": 4}), two_videos()).unwrap();
    assert_eq!(scores, [1.5, 2.0, 2.0, 15.0, 15.0]);
}

#[test]
fn inconsistent_batches_are_errors_that_say_what_was_expected() {
    let boxes = [[0., 0., 0., 4., 4.]];
    let extra = [identity(vec![1.0]), Recon { id: "motion", errors: vec![1.0], stats: vec![[1.0, 0.0, 1.0]] }];
    let err = run(json!({"weights": {"appearance": 1.0}}), batch(&[(0, 0)], &boxes, &[0], &extra)).unwrap_err();
    assert!(err.contains("gives no weight for `motion`"), "{err}");

    let unknown = [
        Recon { id: "a", errors: vec![1.0], stats: vec![[1.0, 0.0, 1.0]] },
        Recon { id: "b", errors: vec![1.0], stats: vec![[1.0, 0.0, 1.0]] },
    ];
    let err = run(json!({}), batch(&[(0, 0)], &boxes, &[0], &unknown)).unwrap_err();
    assert!(err.contains("several reconstructors (a, b)"), "{err}");

    let err = run(json!({}), batch(&[(0, 0)], &[[3., 0., 0., 4., 4.]], &[0], &[identity(vec![1.0])])).unwrap_err();
    assert!(err.contains("frame row 3 is not an integer in 0..1"), "{err}");

    let err = run(json!({}), batch(&[(0, 0)], &boxes, &[2], &[identity(vec![1.0])])).unwrap_err();
    assert!(err.contains("has 1 rows but `band` names model 2"), "{err}");

    let err = run(json!({}), batch(&[(0, 1), (0, 0)], &boxes, &[0], &[identity(vec![1.0])])).unwrap_err();
    assert!(err.contains("frames of a video must ascend"), "{err}");

    let err = run(json!({}), batch(&[(0, 0), (1, 0), (0, 1)], &boxes, &[0], &[identity(vec![1.0])])).unwrap_err();
    assert!(err.contains("video 0 appears again at row 2"), "{err}");

    let err = run(json!({}), batch(&[(0, 0)], &boxes, &[0], &[identity(vec![f32::NAN])])).unwrap_err();
    assert!(err.contains("`errors.appearance`: box 0 has error NaN"), "{err}");

    let err = run(json!({"window": 0}), two_videos()).unwrap_err();
    assert!(err.contains("option `window`: expected at least 1, found 0"), "{err}");
    let err = run(json!({"smoothing": "global"}), two_videos()).unwrap_err();
    assert!(err.contains("smoothing"), "{err}");
}

#[test]
fn declared_inputs_follow_the_weights() {
    let instance = testkit::create::<ZScoreStage>(json!({"weights": {"appearance": 0.5, "motion": 1.0}})).unwrap();
    let names: Vec<&str> = instance.io.inputs.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["frame_size", "boxes", "band", "errors.appearance", "stats.appearance", "errors.motion", "stats.motion"]);
    let by_height = testkit::create::<ZScoreStage>(json!({"weights": {"appearance": 1.0}, "normalize": "box_height"})).unwrap();
    let names: Vec<&str> = by_height.io.inputs.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["frame_size", "boxes", "band", "errors.appearance", "stats.appearance", "height_stats.appearance"]);
}

#[test]
fn box_height_normalization_scores_the_residual_about_the_bands_line() {
    // Band 0's line: ln(error) = 0 + 1 * ln(height), residual std 0.5, so a
    // box's expected error is its height. Boxes of height 2, 4 and 8:
    // error 2 is on the line (z 0); error 4 * e is 1 above it (z 2);
    // error 8 / e^0.5 is 0.5 below it (z -1). With `band`, the lines are
    // not read: z = error - 10 (mean 10, std 1).
    let errors = vec![2.0, 4.0 * std::f32::consts::E, 8.0 / 0.5f32.exp()];
    let boxes = [[0., 0., 0., 3., 2.], [1., 1., 1., 3., 5.], [2., 0., 1., 9., 9.]];
    let with_lines = |lines: Option<Vec<f64>>| {
        let recon = Recon { id: "appearance", errors: errors.clone(), stats: vec![[9.0, 10.0, 1.0]] };
        let mut input = batch(&[(0, 0), (0, 1), (0, 2)], &boxes, &[0; 3], &[recon]);
        if let Some(rows) = lines {
            let models = rows.len() / 4;
            input.insert(&names::height_stats_of("appearance"), Tensor::from_vec(rows, &[models, 4]));
        }
        input
    };
    let line = vec![9.0, 0.0, 1.0, 0.5];
    let (_, _, fused) = run(json!({"window": 1, "normalize": "box_height"}), with_lines(Some(line.clone()))).unwrap();
    let expected = [0.0, 2.0, -1.0];
    assert!(fused.iter().zip(expected).all(|(f, e)| (f - e).abs() < 1e-5), "{fused:?}");
    let (_, _, banded) = run(json!({"window": 1}), with_lines(Some(line))).unwrap();
    assert!(banded.iter().zip(&errors).all(|(b, e)| (b - (e - 10.0)).abs() < 1e-5), "{banded:?}");

    let err = run(json!({"normalize": "box_height"}), with_lines(None)).unwrap_err();
    assert!(err.contains("needs input `height_stats.appearance`") && err.contains("fit it again"), "{err}");
    let err = run(json!({"normalize": "box_height"}), with_lines(Some(vec![9.0, 0.0, 1.0, 0.5, 1.0, 0.0, 0.0, 0.0]))).unwrap_err();
    assert!(err.contains("expected shape [1, 4]"), "{err}");
    let err = run(json!({"normalize": "box_height"}), with_lines(Some(vec![9.0, f64::INFINITY, 1.0, 0.5]))).unwrap_err();
    assert!(err.contains("`height_stats.appearance` row 0"), "{err}");
    let err = run(json!({"normalize": "area"}), with_lines(None)).unwrap_err();
    assert!(err.contains("normalize"), "{err}");
}

#[test]
fn a_set_without_boxes_is_all_normal() {
    // Three frames at -20, pooled window 4 (rows i-2 ..= i+1, zero padded):
    // (-20-20)/4, (-20*3)/4, (-20*3)/4.
    let input = batch(&[(0, 0), (0, 1), (0, 2)], &[], &[], &[identity(vec![])]);
    let (scores, raw, boxes) = run(json!({"window": 4, "smoothing": "pooled"}), input).unwrap();
    assert!(boxes.is_empty());
    assert_eq!(raw, [-20.0; 3]);
    assert_eq!(scores, [-10.0, -15.0, -15.0]);
}

#[test]
fn frame_sizes_per_row_clip_each_frame_on_its_own() {
    // The same box x, y in [5, 8) paints on a 10 x 10 frame but falls
    // outside a 4 x 4 one (clipped to [4, 4)).
    let boxes = [[0., 5., 5., 8., 8.], [1., 5., 5., 8., 8.]];
    let mut input = batch(&[(0, 0), (1, 0)], &boxes, &[0, 0], &[identity(vec![3.0, 3.0])]);
    input.insert(names::FRAME_SIZE, Tensor::from_vec(vec![10u32, 10, 4, 4], &[2, 2]));
    let (_, raw, _) = run(json!({"window": 1}), input).unwrap();
    assert_eq!(raw, [3.0, -20.0]);
    let mut bad = batch(&[(0, 0), (1, 0)], &boxes, &[0, 0], &[identity(vec![3.0, 3.0])]);
    bad.insert(names::FRAME_SIZE, Tensor::from_vec(vec![10u32, 10, 4, 4, 4, 4], &[3, 2]));
    let err = run(json!({}), bad).unwrap_err();
    assert!(err.contains("`frame_size`: expected shape [2, 2] or [1, 2], found [3, 2]"), "{err}");
}
