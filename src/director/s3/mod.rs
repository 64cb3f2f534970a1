//! The S3 front: routing and the request target, object and multipart routes, request
//! bodies and request verification. It turns HTTP requests into calls on `Director` and
//! never touches the journal's framing or a store.

pub mod acl;
pub mod api;
pub mod attributes;
pub mod auth;
pub mod body;
pub mod multipart_routes;
pub mod object_routes;
pub mod object_versions;
pub mod post_object;
pub mod target;
pub mod version_routes;

use crate::director::Director;
use crate::metrics::Metrics;
use auth::Auth;
use std::sync::Arc;
use std::time::Instant;

/// The S3 API of one director: `Request -> Response` (`handle`, in api.rs), with the
/// routes of object_routes.rs and multipart_routes.rs and the admin routes of
/// `director::admin`, all as methods of this type.
pub struct DirectorApi {
    pub director: Arc<Director>,
    pub metrics: Metrics,
    /// Verifies every request before it is routed (open when there is no keys file).
    pub auth: Auth,
    pub(crate) started: Instant,
    request_ids: std::sync::atomic::AtomicU64,
}

impl DirectorApi {
    pub fn new(director: Arc<Director>) -> DirectorApi {
        DirectorApi {
            director,
            metrics: Metrics::default(),
            auth: Auth::open(),
            started: Instant::now(),
            request_ids: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// The same API with keys: requests must be signed.
    pub fn with_auth(mut self, auth: Auth) -> DirectorApi {
        self.auth = auth;
        self
    }
}
