//! The extract phase, one video at a time: decode, optical flow, localize
//! ([`Extractor::video`]), then cut the boxes into cubes ([`extract_all`]).
//! The flow and localizer calls ([`pair_flows`], [`localize`]) also serve
//! `vigil score`, which runs them on a window of a video at a time.

use crate::cache::{source_identity, Cache, KeyBuilder};
use crate::progress;
use crate::stage::Stage;
use anyhow::{bail, Context};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use vigil_cubes::{per_frame_flow, CubeSet, FrameBox};
use vigil_datasets::VideoSource;
use vigil_stage_api::{names, Batch, FrameId, ROption, StageKind, StageObject, Tensor};

/// Frames per batch handed to flow and localizer stages. `vigil score`
/// keeps its calls aligned to it, so that they see the batches `vigil run` does.
pub const CHUNK: usize = 16;

/// One video as decoded.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VideoRecord {
    pub name: String,
    pub source: PathBuf,
    pub frames: usize,
    pub height: usize,
    pub width: usize,
    /// Scored (`data.test`) or only trained on (`data.extra`).
    pub scored: bool,
}

/// What [`extract_all`] did.
pub struct Extracted {
    pub videos: Vec<VideoRecord>,
    /// Time spent cutting cubes (the stages' own times are in the extractor's timings).
    pub cube_time: Duration,
}

/// Extracts `sources` one video at a time and adds each video's cubes to
/// `cubes`; a video's frames and flow are dropped once its cubes are cut.
/// With `enough`, stops once the set holds that many cubes.
pub fn extract_all(
    extractor: &mut Extractor,
    sources: &[(VideoSource, bool)],
    cubes: &mut CubeSet,
    show_progress: bool,
    enough: Option<usize>,
) -> anyhow::Result<Extracted> {
    let mut videos = Vec::new();
    let mut cube_time = Duration::ZERO;
    let bar = progress::bar(show_progress, sources.len() as u64, "extract");
    for (index, (source, scored)) in sources.iter().enumerate() {
        if enough.is_some_and(|n| cubes.len() >= n) {
            break;
        }
        bar.set_message(source.name.clone());
        crate::interrupt::set(format!(
            "while extracting video {} ({} of {}){}",
            source.name,
            index + 1,
            sources.len(),
            if extractor.cache.root().is_some() {
                "; the flow and boxes of the videos done before it are cached, and a rerun reuses them"
            } else {
                ""
            }
        ));
        let products = extractor.video(&source.path, index as u32, &|_| {})?;
        let shape = (products.count, products.height, products.width);
        let cut = Instant::now();
        let flows = products.flows.as_deref().filter(|_| extractor.motion_cubes);
        cubes.add_video(index as u32, &products.frames, flows, shape, &products.boxes)?;
        cube_time += cut.elapsed();
        videos.push(VideoRecord {
            name: source.name.clone(),
            source: source.path.clone(),
            frames: products.count,
            height: products.height,
            width: products.width,
            scored: *scored,
        });
        extractor.spare = Spare { frames: products.frames, flows: products.flows.unwrap_or_default() };
        bar.inc(1);
    }
    // What comes next (the fit) should not hold the last video's buffers.
    extractor.spare = Spare::default();
    bar.finish_and_clear();
    Ok(Extracted { videos, cube_time })
}

/// Consecutive frames of one video, `first` the video frame number of the
/// first: u8 [count, height, width, 3].
#[derive(Clone, Copy)]
pub struct Clip<'a> {
    pub frames: &'a [u8],
    pub video: u32,
    pub first: usize,
    pub count: usize,
    pub height: usize,
    pub width: usize,
}

/// Everything extracted from one video.
pub struct VideoProducts {
    pub video: u32,
    pub frames: Vec<u8>,
    pub count: usize,
    pub height: usize,
    pub width: usize,
    /// Per-frame flow [T, H, W, 2] (the border rule of docs/method.md 3.3 applied).
    pub flows: Option<Vec<f32>>,
    pub boxes: Vec<FrameBox>,
}

