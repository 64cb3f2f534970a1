//! What the director, the tools and `dpyfs admin` share about S3: naming rules, the keys
//! file and the small XML documents. A leaf: it knows nothing of the director's internals.

pub mod form;
pub mod keys;
pub mod names;
pub mod xml;
