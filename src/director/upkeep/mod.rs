//! Maintenance passes over what the stores hold: the holdings merge, repair and
//! rebalance, garbage collection, fsck and recovery of a lost journal.

pub mod fsck;
pub mod gc;
pub mod holdings;
pub mod lifecycle;
pub mod members;
pub mod recover;
pub mod repair;
pub mod repairer;
