pub mod diagnostic;
pub mod document;
pub mod pipeline;
pub mod registry;
pub mod stage;
pub mod check;
pub mod extract;
