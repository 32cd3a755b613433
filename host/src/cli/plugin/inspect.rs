//! `weir plugin inspect FILE.wasm`: what a plugin is built for and asks
//! for, before anyone runs it. Exit 1 when this host would refuse it (an
//! incompatible contract, naming both versions, or an import it does not
//! provide).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::plugin::{Capability, PluginEngine};

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The plugin component (.wasm).
    file: PathBuf,
}

pub fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let engine = PluginEngine::new(None).map_err(|e| anyhow::anyhow!("starting the WebAssembly engine: {e:#}"))?;
    let name = args.file.file_stem().map_or_else(|| "plugin".into(), |s| s.to_string_lossy().into_owned());
    let inspection = match engine.inspect(&name, &args.file) {
        Ok(inspection) => inspection,
        Err(error) => {
            eprintln!("error: {error}");
            return Ok(ExitCode::from(1));
        }
    };
    println!("plugin:   {}", args.file.display());
    println!("contract: weir:filter@{} (this host: {}, compatible)", inspection.contract, inspection.host_contract);
    println!("size:     {} bytes ({:.1} MiB)", inspection.size, inspection.size as f64 / f64::from(1 << 20));
    println!("compile:  {:.2} s on this machine (cached after the first load)", inspection.compile_time.as_secs_f64());
    println!("exports:");
    for export in &inspection.exports {
        println!("  {}", with_functions(&export.name, &export.functions));
    }
    println!("imports:");
    let mut capabilities = BTreeSet::new();
    for import in &inspection.imports {
        if import.capability == Capability::WeirHost {
            println!("  {}", with_functions(&import.name, &import.functions));
        } else {
            println!("  {} ({})", import.name, import.capability.name());
        }
        capabilities.insert(import.capability);
    }
    println!("capabilities it imports, and what Weir gives it:");
    capabilities.remove(&Capability::WeirHost);
    if capabilities.is_empty() {
        println!("  none: it imports the weir host API alone");
    }
    for capability in &capabilities {
        println!("  {:<12} {}", capability.name(), capability.in_weir());
    }
    match inspection.link_error {
        None => {
            println!("links:    yes, this host provides every import");
            Ok(ExitCode::SUCCESS)
        }
        Some(reason) => {
            eprintln!("error: {}: this host cannot link it: {reason}", args.file.display());
            Ok(ExitCode::from(1))
        }
    }
}

fn with_functions(name: &str, functions: &[String]) -> String {
    if functions.is_empty() { name.to_string() } else { format!("{name}: {}", functions.join(", ")) }
}
