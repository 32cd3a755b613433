//! [`Auth`]: HTTP credentials, one shape for every component that sends or
//! checks them (the `elasticsearch` and `alertmanager` outputs send them,
//! the `http` input checks them):
//!
//! ```yaml
//! auth: { basic: { username: weir, password: "${ES_PASSWORD}" } }
//! auth: { bearer: { token: "${TOKEN}" } }
//! auth: { api_key: "${ES_API_KEY}" }   # Elasticsearch's `ApiKey` scheme
//! ```
//!
//! The `elasticsearch` output's first shape, `{user, password}`, is still
//! read as `basic`.

use serde::{Deserialize, Deserializer};

use super::secret::Secret;

/// HTTP credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `Authorization: Basic base64(username:password)`.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer {
        /// The token.
        token: Secret,
    },
    /// `Authorization: ApiKey <key>`, as Elasticsearch issues them (the
    /// `encoded` value: base64 of `id:key`).
    ApiKey {
        /// The key.
        key: Secret,
    },
}

/// The YAML shape: one mapping, checked as a whole so a half-filled one is
/// refused with what is expected.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    basic: Option<RawBasic>,
    bearer: Option<RawBearer>,
    api_key: Option<Secret>,
    // The `elasticsearch` output's original basic-auth shape.
    user: Option<String>,
    password: Option<Secret>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBasic {
    username: String,
    password: Secret,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBearer {
    token: Secret,
}

const EXPECTED: &str = "expected exactly one of `basic: {username, password}`, `bearer: {token}` or `api_key: KEY`";

impl<'de> Deserialize<'de> for Auth {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawAuth::deserialize(deserializer)?;
        let auth = match raw {
            RawAuth {
                basic: Some(RawBasic { username, password }),
                bearer: None,
                api_key: None,
                user: None,
                password: None,
            } => Auth::Basic { username, password },
            RawAuth { basic: None, bearer: Some(RawBearer { token }), api_key: None, user: None, password: None } => {
                Auth::Bearer { token }
            }
            RawAuth { basic: None, bearer: None, api_key: Some(key), user: None, password: None } => {
                Auth::ApiKey { key }
            }
            RawAuth { basic: None, bearer: None, api_key: None, user: Some(username), password: Some(password) } => {
                Auth::Basic { username, password }
            }
            _ => return Err(serde::de::Error::custom(EXPECTED)),
        };
        Ok(auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Auth, String> {
        serde_norway::from_str(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn every_shape_reads_and_the_old_one_too() {
        let basic = Auth::Basic { username: "u".into(), password: Secret::new("p") };
        assert_eq!(parse("{ basic: { username: u, password: p } }").unwrap(), basic);
        assert_eq!(parse("{ user: u, password: p }").unwrap(), basic);
        assert_eq!(parse("{ bearer: { token: t } }").unwrap(), Auth::Bearer { token: Secret::new("t") });
        assert_eq!(parse("{ api_key: k }").unwrap(), Auth::ApiKey { key: Secret::new("k") });
    }

    #[test]
    fn half_filled_or_mixed_shapes_say_what_is_expected() {
        for bad in ["{ user: u }", "{ api_key: k, bearer: { token: t } }", "{}"] {
            assert!(parse(bad).unwrap_err().contains("expected exactly one of"), "{bad}");
        }
        assert!(parse("{ basic: { username: u } }").is_err());
    }

    #[test]
    fn credentials_do_not_show_in_debug_output() {
        let auth = parse("{ basic: { username: u, password: hunter2 } }").unwrap();
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
