//! The command line: `weir run`, `weir validate`, `weir test`,
//! `weir plugin`, `weir bench`, `weir generate`. Each subcommand has its own file; this one parses and
//! dispatches. `anyhow` is allowed here and in `main.rs` only.

mod bench;
mod generate;
mod plugin;
mod run;
mod test;
mod validate;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::telemetry::{self, LogFormat};

/// Weir: a log pipeline that runs your filters as sandboxed WebAssembly.
#[derive(Debug, Parser)]
#[command(name = "weir", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log line format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "WEIR_LOG_FORMAT")]
    log_format: LogFormat,
    /// Log level (overridden by RUST_LOG), e.g. info, debug, weir=trace.
    #[arg(long, global = true, default_value = "info", env = "WEIR_LOG_LEVEL")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline until its inputs end or it is stopped (Ctrl-C, SIGTERM).
    Run(run::RunArgs),
    /// Check a config and every plugin's config block; exit 1 if anything is wrong.
    Validate(validate::ValidateArgs),
    /// Run filter and config unit tests from YAML files; exit 1 if one fails.
    Test(test::TestArgs),
    /// Plugin authors' tools: write a new plugin, inspect a built one.
    Plugin(plugin::PluginArgs),
    /// Measure one filter's throughput in-process, with no I/O.
    Bench(bench::BenchArgs),
    /// Write sample mobile-app log chunks as NDJSON to stdout.
    Generate(generate::GenerateArgs),
}

/// Parse the command line and run it.
pub fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    telemetry::init(cli.log_format, &cli.log_level);
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate(args) => validate::validate(args),
        Command::Test(args) => test::test(args),
        Command::Plugin(args) => plugin::plugin(args),
        Command::Bench(args) => bench::bench(args),
        Command::Generate(args) => generate::generate(args),
    }
}
