//! Small value types shared by the file formats.

mod duration;

pub use duration::HumanDuration;
