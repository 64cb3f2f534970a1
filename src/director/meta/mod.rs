//! The metadata engine: the journal and its records, the in-memory index, uploads in
//! progress, snapshots and the manifest format. It knows neither HTTP nor stores.

pub mod acl;
pub mod acl_index;
pub mod condition;
pub mod index;
pub mod journal;
pub mod manifest;
pub mod records;
pub mod upload_index;
pub mod uploads;
pub mod versions;
