//! The snapshot envelope: a JSON object naming the plugin that wrote it and
//! its format number beside the state's own fields,
//! `{"plugin": "weir-plugin-x", "format": 1, ...state}`, so a snapshot of
//! another filter or of an incompatible version is refused with a clear
//! message instead of being misread. What the state holds, and any check
//! of it against the instance's config, is each filter's.
//!
//! The state's fields sit at the top level (serde `flatten`) rather than
//! under a key of their own, so the bytes are those each filter wrote before
//! this module existed.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Which plugin writes a snapshot, and in which format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotEnvelope {
    plugin: &'static str,
    format: u32,
}

#[derive(Serialize)]
struct Outgoing<'a, T> {
    plugin: &'a str,
    format: u32,
    #[serde(flatten)]
    state: &'a T,
}

/// The envelope alone, other keys ignored, to learn a snapshot's format.
#[derive(Deserialize)]
struct Header {
    plugin: String,
    format: u32,
}

/// Unknown keys are refused here, not on `T`: a flattened struct only sees
/// the keys it knows.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming<T> {
    plugin: String,
    format: u32,
    #[serde(flatten)]
    state: T,
}

impl SnapshotEnvelope {
    /// The envelope of `plugin` (its crate name), at `format`: bump it when
    /// the state changes incompatibly, as restore refuses any other.
    pub const fn new(plugin: &'static str, format: u32) -> Self {
        Self { plugin, format }
    }

    /// Write `state`, which must serialise as a struct or map with string
    /// keys, inside the envelope.
    pub fn write<T: Serialize>(&self, state: &T) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(&Outgoing { plugin: self.plugin, format: self.format, state })
    }

    /// The format a snapshot of this plugin was written in, for a plugin
    /// that still reads earlier formats: it reads the snapshot with the
    /// envelope of that format. The error says whether the bytes are not a
    /// snapshot at all or are another plugin's.
    pub fn format_of(&self, bytes: &[u8]) -> Result<u32, String> {
        let plugin = self.plugin;
        let header: Header =
            serde_json::from_slice(bytes).map_err(|e| format!("snapshot is not a {plugin} snapshot: {e}"))?;
        if header.plugin != plugin {
            return Err(format!("snapshot is from {:?}, not {plugin}", header.plugin));
        }
        Ok(header.format)
    }

    /// Read a snapshot this envelope wrote. The error, a sentence for the
    /// host's log, says whether the bytes are not such a snapshot at all, are
    /// another plugin's, or are of another format.
    pub fn read<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, String> {
        let Self { plugin, format } = *self;
        let envelope: Incoming<T> = serde_json::from_slice(bytes)
            .map_err(|e| format!("snapshot is not a {plugin} snapshot of format {format}: {e}"))?;
        if envelope.plugin != plugin {
            return Err(format!("snapshot is from {:?}, not {plugin}", envelope.plugin));
        }
        if envelope.format != format {
            return Err(format!(
                "snapshot format {} is not supported (this plugin reads format {format})",
                envelope.format
            ));
        }
        Ok(envelope.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENVELOPE: SnapshotEnvelope = SnapshotEnvelope::new("weir-plugin-test", 1);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct State {
        count: u64,
        since: Option<i64>,
    }

    #[test]
    fn state_fields_sit_beside_plugin_and_format() {
        let state = State { count: 3, since: Some(-5) };
        let bytes = ENVELOPE.write(&state).unwrap();
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"plugin":"weir-plugin-test","format":1,"count":3,"since":-5}"#
        );
        assert_eq!(ENVELOPE.read::<State>(&bytes), Ok(state));
    }

    #[test]
    fn the_format_of_a_snapshot_is_read_before_its_state() {
        let bytes = SnapshotEnvelope::new("weir-plugin-test", 7).write(&State { count: 1, since: None }).unwrap();
        assert_eq!(ENVELOPE.format_of(&bytes), Ok(7));
        assert_eq!(
            ENVELOPE.format_of(br#"{"plugin":"weir-plugin-other","format":1}"#),
            Err(r#"snapshot is from "weir-plugin-other", not weir-plugin-test"#.to_string())
        );
        assert!(ENVELOPE.format_of(b"[]").unwrap_err().starts_with("snapshot is not a weir-plugin-test snapshot: "));
    }

    #[test]
    fn other_plugins_formats_and_shapes_are_refused() {
        let read = |json: &str| ENVELOPE.read::<State>(json.as_bytes()).unwrap_err();
        assert_eq!(
            read(r#"{"plugin":"weir-plugin-other","format":1,"count":3,"since":null}"#),
            r#"snapshot is from "weir-plugin-other", not weir-plugin-test"#
        );
        assert_eq!(
            read(r#"{"plugin":"weir-plugin-test","format":2,"count":3,"since":null}"#),
            "snapshot format 2 is not supported (this plugin reads format 1)"
        );
        for garbage in [
            "not json",
            r#"{"plugin":"weir-plugin-test","format":1,"since":null}"#,
            r#"{"plugin":"weir-plugin-test","format":1,"count":3,"since":null,"extra":0}"#,
            r#"{"count":3,"since":null}"#,
        ] {
            let e = read(garbage);
            assert!(e.starts_with("snapshot is not a weir-plugin-test snapshot of format 1: "), "{garbage}: {e}");
        }
    }
}
