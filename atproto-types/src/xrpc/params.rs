//! Query-string decoding: `name=value` pairs (repeated names for arrays),
//! typed and checked per the method's lexicon `parameters`.

use atproto_lexicon::Catalog;

use super::body::prefixed;
use super::{serde, serde_json, XrpcError};

/// Decode the query string of a request to method `nsid` into a JSON
/// object of typed values (booleans, integers, strings, arrays), applying
/// defaults and checking every lexicon constraint (required, ranges,
/// lengths, formats, enums; `knownValues` do not restrict). Parameters the
/// lexicon does not declare are ignored.
pub fn parse_query(
    catalog: &Catalog,
    nsid: &str,
    query: Option<&str>,
) -> Result<serde_json::Map<String, serde_json::Value>, XrpcError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let typed = catalog
        .parse_params(nsid, pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|errors| XrpcError::invalid_request(prefixed("Params", &errors)))?;
    Ok(typed
        .into_iter()
        .map(|(name, value)| (name, value.to_json()))
        .collect())
}

/// Decode the query string into the method's generated `Params` type.
pub fn decode_params<P: serde::de::DeserializeOwned>(
    catalog: &Catalog,
    nsid: &str,
    query: Option<&str>,
) -> Result<P, XrpcError> {
    let object = parse_query(catalog, nsid, query)?;
    from_object(object)
}

/// Deserialize checked parameters into a `Params` type.
pub(crate) fn from_object<P: serde::de::DeserializeOwned>(
    object: serde_json::Map<String, serde_json::Value>,
) -> Result<P, XrpcError> {
    serde_json::from_value(serde_json::Value::Object(object))
        .map_err(|e| XrpcError::invalid_request(format!("Params: {e}")))
}
