//! A YOLOX-style ONNX detector run with tract. Loading checks the graph's
//! input and output shapes, so a wrong or broken file fails at stage
//! creation (what `vigil check` runs), with the file named.

use crate::yolox::{AnchorGrid, BOX_COLUMNS, STRIDES};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tract_onnx::prelude::{
    tract_ndarray, tvec, DatumType, Framework, InferenceModelExt, IntoRunnable, IntoTensor, TypedModel, TypedSimplePlan,
};
use vigil_stage_api::StageError;

pub struct YoloxModel {
    path: PathBuf,
    plan: Arc<TypedSimplePlan>,
    pub input_width: usize,
    pub input_height: usize,
    pub classes: usize,
    pub grid: AnchorGrid,
}

impl YoloxModel {
    pub fn load(path: &Path) -> Result<YoloxModel, StageError> {
        let shown = path.display();
        if !path.is_file() {
            return Err(StageError::invalid(format!("detector model {shown}: no such file")));
        }
        let model = tract_onnx::onnx()
            .model_for_path(path)
            .and_then(|m| m.into_typed())
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
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| StageError::invalid(format!("detector model {shown}: cannot be prepared to run: {e:#}")))?;
        Ok(YoloxModel { path: path.to_path_buf(), plan, input_width, input_height, classes, grid })
    }

    /// Runs one letterboxed frame, planar BGR [3, H, W]; returns the raw
    /// output rows [anchors, 5 + classes].
    pub fn run(&self, input: Vec<f32>) -> Result<Vec<f32>, StageError> {
        let fail = |e: &dyn std::fmt::Display| StageError::new(format!("detector model {}: {e}", self.path.display()));
        let array = tract_ndarray::Array4::from_shape_vec((1, 3, self.input_height, self.input_width), input).map_err(|e| fail(&e))?;
        let outputs = self.plan.run(tvec!(array.into_tensor().into())).map_err(|e| fail(&format!("{e:#}")))?;
        // A tract tensor is contiguous: one copy, not an element-by-element walk of a view.
        let plain = outputs[0].try_as_plain_ram().map_err(|e| fail(&e))?;
        Ok(plain.as_slice::<f32>().map_err(|e| fail(&e))?.to_vec())
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