/// Wall time spent in each stage, by stage id.
#[derive(Default, Debug, Clone)]
pub struct Timings(pub BTreeMap<String, Duration>);

impl Timings {
    pub fn add(&mut self, id: &str, elapsed: Duration) {
        *self.0.entry(id.to_string()).or_default() += elapsed;
    }
    pub fn seconds(&self) -> BTreeMap<String, f64> {
        self.0.iter().map(|(k, v)| (k.clone(), v.as_secs_f64())).collect()
    }
}

/// How many videos reused cached products.
#[derive(Default, Debug, Clone, Copy, serde::Serialize)]
pub struct CacheUse {
    pub videos: usize,
    pub flow_reused: usize,
    pub boxes_reused: usize,
}

pub struct Extractor<'a> {
    pub decoder: &'a mut Stage,
    pub flow: Option<&'a mut Stage>,
    pub localizer: &'a mut Stage,
    pub cache: Cache,
    pub timings: Timings,
    pub cache_use: CacheUse,
    /// Whether cubes get their flow (`check::wants_motion_cubes`).
    pub motion_cubes: bool,
    /// The last video's buffers, for the next one.
    spare: Spare,
}

/// A finished video's frame and flow buffers, kept for the next video. At
/// 856x480 one video's are over a gigabyte, and a fresh allocation that
/// large is a page fault per 4 KiB touched (a quarter of extraction's CPU
/// time there) on every video.
#[derive(Default)]
struct Spare {
    frames: Vec<u8>,
    flows: Vec<f32>,
}

