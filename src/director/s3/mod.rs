//! The S3 front: routing and the request target, object and multipart routes, request
//! bodies and request verification. It turns HTTP requests into calls on `Director` and
//! never touches the journal's framing or a store.

pub mod api;
pub mod auth;
pub mod body;
pub mod multipart_routes;
pub mod object_routes;
