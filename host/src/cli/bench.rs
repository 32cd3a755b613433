//! `weir bench`: one filter's throughput in-process, with no I/O: NDJSON
//! records from a file are loaded once and fed to the plugin in batches
//! for a fixed time. It measures the plugin and the boundary, nothing else.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::core::clock::Clock;
use crate::core::record::Record;
use crate::core::tag_match::TagMatch;
use crate::plugin::{Abi, EventFormat, FilterInstance, FilterSpec, Grants, Limits, PluginEngine};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The plugin component (.wasm), or with `--fluent-bit-function` a core
    /// module written to Fluent Bit's filter_wasm ABI.
    #[arg(long)]
    plugin: PathBuf,
    /// Run the plugin as a Fluent Bit-ABI module, calling this export once
    /// per record (`abi: fluent-bit`, `function:` in a pipeline).
    #[arg(long, value_name = "FUNCTION")]
    fluent_bit_function: Option<String>,
    /// The plugin's config block, as JSON.
    #[arg(long, default_value = "{}")]
    config: String,
    /// NDJSON file of input records (e.g. from `weir generate`).
    #[arg(long)]
    input: PathBuf,
    /// Tag of the input records.
    #[arg(long, default_value = "bench")]
    tag: String,
    /// Records per call.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// How long to measure, after a one-second warm-up.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
}

pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let tag: std::sync::Arc<str> = args.tag.as_str().into();
    let records: Vec<Record> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| Record {
            time: 0,
            tag: tag.clone(),
            body: l.as_bytes().to_vec().into(),
            origin: None,
            ack: None,
            arrival: None,
        })
        .collect();
    if records.is_empty() {
        bail!("{}: no records", args.input.display());
    }
    let spec = FilterSpec {
        name: args.plugin.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plugin".into()),
        wasm: args.plugin.clone(),
        abi: match &args.fluent_bit_function {
            None => Abi::Component,
            Some(function) => Abi::FluentBit { function: function.clone(), format: EventFormat::Json },
        },
        matches: TagMatch::new(vec!["*".into()]).map_err(anyhow::Error::msg)?,
        config: serde_json::from_str(&args.config).context("--config is not JSON")?,
        partition_by: None,
        limits: Limits { deadline: Duration::from_secs(60), ..Limits::default() },
        grants: Grants::default(),
        dedupe: None,
    };
    let engine = PluginEngine::new(None).map_err(|e| anyhow::anyhow!("starting the WebAssembly engine: {e:#}"))?;
    let mut instance = FilterInstance::new(&engine, &spec, Clock::system())?;

    let batches: Vec<&[Record]> = records.chunks(args.batch.max(1)).collect();
    let mut run = |budget: Duration| -> anyhow::Result<(u64, u64, Duration)> {
        let (mut records_in, mut records_out) = (0u64, 0u64);
        let start = Instant::now();
        'outer: loop {
            for batch in &batches {
                let result = instance.process(batch)?;
                records_in += batch.len() as u64;
                records_out += result.emitted.len() as u64;
                if start.elapsed() >= budget {
                    break 'outer;
                }
            }
        }
        Ok((records_in, records_out, start.elapsed()))
    };
    run(Duration::from_secs(1))?;
    let cpu_before = thread_cpu();
    let (records_in, records_out, elapsed) = run(args.duration)?;
    let cpu = thread_cpu().zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
    let secs = elapsed.as_secs_f64();
    // CPU time per record: what a busy, shared machine distorts least.
    let per_record = cpu
        .map(|cpu| format!(", {:.2} µs CPU per record in", cpu.as_secs_f64() * 1e6 / records_in.max(1) as f64))
        .unwrap_or_default();
    println!(
        "{}: {} records in/s, {} records out/s ({} in, {} out, {:.1} s, batches of {}{per_record})",
        spec.name,
        (records_in as f64 / secs).round(),
        (records_out as f64 / secs).round(),
        records_in,
        records_out,
        secs,
        args.batch
    );
    Ok(ExitCode::SUCCESS)
}

/// The CPU time (user and system) this thread has used, from
/// `/proc/thread-self/stat`; `None` where there is no such file.
fn thread_cpu() -> Option<Duration> {
    /// Linux reports these times in ticks of 1/100 s (`USER_HZ`).
    const TICKS_PER_SECOND: u64 = 100;
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which may hold spaces, so cut at its
    // closing parenthesis): utime and stime are the 12th and 13th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let ticks = fields.next()?.parse::<u64>().ok()? + fields.next()?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}
