//! A test filter that misbehaves on demand, so host tests can prove a bad
//! plugin is contained: its trap, endless loop or memory growth becomes a dead
//! letter, and other records keep flowing. Not a real filter; never shipped.
//!
//! Config: `{"mode": "trap" | "loop" | "memory_bomb" | "amplify", "factor": N,
//! "noisy": bool, "tick": "trap" | "loop"}`; `noisy` writes a line to stderr
//! in `configure`, as plugins that log on start-up do; `tick` makes every
//! `tick` call trap or spin, to test that ticks are contained too.
//! Every event passes through unchanged, with its parent, except an event
//! whose body contains the bytes `poison` (so `{"m":"poison"}` matches):
//! - `trap`: panics with "poisoned record";
//! - `loop`: spins forever (until the host's epoch deadline);
//! - `memory_bomb`: allocates and touches 1 MiB blocks without bound;
//! - `amplify`: emits `factor` copies (default 1000);
//! - `probe`: replaces the event with what the sandbox let it see:
//!   `{"env": $WEIR_PROBE or null, "dir": entries of /data or an error,
//!   "now_ns": WASI wall-clock time, "network": "connected" or an error
//!   connecting to 127.0.0.1:$WEIR_PROBE_PORT}`, to test grants (and so it
//!   imports WASI sockets, which `weir plugin inspect` must show).
//!
//! `snapshot` returns the number of events processed so far as decimal text;
//! `restore` takes it back, and panics when the state is exactly `trap` (for
//! the host's reload tests).

#![forbid(unsafe_code)]

use std::hint::black_box;

use serde::Deserialize;
use weir_plugin_sdk::{BatchResult, ConfigError, Emitted, Event, Filter, config};

/// The marker that sets a poisoned event off.
const POISON: &[u8] = b"poison";

/// Copies per poisoned event in `amplify` mode when `factor` is not set:
/// enough to overflow any sane per-batch output limit.
const DEFAULT_FACTOR: u32 = 1000;

/// What to do with a poisoned event.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Trap,
    Loop,
    MemoryBomb,
    Amplify,
    Probe,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MisbehaveFilterConfig {
    mode: Mode,
    #[serde(default = "default_factor")]
    factor: u32,
    #[serde(default)]
    noisy: bool,
    #[serde(default)]
    tick: Option<TickFault>,
}

/// How `tick` misbehaves.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum TickFault {
    Trap,
    Loop,
}

fn default_factor() -> u32 {
    DEFAULT_FACTOR
}

/// The filter: its config and how many events it has processed.
struct MisbehaveFilter {
    config: MisbehaveFilterConfig,
    processed: u64,
}

impl Filter for MisbehaveFilter {
    fn configure(config: &str) -> Result<Self, ConfigError> {
        let config: MisbehaveFilterConfig = config::parse(config)?;
        if config.noisy {
            eprintln!("misbehave: configured in {:?} mode", config.mode);
        }
        Ok(Self { config, processed: 0 })
    }

    fn process(&mut self, events: Vec<Event>) -> Result<BatchResult, String> {
        let MisbehaveFilterConfig { mode, factor, .. } = self.config;
        let count = events.len() as u64;
        let mut emitted = Vec::with_capacity(events.len());
        for (index, event) in events.into_iter().enumerate() {
            let parent = Some(u32::try_from(index).expect("a WIT list has at most u32::MAX elements"));
            if !event.body.windows(POISON.len()).any(|w| w == POISON) {
                emitted.push(Emitted { parent, event });
                continue;
            }
            match mode {
                Mode::Trap => panic!("poisoned record"),
                Mode::Loop => spin_forever(),
                Mode::MemoryBomb => eat_memory(),
                Mode::Amplify => {
                    for _ in 0..factor {
                        emitted.push(Emitted { parent, event: event.clone() });
                    }
                }
                Mode::Probe => emitted.push(Emitted { parent, event: Event { body: probe(), ..event } }),
            }
        }
        self.processed += count;
        Ok(BatchResult { emitted, rejected: Vec::new() })
    }

    fn tick(&mut self, _now: weir_plugin_sdk::Timestamp) -> Vec<Event> {
        match self.config.tick {
            Some(TickFault::Trap) => panic!("tick trapped on purpose"),
            Some(TickFault::Loop) => spin_forever(),
            None => Vec::new(),
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        self.processed.to_string().into_bytes()
    }

    fn restore(&mut self, state: &[u8]) -> Result<(), String> {
        if state == b"trap" {
            panic!("restore asked to trap");
        }
        if state.is_empty() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(state);
        self.processed =
            text.parse().map_err(|_| format!("state {text:?} is not a decimal count of processed events"))?;
        Ok(())
    }
}

weir_plugin_sdk::export_filter!(MisbehaveFilter);

/// What the sandbox shows: an environment variable, a folder, the clock.
fn probe() -> Vec<u8> {
    let dir = match std::fs::read_dir("/data") {
        Ok(entries) => {
            let mut names: Vec<String> =
                entries.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned())).collect();
            names.sort();
            serde_json::json!(names)
        }
        Err(e) => serde_json::json!(format!("error: {e}")),
    };
    let now_ns =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let port = std::env::var("WEIR_PROBE_PORT").ok().and_then(|p| p.parse::<u16>().ok()).unwrap_or(9);
    let network = match std::net::TcpStream::connect(("127.0.0.1", port)) {
        Ok(_) => "connected".to_string(),
        Err(e) => format!("error: {e}"),
    };
    let seen = serde_json::json!({
        "env": std::env::var("WEIR_PROBE").ok(),
        "dir": dir,
        "now_ns": now_ns,
        "network": network,
    });
    serde_json::to_vec(&seen).expect("a JSON value serialises")
}

/// Spin until the host interrupts. `black_box` keeps the optimiser from
/// proving the loop does nothing.
fn spin_forever() -> ! {
    let mut n: u64 = 0;
    loop {
        n = black_box(n.wrapping_add(1));
    }
}

/// Grow memory until the host refuses. Each block is filled with non-zero
/// bytes so its pages are really touched, not left as lazily zeroed memory.
fn eat_memory() -> ! {
    /// One MiB: large enough to grow memory fast, small enough that the
    /// failing allocation lands close to the host's limit.
    const BLOCK: usize = 1 << 20;
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![0xA5; BLOCK]);
        black_box(&mut hoard);
    }
}
