//! The data path: chunk placement, the store fleet and its liveness, scatter (write) and
//! gather (read), and the client the director uses to call stores.

pub mod gather;
pub mod multipart;
pub mod pins;
pub mod placement;
pub mod scatter;
pub mod store_client;
pub mod stores;
