//! FNV-1a, 64-bit: a small, deterministic hash for identities that must be
//! the same across runs and platforms (std's hasher is randomly seeded).
//! Not for anything an adversary chooses to collide.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The FNV-1a hash of `bytes`.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(FNV_OFFSET, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME))
}

/// FNV-1a fed piece by piece: `Fnv1a::default()`, then `write` as often as
/// needed; `finish` equals [`fnv1a`] of all the bytes written.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(FNV_OFFSET)
    }
}

impl Fnv1a {
    /// Add `bytes`.
    pub fn write(&mut self, bytes: &[u8]) {
        self.0 = bytes.iter().fold(self.0, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(FNV_PRIME));
    }

    /// Add `value` as its 8 little-endian bytes, the same on every platform.
    pub fn write_u64(&mut self, value: u64) {
        self.write(&value.to_le_bytes());
    }

    /// The hash of everything written.
    pub fn finish(self) -> u64 {
        self.0
    }
}

/// MurmurHash3's 64-bit finaliser: every bit of `hash` moves every bit of
/// the result. FNV-1a's high bits barely depend on its input's last bytes,
/// so keys differing only there (`t1`, `t2`) need this before being spread
/// over buckets by their high bits.
pub fn mix(mut hash: u64) -> u64 {
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_reference_values() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(super::fnv1a(*b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(super::fnv1a(*b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn piece_by_piece_equals_all_at_once() {
        let mut hasher = super::Fnv1a::default();
        hasher.write(b"ab");
        hasher.write_u64(7);
        let whole: Vec<u8> = b"ab".iter().copied().chain(7u64.to_le_bytes()).collect();
        assert_eq!(hasher.finish(), super::fnv1a(whole));
    }
}
