//! Vigil's runtime: pipeline files, plugin registry, executor, fit loop,
//! cache, metrics, report.

pub mod fit;
