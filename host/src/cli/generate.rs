//! `weir generate`: sample mobile-app log chunks, the shape the quickstart,
//! tests and benchmarks use. Each chunk is one HTTP POST's worth: app and
//! device context plus a `logs` array of statements (transaction response
//! times, page loads, cold starts), each beginning with its RFC 3339 time.
//! Deterministic for a given seed. Payments take 300–600 ms, searches
//! 120–240, logins 80–160, unless `--slow` stages an incident.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// How many chunks.
    #[arg(long, default_value_t = 10)]
    chunks: u64,
    /// Statements per chunk.
    #[arg(long, default_value_t = 20)]
    statements: u64,
    /// Seed of the pseudo-random values.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Time of the first statement (RFC 3339).
    #[arg(long, default_value = "2026-11-22T10:00:00Z")]
    start: String,
    /// Milliseconds between consecutive statements.
    #[arg(long, default_value_t = 250)]
    step_ms: i64,
    /// An incident: `TXN[@OS]=FROM..TO` triples the response times of
    /// transaction TXN (on OS only, if given) from FROM to TO after --start,
    /// e.g. `pay@ios=4m..9m`.
    #[arg(long, value_parser = Slowdown::parse)]
    slow: Option<Slowdown>,
}

/// A transaction made slow for a span of event time (`--slow`).
#[derive(Debug, Clone)]
struct Slowdown {
    txn: String,
    os: Option<String>,
    from: std::time::Duration,
    to: std::time::Duration,
}

impl Slowdown {
    const FACTOR: u64 = 3;

    fn parse(text: &str) -> Result<Self, String> {
        let usage = || format!("{text:?}: expected TXN[@OS]=FROM..TO, e.g. pay@ios=4m..9m");
        let (who, span) = text.split_once('=').ok_or_else(usage)?;
        let (txn, os) = match who.split_once('@') {
            Some((txn, os)) => (txn, Some(os.to_string())),
            None => (who, None),
        };
        let (from, to) = span.split_once("..").ok_or_else(usage)?;
        let duration = |d: &str| humantime::parse_duration(d).map_err(|e| format!("{text:?}: {d:?}: {e}"));
        let (from, to) = (duration(from)?, duration(to)?);
        if txn.is_empty() || os.as_deref() == Some("") || to <= from {
            return Err(usage());
        }
        Ok(Self { txn: txn.to_string(), os, from, to })
    }

    /// Whether a statement of `txn` on `os`, `offset` after --start, is slowed.
    fn applies(&self, txn: &str, os: &str, offset: std::time::Duration) -> bool {
        txn == self.txn && self.os.as_deref().is_none_or(|o| o == os) && (self.from..self.to).contains(&offset)
    }
}

/// xorshift64*: tiny, deterministic, good enough for sample data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

pub fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let start = chrono::DateTime::parse_from_rfc3339(&args.start).context("--start is not RFC 3339")?.to_utc();
    let mut rng = Rng(args.seed.max(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut n: i64 = 0;
    for chunk in 0..args.chunks {
        let os = rng.pick(&["ios", "android"]);
        let logs: Vec<String> = (0..args.statements)
            .map(|_| {
                let elapsed_ms = n * args.step_ms;
                let offset = std::time::Duration::from_millis(elapsed_ms.max(0) as u64);
                let time = start + chrono::Duration::milliseconds(elapsed_ms);
                n += 1;
                let ts = time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                match rng.below(10) {
                    0..=5 => {
                        let txn = rng.pick(&["pay", "search", "login"]);
                        let base = match txn {
                            "pay" => 300,
                            "search" => 120,
                            _ => 80,
                        };
                        let status = if rng.below(20) == 0 { "error" } else { "ok" };
                        let mut ms = base + rng.below(base);
                        if args.slow.as_ref().is_some_and(|s| s.applies(txn, os, offset)) {
                            ms *= Slowdown::FACTOR;
                        }
                        format!("{ts} txn={txn} status={status} resp_ms={ms}")
                    }
                    6..=8 => {
                        let page = rng.pick(&["home", "cart", "product", "checkout"]);
                        format!("{ts} page={page} load={}ms render={}ms", 200 + rng.below(1800), 10 + rng.below(90))
                    }
                    _ => format!("{ts} cold_start={:.2}s", 0.4 + rng.below(2000) as f64 / 1000.0),
                }
            })
            .collect();
        let body = serde_json::json!({
            "app": "shop",
            "app_version": rng.pick(&["4.2.0", "4.2.1", "4.3.0"]),
            "device": {
                "os": os,
                "os_version": if os == "ios" { rng.pick(&["17.1", "18.0"]) } else { rng.pick(&["13", "14"]) },
                "model": if os == "ios" { rng.pick(&["iPhone14,2", "iPhone15,3"]) } else { rng.pick(&["Pixel 8", "SM-S918B"]) },
            },
            "session": format!("s-{chunk:06}"),
            "logs": logs,
        });
        serde_json::to_writer(&mut out, &body)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
