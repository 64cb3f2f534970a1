//! The director's own endpoints: `/_dpyfs/...` administration, the status JSON, the
//! status page and `/metrics`.

pub mod page;
