//! A YOLOX-style ONNX detector, run with tract or, as an option, ONNX
//! Runtime ([`crate::onnxruntime`]). Loading checks the graph's input and
//! output shapes with tract either way, so a wrong or broken file fails at
//! stage creation (what `vigil check` runs), with the file named.
//!
//! The network is fully convolutional, so besides its declared input size
//! it can run at the size a frame's letterbox actually fills
//! ([`InputSize::Fit`]): a 360 x 240 frame scaled into 416 x 416 fills
//! 415 x 277, and running 416 x 288 leaves out two thirds of the padding
//! rows, and about 30% of the arithmetic, with the image placed and scaled
//! exactly as before. tract keeps one optimized plan per input size; ONNX
//! Runtime's sessions take any size once the declared one is freed.

use crate::letterbox::Letterbox;
use crate::onnxruntime::{library_path, with_free_input_size, OrtSessions};
use crate::rows::worker_threads;
use crate::yolox::{AnchorGrid, BOX_COLUMNS, STRIDES};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tract_onnx::prelude::{
    tract_ndarray, tvec, Datum, DatumType, Framework, InferenceFact, InferenceModel, InferenceModelExt, IntoRunnable, IntoTensor,
    TypedModel, TypedSimplePlan,
};
use vigil_stage_api::StageError;

vigil_stage_api::choice! {
    /// The size of the input a frame is letterboxed into.
    pub enum InputSize {
        /// The model's declared input size: a frame of another aspect is padded to it.
        Model = "model",
        /// The declared size cut down to the frame's aspect: the scaled frame rounded up to a
        /// multiple of 32, so the frame is placed and scaled as with "model" and less padding runs.
        Fit = "fit",
    }
}

vigil_stage_api::choice! {
    /// The engine that runs the network.
    pub enum Engine {
        /// tract: pure Rust, part of the plugin.
        Tract = "tract",
        /// ONNX Runtime's shared library, loaded at run time from `onnxruntime_library` or ORT_DYLIB_PATH
        /// (1.17 or newer).
        OnnxRuntime = "onnxruntime",
    }
}

/// What runs the network at one input size.
enum Network {
    Tract(Arc<TypedSimplePlan>),
    OnnxRuntime(Arc<OrtSessions>),
}

/// The network at one input size, ready to run.
pub struct SizedPlan {
    network: Network,
    pub input_width: usize,
    pub input_height: usize,
    pub grid: AnchorGrid,
}

pub struct YoloxModel {
    path: PathBuf,
    /// The graph before typing, to type and optimize at another input size.
    source: InferenceModel,
    input_size: InputSize,
    /// ONNX Runtime's sessions, under `engine = "onnxruntime"`.
    sessions: Option<Arc<OrtSessions>>,
    /// The declared input size.
    pub input_width: usize,
    pub input_height: usize,
    pub classes: usize,
    /// One plan per input size met so far, the declared size's first.
    plans: Mutex<Vec<Arc<SizedPlan>>>,
}

impl YoloxModel {
    /// The model at `path`, run by `engine` (`library`: the `onnxruntime_library` option).
    pub fn load(path: &Path, input_size: InputSize, engine: Engine, library: Option<&Path>) -> Result<YoloxModel, StageError> {
        let shown = path.display();
        if !path.is_file() {
            return Err(StageError::invalid(format!("detector model {shown}: no such file")));
        }
        // The intermediate shapes an export records (value_info) hold only
        // at the declared size; tract infers them again at any size.
        let source = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .with_ignore_output_shapes(true)
            .model_for_path(path)
            .map_err(|e| StageError::invalid(format!("detector model {shown}: not a loadable ONNX model: {e:#}")))?;
        let model = source
            .clone()
            .into_typed()
            .map_err(|e| StageError::invalid(format!("detector model {shown}: not a loadable ONNX model: {e:#}")))?;
        let (input_width, input_height) = check_input(&model).map_err(|found| {
            StageError::invalid(format!(
                "detector model {shown}: expected one input, f32 [1, 3, H, W] with H and W multiples of {} \
                 (a YOLOX export), found {found}",
                STRIDES[2]
            ))
        })?;
        let grid = AnchorGrid::new(input_width, input_height);
        let classes = check_output(&model, grid.len()).map_err(|found| {
            StageError::invalid(format!(
                "detector model {shown}: expected output 0 to be undecoded YOLOX rows, f32 [1, {}, 5 + classes] \
                 for its {input_width}x{input_height} input, found {found}",
                grid.len()
            ))
        })?;
        let sessions = match engine {
            Engine::Tract => None,
            Engine::OnnxRuntime => {
                let library = library_path(library).map_err(StageError::invalid)?;
                let bytes = std::fs::read(path).map_err(|e| StageError::invalid(format!("detector model {shown}: {e}")))?;
                let bytes = match input_size {
                    InputSize::Model => bytes,
                    InputSize::Fit => {
                        with_free_input_size(&bytes).map_err(|e| StageError::invalid(format!("detector model {shown}: {e}")))?
                    }
                };
                let sessions = OrtSessions::new(&library, &bytes, worker_threads())
                    .map_err(|e| StageError::invalid(format!("detector model {shown}: {e}")))?;
                Some(Arc::new(sessions))
            }
        };
        let declared = prepare(model, sessions.as_ref(), input_width, input_height)
            .map_err(|e| StageError::invalid(format!("detector model {shown}: {e}")))?;
        let yolox = YoloxModel {
            path: path.to_path_buf(),
            source,
            input_size,
            sessions,
            input_width,
            input_height,
            classes,
            plans: Mutex::new(vec![Arc::new(declared)]),
        };
        if input_size == InputSize::Fit {
            // A model with sizes fixed inside its graph fails here, at
            // creation, rather than on the first frame of another aspect.
            let (width, height) = (input_width, input_height.saturating_sub(STRIDES[2]).max(STRIDES[2]));
            yolox.typed_at(width, height).map_err(|e| {
                StageError::invalid(format!(
                    "detector model {shown}: option `input_size` = \"fit\" needs a model that runs at other input sizes, \
                     and this one fails at {width}x{height} ({e}); use input_size = \"model\""
                ))
            })?;
        }
        Ok(yolox)
    }

