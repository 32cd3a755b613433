//! The Forward protocol's optional handshake, pure: the server's `HELO`,
//! checking the client's `PING` against the shared key, and the `PONG`.
//!
//! ```text
//! server -> ["HELO", {"nonce": <16 random bytes>, "auth": "", "keepalive": true}]
//! client -> ["PING", client_hostname, salt, sha512_hex(salt + client_hostname + nonce + key), user, password]
//! server -> ["PONG", ok, reason, server_hostname, sha512_hex(salt + server_hostname + nonce + key)]
//! ```
//!
//! Weir authenticates by the shared key only: `auth` is empty, so a
//! client's username and password are not asked for and are ignored.

use rmpv::ValueRef;
use sha2::{Digest, Sha512};

use crate::core::msgpack::kind;

/// `HELO` with `nonce`.
pub fn helo(nonce: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    let w = &mut out;
    rmp::encode::write_array_len(w, 2).expect("writing to a Vec cannot fail");
    rmp::encode::write_str(w, "HELO").expect("writing to a Vec cannot fail");
    rmp::encode::write_map_len(w, 3).expect("writing to a Vec cannot fail");
    rmp::encode::write_str(w, "nonce").expect("writing to a Vec cannot fail");
    rmp::encode::write_bin(w, nonce).expect("writing to a Vec cannot fail");
    rmp::encode::write_str(w, "auth").expect("writing to a Vec cannot fail");
    rmp::encode::write_str(w, "").expect("writing to a Vec cannot fail");
    rmp::encode::write_str(w, "keepalive").expect("writing to a Vec cannot fail");
    rmp::encode::write_bool(w, true).expect("writing to a Vec cannot fail");
    out
}

/// `sha512_hex(salt + hostname + nonce + key)`, the digest both sides send.
pub fn digest(salt: &[u8], hostname: &str, nonce: &[u8], key: &str) -> String {
    let mut sha = Sha512::new();
    sha.update(salt);
    sha.update(hostname.as_bytes());
    sha.update(nonce);
    sha.update(key.as_bytes());
    hex::encode(sha.finalize())
}

/// Check a `PING` (its elements after `"PING"`). On success, the `PONG` to
/// send; on failure, the reason, for the refusing `PONG` and the log.
pub fn answer_ping(ping: &[ValueRef<'_>], nonce: &[u8], key: &str, server_hostname: &str) -> Result<Vec<u8>, String> {
    let bytes = |i: usize, what: &str| -> Result<&[u8], String> {
        match ping.get(i) {
            Some(ValueRef::String(s)) => Ok(s.as_bytes()),
            Some(ValueRef::Binary(b)) => Ok(b),
            Some(other) => Err(format!("PING {what} is {}, not a string", kind(other))),
            None => Err(format!("PING has no {what}")),
        }
    };
    let client_hostname = String::from_utf8_lossy(bytes(0, "client hostname")?).into_owned();
    let salt = bytes(1, "shared key salt")?;
    let sent = bytes(2, "shared key digest")?;
    let expected = digest(salt, &client_hostname, nonce, key);
    // Constant time: the digest is the proof of the key.
    if !bool::from(subtle::ConstantTimeEq::ct_eq(sent, expected.as_bytes())) {
        return Err(format!("shared key mismatch (client {client_hostname:?})"));
    }
    Ok(pong(true, "", server_hostname, &digest(salt, server_hostname, nonce, key)))
}

/// `PONG`: the verdict, the reason when refused, and the server's proof of
/// the key (empty when refused).
pub fn pong(ok: bool, reason: &str, server_hostname: &str, server_digest: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(192);
    let w = &mut out;
    rmp::encode::write_array_len(w, 5).expect("writing to a Vec cannot fail");
    rmp::encode::write_str(w, "PONG").expect("writing to a Vec cannot fail");
    rmp::encode::write_bool(w, ok).expect("writing to a Vec cannot fail");
    rmp::encode::write_str(w, reason).expect("writing to a Vec cannot fail");
    rmp::encode::write_str(w, server_hostname).expect("writing to a Vec cannot fail");
    rmp::encode::write_str(w, server_digest).expect("writing to a Vec cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(hostname: &str, salt: &[u8], digest: &str) -> Vec<u8> {
        let mut out = Vec::new();
        rmp::encode::write_array_len(&mut out, 6).unwrap();
        for part in ["PING", hostname] {
            rmp::encode::write_str(&mut out, part).unwrap();
        }
        rmp::encode::write_bin(&mut out, salt).unwrap();
        for part in [digest, "", ""] {
            rmp::encode::write_str(&mut out, part).unwrap();
        }
        out
    }

    fn elements(bytes: &[u8]) -> Vec<ValueRef<'_>> {
        let value = rmpv::decode::read_value_ref(&mut &bytes[..]).unwrap();
        value.into_array().unwrap().into_iter().skip(1).collect()
    }

    #[test]
    fn a_ping_with_the_right_digest_gets_a_pong_proving_the_key() {
        let nonce = b"0123456789abcdef";
        let bytes = ping("client", b"salt", &digest(b"salt", "client", nonce, "k3y"));
        let pong = answer_ping(&elements(&bytes), nonce, "k3y", "weir").unwrap();
        let pong = rmpv::decode::read_value(&mut &pong[..]).unwrap();
        let items = pong.as_array().unwrap();
        assert_eq!(items[0].as_str(), Some("PONG"));
        assert_eq!(items[1].as_bool(), Some(true));
        assert_eq!(items[3].as_str(), Some("weir"));
        assert_eq!(items[4].as_str(), Some(digest(b"salt", "weir", nonce, "k3y").as_str()));
    }

    #[test]
    fn a_wrong_key_or_a_short_ping_is_refused_with_a_reason() {
        let nonce = b"n";
        let bytes = ping("client", b"salt", &digest(b"salt", "client", nonce, "other"));
        let reason = answer_ping(&elements(&bytes), nonce, "k3y", "weir").unwrap_err();
        assert_eq!(reason, "shared key mismatch (client \"client\")");
        let short = answer_ping(&[], nonce, "k3y", "weir").unwrap_err();
        assert_eq!(short, "PING has no client hostname");
    }

    #[test]
    fn helo_offers_the_nonce_and_asks_no_user() {
        let helo = helo(b"nonce");
        let value = rmpv::decode::read_value(&mut &helo[..]).unwrap();
        let items = value.as_array().unwrap();
        assert_eq!(items[0].as_str(), Some("HELO"));
        let options = items[1].as_map().unwrap();
        assert_eq!(options[0].1.as_slice(), Some(&b"nonce"[..]));
        assert_eq!(options[1].1.as_str(), Some(""));
    }
}
