//! [`Secret`]: a credential from the config (a token, a password, an API
//! key). Its `Debug` shows `<redacted>`, so printing a config, a component
//! or an error never leaks one.

use std::fmt;

use serde::{Deserialize, Deserializer};

/// A credential; read it with [`Secret::expose`] where it is sent or
/// compared, nowhere else. An empty or null one is refused when read from
/// config: an unset variable must never turn into "no credential".
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let Some(value) = Option::<String>::deserialize(deserializer)? else {
            return Err(serde::de::Error::custom("a credential must not be null"));
        };
        if value.is_empty() {
            return Err(serde::de::Error::custom("a credential must not be empty"));
        }
        Ok(Secret(value))
    }
}

/// For `Option` settings guarding access (`#[serde(default,
/// deserialize_with = "present")]`): absent means off, but a key that is
/// present must hold a value. `auth_token:` left empty, `~`, or a YAML
/// alias to nothing is an error, never "no auth".
///
/// # Errors
/// When the value is null, or `T`'s own error.
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    match Option::<T>::deserialize(deserializer)? {
        Some(value) => Ok(Some(value)),
        None => Err(serde::de::Error::custom("is null; give it a value, or remove the key to turn it off")),
    }
}

impl Secret {
    /// Wrap a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_output_hides_the_value() {
        let secret = super::Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "<redacted>");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn empty_or_null_credentials_are_refused() {
        #[derive(Debug, serde::Deserialize)]
        struct Settings {
            #[serde(default, deserialize_with = "super::present")]
            token: Option<super::Secret>,
        }
        let parse = |yaml: &str| serde_norway::from_str::<Settings>(yaml).map_err(|e| e.to_string());
        assert!(parse("{}").unwrap().token.is_none(), "absent: off");
        assert!(parse("{ token: '' }").unwrap_err().contains("must not be empty"));
        assert!(parse("{ token: ~ }").unwrap_err().contains("is null"));
        assert!(parse("{ token: }").unwrap_err().contains("is null"));
        assert_eq!(parse("{ token: 'k3y #x' }").unwrap().token.unwrap().expose(), "k3y #x");
    }
}