    /// The plan a `frame_width` x `frame_height` frame runs through,
    /// optimized on first use of its input size.
    pub fn plan_for(&self, frame_width: usize, frame_height: usize) -> Result<Arc<SizedPlan>, StageError> {
        let (width, height) = self.input_for(frame_width, frame_height);
        // Held while a new size is optimized: the other frames of the batch
        // need that same plan.
        let mut plans = self.plans.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(plan) = plans.iter().find(|p| (p.input_width, p.input_height) == (width, height)) {
            return Ok(plan.clone());
        }
        let fail = |e: String| {
            StageError::new(format!(
                "detector model {}: cannot run at {width}x{height} for {frame_width}x{frame_height} frames: {e}",
                self.path.display()
            ))
        };
        let plan = Arc::new(prepare(self.typed_at(width, height).map_err(fail)?, self.sessions.as_ref(), width, height).map_err(fail)?);
        tracing::info!("detector: {width}x{height} input for {frame_width}x{frame_height} frames");
        plans.push(plan.clone());
        Ok(plan)
    }

    /// Runs one letterboxed frame through `plan` (see [`SizedPlan::run`]).
    pub fn run(&self, plan: &SizedPlan, input: Vec<f32>) -> Result<Vec<f32>, StageError> {
        plan.run(input).map_err(|e| StageError::new(format!("detector model {}: {e}", self.path.display())))
    }

    /// The input size a frame is letterboxed into.
    fn input_for(&self, frame_width: usize, frame_height: usize) -> (usize, usize) {
        match self.input_size {
            InputSize::Model => (self.input_width, self.input_height),
            InputSize::Fit => fitted_input(frame_width, frame_height, self.input_width, self.input_height),
        }
    }

    /// The graph typed with a `width` x `height` input, its output checked.
    fn typed_at(&self, width: usize, height: usize) -> Result<TypedModel, String> {
        let fact = InferenceFact::dt_shape(f32::datum_type(), [1, 3, height, width]);
        let model = self.source.clone().with_input_fact(0, fact).and_then(|m| m.into_typed()).map_err(|e| format!("{e:#}"))?;
        let anchors = AnchorGrid::new(width, height).len();
        match check_output(&model, anchors) {
            Ok(classes) if classes == self.classes => Ok(model),
            Ok(classes) => Err(format!("{classes} classes instead of {}", self.classes)),
            Err(found) => Err(format!("output {found}, expected [1, {anchors}, {}]", BOX_COLUMNS + self.classes)),
        }
    }
}

/// The smallest input of whole stride-32 cells that holds a frame
/// letterboxed into `width` x `height`. One side keeps its declared length
/// (the one that limits the scale), so the scale, and where every pixel
/// lands, are the same as in the declared input.
fn fitted_input(frame_width: usize, frame_height: usize, width: usize, height: usize) -> (usize, usize) {
    let (scaled_width, scaled_height) = Letterbox::new(frame_width, frame_height, width, height).resized_size();
    let fit = |scaled: usize, declared: usize| (scaled.div_ceil(STRIDES[2]).max(1) * STRIDES[2]).min(declared);
    (fit(scaled_width, width), fit(scaled_height, height))
}

