//! The XRPC methods this server implements, by namespace.

use atproto_types::lexicons::app::bsky::actor as actor_ns;
use atproto_types::lexicons::com::atproto::admin as admin_ns;
use atproto_types::lexicons::com::atproto::identity as identity_ns;
use atproto_types::lexicons::com::atproto::repo as repo_ns;
use atproto_types::lexicons::com::atproto::server as server_ns;
use atproto_types::lexicons::com::atproto::sync as sync_ns;
use atproto_types::lexicons::com::atproto::temp as temp_ns;
use axum::Router;

use crate::state::AppState;

mod account;
pub mod account_status;
pub mod actor;
pub mod admin;
pub mod app_password;
pub mod blobs;
pub mod email;
pub mod identity;
pub mod repo;
pub mod server;
pub mod signing;
pub mod sync;
mod temp;

/// Every mounted XRPC route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(server_ns::routes::<AppState>())
        .merge(repo_ns::routes::<AppState>())
        .merge(sync_ns::routes::<AppState>())
        .merge(temp_ns::routes::<AppState>())
        .merge(identity_ns::routes::<AppState>())
        .merge(actor_ns::routes::<AppState>())
        .merge(admin_ns::routes::<AppState>())
}