impl<'a> Extractor<'a> {
    /// An extractor over these stages, with nothing timed or reused yet.
    pub fn new(
        decoder: &'a mut Stage,
        flow: Option<&'a mut Stage>,
        localizer: &'a mut Stage,
        cache: Cache,
        motion_cubes: bool,
    ) -> Extractor<'a> {
        Extractor {
            decoder,
            flow,
            localizer,
            cache,
            timings: Timings::default(),
            cache_use: CacheUse::default(),
            motion_cubes,
            spare: Spare::default(),
        }
    }

    /// The extraction stages of a checked pipeline.
    pub fn from_stages(stages: &'a mut [Stage], cache: Cache) -> anyhow::Result<Extractor<'a>> {
        let motion_cubes = crate::check::wants_motion_cubes(stages);
        let (mut decoder, mut flow, mut localizer) = (None, None, None);
        for stage in stages.iter_mut() {
            match stage.kind() {
                StageKind::Decoder => decoder = Some(stage),
                StageKind::Flow => flow = Some(stage),
                StageKind::Localizer => localizer = Some(stage),
                _ => {}
            }
        }
        let (Some(decoder), Some(localizer)) = (decoder, localizer) else {
            bail!("the pipeline needs a decoder and a localizer (see `vigil check`)")
        };
        Ok(Extractor::new(decoder, flow, localizer, cache, motion_cubes))
    }

    /// Decodes, computes flow and localizes one video, reusing cached flow
    /// and boxes when their inputs and stages are unchanged.
    pub fn video(&mut self, source: &Path, video: u32, progress: &dyn Fn(usize)) -> anyhow::Result<VideoProducts> {
        let (frames, count, height, width) = self.decode(source, video, progress)?;
        // A cache key names the source by its contents (every file read and
        // hashed). With the cache off no key is looked up: the path stands in.
        let identity = match self.cache.root() {
            Some(_) => source_identity(source).with_context(|| format!("reading the identity (size, time) of {}", source.display()))?,
            None => KeyBuilder::default().text(&source.display().to_string()),
        };
        let decoded = identity.stage(self.decoder);
        self.cache_use.videos += 1;
        let plane = height * width * 2;
        let (flows, boxes_key) = match self.flow.as_deref_mut() {
            Some(flow) => {
                let key = decoded.clone().stage(flow);
                let flows = match self.cache.load("flow", &key).filter(|f| f.len() == count * plane) {
                    Some(cached) => {
                        self.cache_use.flow_reused += 1;
                        cached
                    }
                    None => {
                        let started = Instant::now();
                        let clip = Clip { frames: &frames, video, first: 0, count, height, width };
                        let pairs = pair_flows(flow, clip, std::mem::take(&mut self.spare.flows))?;
                        self.timings.add(flow.id(), started.elapsed());
                        let flows = per_frame_flow(pairs, count, height, width)?;
                        self.cache.store("flow", &key, &flows);
                        flows
                    }
                };
                (Some(flows), key)
            }
            None => (None, decoded),
        };
        let boxes_key = boxes_key.stage(self.localizer);
        let boxes = match self.cache.load("boxes", &boxes_key).filter(|b| b.len() % 7 == 0) {
            Some(cached) => {
                self.cache_use.boxes_reused += 1;
                cached.chunks_exact(7).map(box_from_row).collect()
            }
            None => {
                let started = Instant::now();
                let clip = Clip { frames: &frames, video, first: 0, count, height, width };
                let boxes = localize(self.localizer, clip, flows.as_deref())?;
                self.timings.add(self.localizer.id(), started.elapsed());
                let rows: Vec<f32> = boxes.iter().flat_map(|b| [b.frame as f32, b.x1, b.y1, b.x2, b.y2, b.score, b.class as f32]).collect();
                self.cache.store("boxes", &boxes_key, &rows);
                boxes
            }
        };
        Ok(VideoProducts { video, frames, count, height, width, flows, boxes })
    }

    fn decode(&mut self, source: &Path, video: u32, progress: &dyn Fn(usize)) -> anyhow::Result<(Vec<u8>, usize, usize, usize)> {
        let started = Instant::now();
        let label = self.decoder.label();
        let StageObject::Decoder(decoder) = &mut self.decoder.object else { bail!("{label} is not a decoder") };
        // Paths cross the plugin boundary as UTF-8 text; a lossy copy would name another file.
        let Some(source_text) = source.to_str() else {
            bail!("{}: the path is not valid UTF-8, which stage plugins cannot open; rename the file or folder", source.display())
        };
        Stage::call(&label, decoder.open(source_text.into(), video)).with_context(|| format!("opening {}", source.display()))?;
        let (mut frames, mut count, mut size) = (std::mem::take(&mut self.spare.frames), 0usize, None);
        frames.clear();
        loop {
            let next = Stage::call(&label, decoder.next_batch(CHUNK as u32))
                .with_context(|| format!("decoding {} after frame {count}", source.display()))?;
            let ROption::RSome(batch) = next else { break };
            let (n, pixels) = decoded_frames(&label, &batch, source, count, &mut size)?;
            frames.extend_from_slice(pixels);
            count += n;
            progress(n);
        }
        self.timings.add(self.decoder.id(), started.elapsed());
        let Some((height, width)) = size else { bail!("{}: no frames could be decoded", source.display()) };
        Ok((frames, count, height, width))
    }
}

/// The `frames` of a decoded batch of `source` (whose earlier batches held
/// `seen` frames of `size`): (frames in the batch, pixels). The first batch
/// sets `size`; a later batch of another size is an error.
pub fn decoded_frames<'b>(
    label: &str,
    batch: &'b Batch,
    source: &Path,
    seen: usize,
    size: &mut Option<(usize, usize)>,
) -> anyhow::Result<(usize, &'b [u8])> {
    let tensor = batch.require(names::FRAMES).map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
    let shape = tensor.shape();
    if shape.len() != 4 || shape[3] != 3 {
        bail!("{label}: `frames` of {} must be [N, H, W, 3], found {shape:?}", source.display());
    }
    match *size {
        None => *size = Some((shape[1], shape[2])),
        Some(s) if s != (shape[1], shape[2]) => bail!(
            "{}: frame {seen} is {}x{}, earlier frames were {}x{}: all frames of a video must have one size",
            source.display(),
            shape[2],
            shape[1],
            s.1,
            s.0
        ),
        Some(_) => {}
    }
    Ok((shape[0], tensor.as_slice::<u8>().map_err(|e| anyhow::anyhow!("{label}: {e}"))?))
}

fn frame_ids(video: u32, start: usize, count: usize) -> Vec<FrameId> {
    (start..start + count).map(|f| FrameId { video, frame: f as u32 }).collect()
}