/// The network for a `width` x `height` input: ONNX Runtime's `sessions`
/// where given, else `model` optimized into a tract plan.
fn prepare(model: TypedModel, sessions: Option<&Arc<OrtSessions>>, width: usize, height: usize) -> Result<SizedPlan, String> {
    let network = match sessions {
        Some(sessions) => Network::OnnxRuntime(sessions.clone()),
        None => {
            Network::Tract(model.into_optimized().and_then(|m| m.into_runnable()).map_err(|e| format!("cannot be prepared to run: {e:#}"))?)
        }
    };
    Ok(SizedPlan { network, input_width: width, input_height: height, grid: AnchorGrid::new(width, height) })
}

impl SizedPlan {
    /// Runs one letterboxed frame, planar BGR [3, H, W]; returns the raw
    /// output rows [anchors, 5 + classes].
    pub fn run(&self, input: Vec<f32>) -> Result<Vec<f32>, String> {
        let plan = match &self.network {
            Network::Tract(plan) => plan,
            Network::OnnxRuntime(sessions) => return sessions.run(self.input_width, self.input_height, &input),
        };
        let array = tract_ndarray::Array4::from_shape_vec((1, 3, self.input_height, self.input_width), input).map_err(|e| e.to_string())?;
        let outputs = plan.run(tvec!(array.into_tensor().into())).map_err(|e| format!("{e:#}"))?;
        // A tract tensor is contiguous: one copy, not an element-by-element walk of a view.
        let plain = outputs[0].try_as_plain_ram().map_err(|e| e.to_string())?;
        Ok(plain.as_slice::<f32>().map_err(|e| e.to_string())?.to_vec())
    }
}

/// (width, height) of a [1, 3, H, W] f32 input, or what was found instead.
fn check_input(model: &TypedModel) -> Result<(usize, usize), String> {
    let inputs = model.input_outlets().map_err(|e| e.to_string())?.len();
    let fact = model.input_fact(0).map_err(|e| e.to_string())?;
    let found = || format!("{inputs} input(s), the first {:?} [{:?}]", fact.datum_type, fact.shape);
    match fact.shape.as_concrete() {
        Some(&[1, 3, h, w]) if inputs == 1 && fact.datum_type == DatumType::F32 && h > 0 && w > 0 && h % 32 == 0 && w % 32 == 0 => {
            Ok((w, h))
        }
        _ => Err(found()),
    }
}

/// The class count of a [1, anchors, 5 + classes] f32 output.
fn check_output(model: &TypedModel, anchors: usize) -> Result<usize, String> {
    let fact = model.output_fact(0).map_err(|e| e.to_string())?;
    match fact.shape.as_concrete() {
        Some(&[1, a, columns]) if a == anchors && columns > BOX_COLUMNS && fact.datum_type == DatumType::F32 => Ok(columns - BOX_COLUMNS),
        _ => Err(format!("{:?} [{:?}]", fact.datum_type, fact.shape)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fitted_input_keeps_the_letterbox_scale_and_drops_whole_padding_cells() {
        // Ped2's 360 x 240 fills 415 x 277 of 416 x 416.
        assert_eq!(fitted_input(360, 240, 416, 416), (416, 288));
        assert_eq!(fitted_input(240, 360, 416, 416), (288, 416));
        // 16:9 scaled to 416 x 234; a square frame needs the whole input.
        assert_eq!(fitted_input(1280, 720, 416, 416), (416, 256));
        assert_eq!(fitted_input(500, 500, 416, 416), (416, 416));
        // A sliver still gets one cell; a rectangular model keeps its limits.
        assert_eq!(fitted_input(4000, 3, 416, 416), (416, 32));
        assert_eq!(fitted_input(360, 240, 640, 384), (576, 384));
        for (frame_width, frame_height) in [(360, 240), (240, 360), (1280, 720), (4000, 3), (333, 777)] {
            let (width, height) = fitted_input(frame_width, frame_height, 416, 416);
            let (declared, fitted) =
                (Letterbox::new(frame_width, frame_height, 416, 416), Letterbox::new(frame_width, frame_height, width, height));
            assert_eq!(declared.ratio, fitted.ratio, "{frame_width}x{frame_height} in {width}x{height}");
            let (scaled_width, scaled_height) = fitted.resized_size();
            assert!(scaled_width <= width && scaled_height <= height && width % 32 == 0 && height % 32 == 0);
            // Less than a cell of padding, except where the frame needs the whole side or fills none of a cell.
            assert!(width - scaled_width < 32 || width == 416 || width == 32, "{frame_width}x{frame_height}: {width}");
            assert!(height - scaled_height < 32 || height == 416 || height == 32, "{frame_width}x{frame_height}: {height}");
        }
    }
}
