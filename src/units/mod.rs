//! Small value types shared by the file formats.

mod amount;
mod duration;
pub mod limits;
mod secret_ref;

pub use amount::{Amount, BatchSizes};
pub use duration::HumanDuration;
pub use secret_ref::SecretRef;
