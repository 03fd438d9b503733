//! Anomaly events: consecutive frames of one video whose score is above a
//! threshold become one [`Event`] ([`EventGrouper`]); the default threshold
//! is calibrated on the training frames' scores ([`calibrate`]); events go
//! to any number of [`EventSink`]s. This crate knows nothing of the runtime,
//! so a new sink (MQTT, a webhook) is a type implementing [`EventSink`] in
//! its own crate, handed to `vigil_runtime::stream::score_inputs`.

pub mod event;
pub mod group;
pub mod sink;
pub mod threshold;

pub use event::{Event, EventBox};
pub use group::EventGrouper;
pub use sink::{EventSink, JsonLines};
pub use threshold::{calibrate, Threshold, ThresholdError};
