//! Who may post: the credentials a request must present, checked in
//! constant time. Configured as `auth:` (the shape every component shares,
//! [`Auth`]) or, as first written, `auth_token:` (any scheme carrying that
//! secret: `Bearer <t>`, `ApiKey <t>`, or Basic auth with any user and `<t>`
//! as password, which is what Elasticsearch clients send).

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use super::errors::RequestError;
use crate::core::auth::Auth;
use crate::core::secret::Secret;

/// The credentials every request except `GET /health` must carry; none
/// when the input has no auth.
#[derive(Debug, Clone)]
pub(super) enum Required {
    /// `auth_token:`: the secret in any scheme.
    Token(Secret),
    /// `auth:`: exactly these credentials in this scheme.
    Exact(Auth),
}

impl Required {
    /// Accept or refuse a request by its `Authorization` header.
    ///
    /// # Errors
    /// [`RequestError::Unauthorized`] when the header is absent, malformed
    /// or carries other credentials.
    pub(super) fn check(&self, headers: &HeaderMap) -> Result<(), RequestError> {
        let presented = headers.get(header::AUTHORIZATION).and_then(|v| Presented::parse(v.as_bytes()));
        let ok = match (self, presented) {
            (_, None) => false,
            (Required::Token(token), Some(p)) => eq(p.secret(), token.expose().as_bytes()),
            (Required::Exact(Auth::Bearer { token }), Some(Presented::Bearer(t))) => eq(&t, token.expose().as_bytes()),
            (Required::Exact(Auth::ApiKey { key }), Some(Presented::ApiKey(k))) => eq(&k, key.expose().as_bytes()),
            (Required::Exact(Auth::Basic { username, password }), Some(Presented::Basic { user, password: p })) => {
                // Both compared, always, so timing tells nothing of which differed.
                eq(&user, username.as_bytes()) & eq(&p, password.expose().as_bytes())
            }
            (Required::Exact(_), Some(_)) => false,
        };
        if ok { Ok(()) } else { Err(RequestError::Unauthorized) }
    }
}

/// Credentials as a request presents them.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Presented {
    /// `Bearer <token>`.
    Bearer(Vec<u8>),
    /// `ApiKey <key>`.
    ApiKey(Vec<u8>),
    /// `Basic base64(user:password)`.
    Basic {
        /// The user.
        user: Vec<u8>,
        /// The password.
        password: Vec<u8>,
    },
}

impl Presented {
    /// Read an `Authorization` value; `None` for an unknown scheme or bad
    /// base64.
    pub(super) fn parse(value: &[u8]) -> Option<Presented> {
        let text = std::str::from_utf8(value).ok()?.trim();
        let (scheme, rest) = text.split_once(' ')?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            Some(Presented::Bearer(rest.as_bytes().to_vec()))
        } else if scheme.eq_ignore_ascii_case("apikey") {
            Some(Presented::ApiKey(rest.as_bytes().to_vec()))
        } else if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64::engine::general_purpose::STANDARD.decode(rest).ok()?;
            let colon = decoded.iter().position(|&b| b == b':')?;
            Some(Presented::Basic { user: decoded[..colon].to_vec(), password: decoded[colon + 1..].to_vec() })
        } else {
            None
        }
    }

    /// The secret part: the token, the key, or the password.
    pub(super) fn secret(&self) -> &[u8] {
        match self {
            Presented::Bearer(s) | Presented::ApiKey(s) => s,
            Presented::Basic { password, .. } => password,
        }
    }
}

/// Equal in constant time (only a length difference shows).
fn eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}