/// Flow of every consecutive pair (t, t+1) of a clip, computed in chunks of
/// `CHUNK + 1` frames that overlap by one frame so no pair is missed, into
/// `pairs` (emptied first; its allocation is reused).
pub fn pair_flows(flow: &mut Stage, clip: Clip, mut pairs: Vec<f32>) -> anyhow::Result<Vec<f32>> {
    let Clip { frames, video, first, count, height, width } = clip;
    let label = flow.label();
    let StageObject::Flow(stage) = &mut flow.object else { bail!("{label} is not a flow stage") };
    let frame_len = height * width * 3;
    // Room for one field more: `per_frame_flow` appends the last pair again in place.
    pairs.clear();
    pairs.reserve(count * height * width * 2);
    crate::allocator::populate(&mut pairs);
    let mut start = 0;
    while start + 1 < count {
        let end = (start + CHUNK + 1).min(count);
        let n = end - start;
        let chunk = frames[start * frame_len..end * frame_len].to_vec();
        let batch = Batch::new(frame_ids(video, first + start, n)).with(names::FRAMES, Tensor::from_vec(chunk, &[n, height, width, 3]));
        let out = Stage::call(&label, stage.process(batch))?;
        let field = out.require(names::FLOW).map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        if field.shape() != [n - 1, height, width, 2] {
            bail!("{label}: `flow` must be [{}, {height}, {width}, 2] for {n} frames, found {:?}", n - 1, field.shape());
        }
        pairs.extend_from_slice(field.as_slice::<f32>().map_err(|e| anyhow::anyhow!("{label}: {e}"))?);
        start = end - 1;
    }
    Ok(pairs)
}

/// A `boxes` row (row, x1, y1, x2, y2, score, class) as a box on frame `row`.
fn box_from_row(row: &[f32]) -> FrameBox {
    FrameBox { frame: row[0] as u32, x1: row[1], y1: row[2], x2: row[3], y2: row[4], score: row[5], class: row[6] as i32 }
}

/// Boxes of a clip, localized in chunks of `CHUNK` frames; `flows` is the
/// per-frame flow of the clip's frames. Boxes carry video frame numbers.
pub fn localize(localizer: &mut Stage, clip: Clip, flows: Option<&[f32]>) -> anyhow::Result<Vec<FrameBox>> {
    let Clip { frames, video, first, count, height, width } = clip;
    let label = localizer.label();
    let StageObject::Localizer(stage) = &mut localizer.object else { bail!("{label} is not a localizer") };
    let (frame_len, flow_len) = (height * width * 3, height * width * 2);
    let mut boxes = Vec::new();
    for start in (0..count).step_by(CHUNK) {
        let n = CHUNK.min(count - start);
        let mut batch = Batch::new(frame_ids(video, first + start, n))
            .with(names::FRAMES, Tensor::from_vec(frames[start * frame_len..(start + n) * frame_len].to_vec(), &[n, height, width, 3]));
        if let Some(flows) = flows {
            let chunk = flows[start * flow_len..(start + n) * flow_len].to_vec();
            batch.insert(names::FLOW, Tensor::from_vec(chunk, &[n, height, width, 2]));
        }
        let out = Stage::call(&label, stage.process(batch))?;
        let found = out.require(names::BOXES).map_err(|e| anyhow::anyhow!("{label}: {e}"))?;
        let shape = found.shape();
        if shape.len() != 2 || shape[1] != 7 {
            bail!("{label}: `boxes` must be [M, 7], found {shape:?}");
        }
        for row in found.as_slice::<f32>().map_err(|e| anyhow::anyhow!("{label}: {e}"))?.chunks_exact(7) {
            let in_batch = row[0];
            if !(in_batch >= 0.0 && (in_batch as usize) < n) {
                bail!("{label}: a box names batch row {in_batch}, but the batch has {n} frames");
            }
            let mut b = box_from_row(row);
            b.frame = (first + start + in_batch as usize) as u32;
            boxes.push(b);
        }
    }
    Ok(boxes)
}
