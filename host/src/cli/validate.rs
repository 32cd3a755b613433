//! `weir validate -c FILE`: the config, then every filter's own `config:`
//! block, checked by instantiating and configuring each plugin.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config;
use crate::core::clock::Clock;
use crate::plugin::{FilterInstance, PluginEngine};

#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// The pipeline config (YAML).
    #[arg(short, long, env = "WEIR_CONFIG")]
    config: PathBuf,
}

pub fn validate(args: ValidateArgs) -> anyhow::Result<ExitCode> {
    let config = match config::load(&args.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(1));
        }
    };
    let engine = PluginEngine::new(Some(config.cache_dir.clone()))
        .map_err(|e| anyhow::anyhow!("starting the WebAssembly engine: {e:#}"))?;
    let mut failed = false;
    for spec in &config.filters {
        if let Err(error) = FilterInstance::new(&engine, spec, Clock::system()) {
            eprintln!("error: {}: filters.{}: {error}", args.config.display(), spec.name);
            failed = true;
        }
    }
    if failed {
        return Ok(ExitCode::from(1));
    }
    println!(
        "{}: ok ({} inputs, {} filters, {} outputs)",
        args.config.display(),
        config.inputs.len(),
        config.filters.len(),
        config.outputs.len()
    );
    Ok(ExitCode::SUCCESS)
}
