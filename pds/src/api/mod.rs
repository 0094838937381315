//! The XRPC methods this server implements, by namespace.

use atproto_types::lexicons::com::atproto::server as server_ns;
use axum::Router;

use crate::state::AppState;

mod account;
pub mod server;

/// Every mounted XRPC route.
pub fn routes() -> Router<AppState> {
    Router::new().merge(server_ns::routes::<AppState>())
}
