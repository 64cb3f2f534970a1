//! The director.

pub mod journal;
pub mod placement;
