//! What a plugin component is and asks for, before it runs: its contract
//! version, the interfaces it imports (the `weir:filter` host API and
//! WASI, each WASI interface with the capability it stands for and what
//! Weir grants of it) and exports, its size and how long it takes to
//! compile. `weir plugin inspect` prints it; an operator reads what a
//! plugin wants (sockets, files) before granting anything.

use std::path::Path;
use std::time::{Duration, Instant};

use wasmtime::component::Component;
use wasmtime::component::types::ComponentItem;

use super::bindings::CONTRACT_VERSION;
use super::engine::{PluginEngine, read};
use super::error::PluginError;

/// A plugin component, inspected.
#[derive(Debug)]
pub struct Inspection {
    /// The file's size, in bytes.
    pub size: u64,
    /// How long compiling it to native code took on this machine (without
    /// the cache, as a first start would).
    pub compile_time: Duration,
    /// The `weir:filter` contract version it was built for.
    pub contract: String,
    /// The contract version of this host.
    pub host_contract: &'static str,
    /// What it imports, in the component's order.
    pub imports: Vec<Interface>,
    /// What it exports, in the component's order.
    pub exports: Vec<Interface>,
    /// Why this host cannot link it, if it cannot (an import Weir does not
    /// provide).
    pub link_error: Option<String>,
}

/// One imported or exported interface (or lone function).
#[derive(Debug)]
pub struct Interface {
    /// Its full name, such as `wasi:filesystem/types@0.2.6`.
    pub name: String,
    /// Its functions, in the component's order.
    pub functions: Vec<String>,
    /// What importing it lets the plugin do.
    pub capability: Capability,
}

/// What an imported interface lets a plugin reach, in plain words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Capability {
    /// `weir:filter/*`: the contract itself.
    WeirHost,
    /// `wasi:filesystem/*`.
    Filesystem,
    /// `wasi:sockets/*`.
    Sockets,
    /// `wasi:http/*`.
    Http,
    /// `wasi:clocks/*`.
    Clocks,
    /// `wasi:random/*`.
    Random,
    /// `wasi:cli/environment`.
    Environment,
    /// `wasi:cli/stdin`, `stdout`, `stderr`, `terminal-*`.
    Stdio,
    /// `wasi:cli/exit`.
    Exit,
    /// `wasi:io/*`: streams and polling, used by the others.
    Io,
    /// Any other interface.
    Other,
}

impl Capability {
    /// The capability an interface named `name` stands for.
    pub fn of(name: &str) -> Capability {
        let package = name.split('@').next().unwrap_or(name);
        match package.split_once('/') {
            Some(("weir:filter", _)) => Capability::WeirHost,
            Some(("wasi:filesystem", _)) => Capability::Filesystem,
            Some(("wasi:sockets", _)) => Capability::Sockets,
            Some(("wasi:http", _)) => Capability::Http,
            Some(("wasi:clocks", _)) => Capability::Clocks,
            Some(("wasi:random", _)) => Capability::Random,
            Some(("wasi:cli", "environment")) => Capability::Environment,
            Some(("wasi:cli", "exit")) => Capability::Exit,
            Some(("wasi:cli", "stdin" | "stdout" | "stderr")) => Capability::Stdio,
            Some(("wasi:cli", io)) if io.starts_with("terminal-") => Capability::Stdio,
            Some(("wasi:io", _)) => Capability::Io,
            _ => Capability::Other,
        }
    }

    /// A short name.
    pub fn name(self) -> &'static str {
        match self {
            Capability::WeirHost => "weir host API",
            Capability::Filesystem => "filesystem",
            Capability::Sockets => "sockets",
            Capability::Http => "http",
            Capability::Clocks => "clocks",
            Capability::Random => "random",
            Capability::Environment => "environment",
            Capability::Stdio => "stdio",
            Capability::Exit => "exit",
            Capability::Io => "streams",
            Capability::Other => "other",
        }
    }

    /// What the plugin gets of it in Weir's sandbox, and which `grants:`
    /// key gives more (`plugin/host_api.rs` builds the sandbox).
    pub fn in_weir(self) -> &'static str {
        match self {
            Capability::WeirHost => "log lines, the host clock and counters: the contract",
            Capability::Filesystem => "files: none unless the filter's `grants: { dirs: [...] }` lists folders",
            Capability::Sockets => "network sockets: none unless the filter's `grants: { network: true }`",
            Capability::Http => "outgoing HTTP: Weir does not provide it; the plugin cannot be loaded",
            Capability::Clocks => {
                "time: the host clock that tests drive, real time with `grants: { wall_clock: true }`"
            }
            Capability::Random => "random numbers: always available",
            Capability::Environment => {
                "environment variables: none unless the filter's `grants: { env: [...] }` names them"
            }
            Capability::Stdio => "stdin is empty, stdout is discarded, stderr is kept for panic messages",
            Capability::Exit => "exiting: ends the call as a trap",
            Capability::Io => "streams and polling for the interfaces above; nothing on its own",
            Capability::Other => "not provided by Weir; the plugin cannot be loaded",
        }
    }
}

impl PluginEngine {
    /// Read, compile (bypassing the cache) and inspect the component at
    /// `path`, named `plugin` in errors.
    ///
    /// # Errors
    /// An unreadable file or one that does not compile, and a component
    /// that is no Weir filter or was built for an incompatible contract
    /// (the error names both versions).
    pub fn inspect(&self, plugin: &str, path: &Path) -> Result<Inspection, PluginError> {
        let bytes = read(plugin, path)?;
        let started = Instant::now();
        let component: Component = self.compile(plugin, path, &bytes)?;
        let compile_time = started.elapsed();
        let contract = self.check_contract(plugin, path, &component)?;
        let ty = component.component_type();
        let interfaces = |items: &mut dyn Iterator<Item = (&str, ComponentItem)>| -> Vec<Interface> {
            items
                .map(|(name, item)| Interface {
                    name: name.to_string(),
                    functions: match item {
                        ComponentItem::ComponentInstance(instance) => instance
                            .exports(&self.engine)
                            .filter(|(_, e)| matches!(e.ty, ComponentItem::ComponentFunc(_)))
                            .map(|(name, _)| name.to_string())
                            .collect(),
                        _ => Vec::new(),
                    },
                    capability: Capability::of(name),
                })
                .collect()
        };
        let imports = interfaces(&mut ty.imports(&self.engine).map(|(name, e)| (name, e.ty)));
        let exports = interfaces(&mut ty.exports(&self.engine).map(|(name, e)| (name, e.ty)));
        let link_error = self.linker.instantiate_pre(&component).err().map(|e| format!("{e:#}"));
        Ok(Inspection {
            size: bytes.len() as u64,
            compile_time,
            contract,
            host_contract: CONTRACT_VERSION,
            imports,
            exports,
            link_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Capability;

    #[test]
    fn interfaces_map_to_capabilities_by_package() {
        assert_eq!(Capability::of("wasi:sockets/tcp@0.2.6"), Capability::Sockets);
        assert_eq!(Capability::of("wasi:filesystem/preopens@0.2.0"), Capability::Filesystem);
        assert_eq!(Capability::of("wasi:cli/environment@0.2.6"), Capability::Environment);
        assert_eq!(Capability::of("wasi:cli/terminal-stdout@0.2.6"), Capability::Stdio);
        assert_eq!(Capability::of("wasi:clocks/wall-clock@0.2.6"), Capability::Clocks);
        assert_eq!(Capability::of("weir:filter/host@0.1.0"), Capability::WeirHost);
        assert_eq!(Capability::of("acme:thing/x"), Capability::Other);
    }
}
