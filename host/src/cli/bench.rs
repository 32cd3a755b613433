//! `weir bench`: throughput in-process, with no I/O. With `--plugin`, one
//! filter: NDJSON records from a file are loaded once and fed to the plugin
//! in batches for a fixed time; it measures the plugin and the boundary,
//! nothing else. With `-c PIPELINE.yaml`, a pipeline's whole filter chain
//! as one worker runs it (the `weir test` machinery, without inputs and
//! outputs): the file once through, then the end-of-input tick, with the
//! time per filter split into the plugin's calls and the host's work.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::config;
use crate::core::clock::Clock;
use crate::core::metrics::catalogue::FILTER_CALL;
use crate::core::metrics::registry;
use crate::core::record::Record;
use crate::core::tag_match::TagMatch;
use crate::pipeline::DryRun;
use crate::plugin::{Abi, EventFormat, FilterInstance, FilterSpec, Grants, Limits, PluginEngine};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// The plugin component (.wasm), or with `--fluent-bit-function` a core
    /// module written to Fluent Bit's filter_wasm ABI.
    #[arg(long, required_unless_present = "pipeline", conflicts_with = "pipeline")]
    plugin: Option<PathBuf>,
    /// Instead of one plugin, the filters of this pipeline config, in
    /// order, with their settings (inputs and outputs are not started).
    #[arg(short = 'c', long, value_name = "PIPELINE.yaml")]
    pipeline: Option<PathBuf>,
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
    /// Tag of the input records. Default `bench`, or with `-c` the first
    /// input's tag.
    #[arg(long)]
    tag: Option<String>,
    /// Records per call.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// How long to measure, after a one-second warm-up.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    duration: Duration,
}

pub fn bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    match (&args.plugin, &args.pipeline) {
        (_, Some(pipeline)) => bench_pipeline(pipeline, &args),
        (Some(plugin), None) => bench_plugin(plugin, &args),
        (None, None) => bail!("give --plugin or -c PIPELINE.yaml"),
    }
}

/// The NDJSON lines of `--input` as records tagged `tag`.
fn read_records(args: &BenchArgs, tag: &str) -> anyhow::Result<Vec<Record>> {
    let text = std::fs::read_to_string(&args.input).with_context(|| format!("reading {}", args.input.display()))?;
    let tag: std::sync::Arc<str> = tag.into();
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
    Ok(records)
}

/// `-c PIPELINE.yaml`: the whole chain, the input once, then the
/// end-of-input tick. Prints one line for the run and one per filter.
fn bench_pipeline(path: &std::path::Path, args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let config = config::load(path)?;
    let tag = match (&args.tag, config.inputs.first()) {
        (Some(tag), _) => tag.clone(),
        (None, Some(input)) => input.tag.to_string(),
        (None, None) => "bench".into(),
    };
    let records = read_records(args, &tag)?;
    let engine = PluginEngine::new(Some(config.cache_dir.clone()))
        .map_err(|e| anyhow::anyhow!("starting the WebAssembly engine: {e:#}"))?;
    let now = Clock::system().now();
    let mut chain = DryRun::new(&config, &engine, now)?;
    let calls: Vec<_> =
        config.filters.iter().map(|f| registry().histogram(&FILTER_CALL, &[&f.name, "process"])).collect();
    let batch = config.pipeline.batch_max_records.max(1);
    let cpu_before = thread_cpu();
    let started = Instant::now();
    let mut out = 0u64;
    for chunk in records.chunks(batch) {
        chain.process(chunk.to_vec());
        out += chain.take_output().records.len() as u64;
    }
    let passes: Vec<_> = chain.passes().map(|(name, passes)| (name.to_string(), passes)).collect();
    out += chain.finish(true).records.len() as u64;
    let elapsed = started.elapsed();
    let cpu = thread_cpu().zip(cpu_before).map(|(after, before)| after.saturating_sub(before));
    let n = records.len() as u64;
    // A "statement" is what the first filter makes of an input record (split's statements).
    let statements = passes.first().map_or(n, |(_, p)| p.records_out).max(1);
    let cpu_text = cpu.map_or_else(String::new, |cpu| {
        format!(
            ", {:.2} µs CPU per input record, {:.2} µs per statement",
            cpu.as_secs_f64() * 1e6 / n as f64,
            cpu.as_secs_f64() * 1e6 / statements as f64
        )
    });
    println!(
        "{}: {n} input records -> {statements} statements (out of the first filter) -> {out} records out, {:.2} s, {} statements/s{cpu_text}",
        path.display(),
        elapsed.as_secs_f64(),
        (statements as f64 / elapsed.as_secs_f64()).round(),
    );
    for ((name, passes), call) in passes.iter().zip(&calls) {
        let plugin = call.sum();
        let host = passes.elapsed.saturating_sub(plugin);
        println!(
            "  {name}: {} batches, {} plugin calls, {} records in, {} out; {:.3} s in the stage = {:.3} s in the plugin + {:.3} s host ({:.2} µs per record in)",
            passes.batches,
            call.count(),
            passes.records_in,
            passes.records_out,
            passes.elapsed.as_secs_f64(),
            plugin.as_secs_f64(),
            host.as_secs_f64(),
            passes.elapsed.as_secs_f64() * 1e6 / passes.records_in.max(1) as f64,
        );
    }
    let stages: Duration = passes.iter().map(|(_, p)| p.elapsed).sum();
    println!("  between filters (routing, taking the output): {:.3} s", elapsed.saturating_sub(stages).as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// `--plugin`: one filter for `--duration`, after a one-second warm-up.
fn bench_plugin(plugin: &std::path::Path, args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let records = read_records(args, args.tag.as_deref().unwrap_or("bench"))?;
    let spec = FilterSpec {
        name: plugin.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "plugin".into()),
        wasm: plugin.to_path_buf(),
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
