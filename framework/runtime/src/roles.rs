//! The stages of a checked pipeline split by kind: the data path picks
//! stages by kind, not by their order in the file (docs/architecture.md 3.1).

use crate::stage::Stage;
use anyhow::{bail, Result};
use vigil_stage_api::{ReconstructorBox, RefinerBox, StageKind, StageObject};

pub struct Roles<'a> {
    pub decoder: &'a mut Stage,
    pub flow: Option<&'a mut Stage>,
    pub localizer: &'a mut Stage,
    /// In file order; the first guides the refiner.
    pub reconstructors: Vec<(String, &'a mut ReconstructorBox)>,
    pub refiner: Option<(String, &'a mut RefinerBox)>,
    pub scorer: &'a mut Stage,
}

pub fn roles(stages: &mut [Stage]) -> Result<Roles<'_>> {
    let (mut decoder, mut flow, mut localizer, mut refiner, mut scorer) = (None, None, None, None, None);
    let mut reconstructors = Vec::new();
    for stage in stages.iter_mut() {
        let id = stage.id().to_string();
        match stage.kind() {
            StageKind::Decoder => decoder = Some(stage),
            StageKind::Flow => flow = Some(stage),
            StageKind::Localizer => localizer = Some(stage),
            StageKind::Scorer => scorer = Some(stage),
            StageKind::Reconstructor => {
                if let StageObject::Reconstructor(object) = &mut stage.object {
                    reconstructors.push((id, object));
                }
            }
            StageKind::Refiner => {
                if let StageObject::Refiner(object) = &mut stage.object {
                    refiner = Some((id, object));
                }
            }
        }
    }
    match (decoder, localizer, scorer) {
        (Some(decoder), Some(localizer), Some(scorer)) if !reconstructors.is_empty() => {
            Ok(Roles { decoder, flow, localizer, reconstructors, refiner, scorer })
        }
        _ => bail!("a pipeline needs a decoder, a localizer, a reconstructor and a scorer (see `vigil check`)"),
    }
}
