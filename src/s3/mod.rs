//! What the director, the tools and `dpyfs admin` share about S3: the small XML documents.

pub mod xml;
