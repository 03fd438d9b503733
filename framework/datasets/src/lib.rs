//! Datasets as they ship: which videos a path holds ([`resolve`]) and what
//! their ground truth says ([`load_ground_truth`]): frame labels per video
//! and, where the dataset has them, pixel masks loaded one frame at a time.
//!
//! Supported ground truth: UCSD `UCSDped1.m`/`UCSDped2.m`, `ped2.mat`-style
//! MAT v5 cells of [start; end] ranges, UCSD `TestNNN_gt/NNN.bmp` masks,
//! Avenue `testing_label_mask/N_label.mat` (`volLabel`), ShanghaiTech
//! `test_frame_mask/*.npy` and `test_pixel_mask/*.npy`, and a plain CSV
//! `video,frame,label`.

mod error;
pub mod labels;
pub mod layout;
pub mod mask;
pub mod mat;
pub mod natural;
pub mod npy;

#[cfg(test)]
mod fuzz_tests;

pub use error::{Error, Result};
pub use labels::{load_frame_labels, load_ground_truth, validate, FrameTruth, GroundTruth, LabelFormat, VideoTruth};
pub use layout::{is_stream, list_frame_files, resolve, SourceKind, VideoSource};
pub use mask::Mask;
pub use natural::natural_cmp;
