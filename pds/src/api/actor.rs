//! `app.bsky.actor`: the account's private preferences
//! (`getPreferences`, `putPreferences`), kept by this server as the
//! reference PDS does. The rest of the namespace (profiles, search) is the
//! appview's: those methods are not mounted, so the proxy forwards them.
//!
//! Rules (the reference's): every preference has a `$type` in the
//! `app.bsky` namespace; `putPreferences` replaces the whole `app.bsky`
//! set; `app.bsky.actor.defs#personalDetailsPref` is written and read only
//! by privileged sessions (account password or privileged app password).

use atproto_types::lexicons::app::bsky::actor::{get_preferences, put_preferences, AppBskyActor};
use atproto_types::xrpc::{NotImplemented, XrpcError, XrpcRequest};
use pds_store::Preference;
use serde_json::Value;

use crate::auth::AccessStandard;
use crate::error::ApiError;
use crate::state::AppState;

/// The preference namespace these methods read and write.
pub const NAMESPACE: &str = "app.bsky";

/// Preferences only privileged sessions may read or write.
const PRIVILEGED_ONLY_PREFS: &[&str] = &["app.bsky.actor.defs#personalDetailsPref"];

/// Why a set of preferences was refused (400 `InvalidRequest` each).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PreferenceError {
    #[error("Preference is missing a $type")]
    MissingType,
    #[error("Some preferences are not in the {NAMESPACE} namespace")]
    WrongNamespace,
    #[error("Do not have authorization to set preferences.")]
    NotAllowed,
}

/// Whether `type_name` is in `namespace` (`ns` itself or `ns.` anything).
fn in_namespace(namespace: &str, type_name: &str) -> bool {
    type_name == namespace
        || type_name
            .strip_prefix(namespace)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// Whether a session may see or set a preference of `type_name`.
fn allowed(type_name: &str, privileged: bool) -> bool {
    privileged || !PRIVILEGED_ONLY_PREFS.contains(&type_name)
}

/// Checks a new preference set and turns it into stored rows.
pub fn check_preferences(
    items: &[Value],
    privileged: bool,
) -> Result<Vec<Preference>, PreferenceError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(type_name) = item.get("$type").and_then(Value::as_str) else {
            return Err(PreferenceError::MissingType);
        };
        if !in_namespace(NAMESPACE, type_name) {
            return Err(PreferenceError::WrongNamespace);
        }
        if !allowed(type_name, privileged) {
            return Err(PreferenceError::NotAllowed);
        }
        out.push(Preference {
            name: type_name.to_owned(),
            value_json: item.to_string(),
        });
    }
    Ok(out)
}

/// The stored preferences a session may see, as JSON values.
pub fn visible_preferences(stored: Vec<Preference>, privileged: bool) -> Vec<Value> {
    stored
        .into_iter()
        .filter(|p| allowed(&p.name, privileged))
        .filter_map(|p| match serde_json::from_str(&p.value_json) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(name = %p.name, error = %e, "stored preference is not JSON; skipped");
                None
            }
        })
        .collect()
}

impl AppBskyActor for AppState {
    type GetPreferencesAuth = AccessStandard;
    type GetProfileAuth = NotImplemented;
    type GetProfilesAuth = NotImplemented;
    type GetSuggestionsAuth = NotImplemented;
    type PutPreferencesAuth = AccessStandard;
    type SearchActorsAuth = NotImplemented;
    type SearchActorsTypeaheadAuth = NotImplemented;

    async fn get_preferences(
        &self,
        auth: AccessStandard,
        _: XrpcRequest<get_preferences::Params, ()>,
    ) -> Result<get_preferences::Output, XrpcError<get_preferences::Error>> {
        let stored = self
            .store
            .accounts()
            .get_preferences(&auth.did, NAMESPACE)
            .await
            .map_err(ApiError::from)?;
        let preferences = visible_preferences(stored, auth.is_privileged());
        serde_json::from_value(serde_json::json!({ "preferences": preferences }))
            .map_err(|e| ApiError::Internal(format!("stored preferences: {e}")).into())
    }

    async fn put_preferences(
        &self,
        auth: AccessStandard,
        req: XrpcRequest<put_preferences::Params, put_preferences::Input>,
    ) -> Result<(), XrpcError<put_preferences::Error>> {
        let items = match serde_json::to_value(&req.input.preferences) {
            Ok(Value::Array(items)) => items,
            Ok(_) => return Err(XrpcError::invalid_request("preferences must be an array")),
            Err(e) => return Err(ApiError::Internal(format!("preferences: {e}")).into()),
        };
        let prefs = check_preferences(&items, auth.is_privileged())
            .map_err(|e| XrpcError::invalid_request(e.to_string()))?;
        self.store
            .accounts()
            .put_preferences(&auth.did, NAMESPACE, &prefs)
            .await
            .map_err(ApiError::from)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn namespace_match() {
        assert!(in_namespace(
            "app.bsky",
            "app.bsky.actor.defs#adultContentPref"
        ));
        assert!(in_namespace("app.bsky", "app.bsky"));
        assert!(!in_namespace("app.bsky", "app.bskyx.pref"));
        assert!(!in_namespace("app.bsky", "com.example.pref"));
    }

    #[test]
    fn checks() {
        let personal = json!({"$type": "app.bsky.actor.defs#personalDetailsPref"});
        let adult = json!({"$type": "app.bsky.actor.defs#adultContentPref", "enabled": true});
        assert_eq!(
            check_preferences(&[json!({"enabled": true})], true),
            Err(PreferenceError::MissingType)
        );
        assert_eq!(
            check_preferences(&[json!({"$type": "com.example.p"})], true),
            Err(PreferenceError::WrongNamespace)
        );
        assert_eq!(
            check_preferences(&[adult.clone(), personal.clone()], false),
            Err(PreferenceError::NotAllowed)
        );
        let rows = check_preferences(&[adult.clone(), personal.clone()], true).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].name, "app.bsky.actor.defs#adultContentPref");
        let seen = visible_preferences(rows.clone(), false);
        assert_eq!(seen, vec![adult.clone()]);
        assert_eq!(visible_preferences(rows, true), vec![adult, personal]);
    }
}
