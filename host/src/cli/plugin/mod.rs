//! `weir plugin`: tools for plugin authors. `new` writes a plugin to start
//! from, `inspect` shows what a built one is and asks for.

mod inspect;
mod new;

use std::process::ExitCode;

use clap::Subcommand;

#[derive(Debug, clap::Args)]
pub struct PluginArgs {
    #[command(subcommand)]
    command: PluginCommand,
}

#[derive(Debug, Subcommand)]
enum PluginCommand {
    /// Write a new plugin (source, build script, tests) from a template.
    New(new::NewArgs),
    /// Show a plugin's contract, imports, exports, capabilities, size and compile time.
    Inspect(inspect::InspectArgs),
}

pub fn plugin(args: PluginArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        PluginCommand::New(args) => new::new(args),
        PluginCommand::Inspect(args) => inspect::inspect(args),
    }
}
