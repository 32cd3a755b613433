//! Hot reload: what a new config changes against the running one, and
//! carrying it out.
//!
//! [`plan`] is pure: it compares the running and the new [`Config`] (and
//! which plugin files changed on disk) and says which inputs, filters and
//! outputs are added, removed, modified or unchanged, or refuses the reload
//! when a setting that cannot change live did. The running pipeline then
//! applies the plan (below): new filter instances (one per worker or per
//! partition) are compiled and configured off the hot path, new outputs
//! started beside the old ones, then the chain swaps filters and routes
//! once no batch is between filters ([`super::workers`]), with state handed
//! over instance by instance ([`super::chain`]); unchanged components keep
//! running untouched. What triggers a reload (a signal, a watched file, `POST
//! /-/reload`) is the command line's business (`cli/run.rs`).

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use tokio::sync::oneshot;

use super::chain::{ChainCommand, Filter, FilterSlot};
use super::{Outputs, Running};
use crate::config::Config;
use crate::plugin::file_digest;

/// What a reload does to one kind of component, by name.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// New names.
    pub added: Vec<String>,
    /// Names no longer configured; outputs drain what they hold first.
    pub removed: Vec<String>,
    /// Names whose settings (or, for filters, plugin file) changed.
    pub modified: Vec<String>,
    /// Names left running as they are.
    pub unchanged: Vec<String>,
}

impl Changes {
    fn diff<T: PartialEq>(
        old: &[T],
        new: &[T],
        name: impl Fn(&T) -> &str,
        also_modified: impl Fn(&str) -> bool,
    ) -> Changes {
        let mut changes = Changes::default();
        for n in new {
            match old.iter().find(|o| name(o) == name(n)) {
                None => changes.added.push(name(n).to_string()),
                Some(o) if o != n || also_modified(name(n)) => changes.modified.push(name(n).to_string()),
                Some(_) => changes.unchanged.push(name(n).to_string()),
            }
        }
        changes.removed =
            old.iter().map(&name).filter(|o| !new.iter().any(|n| name(n) == *o)).map(String::from).collect();
        changes
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.modified.is_empty()
    }

    /// Whether `name` must be (re)built.
    pub fn builds(&self, name: &str) -> bool {
        self.added.iter().chain(&self.modified).any(|n| n == name)
    }
}

/// The difference between the running config and a new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadPlan {
    /// Inputs.
    pub inputs: Changes,
    /// Filters; the new chain order is the new config's.
    pub filters: Changes,
    /// Outputs.
    pub outputs: Changes,
    /// Whether the filter order changed (the chain is rebuilt even if no
    /// filter did).
    pub reordered: bool,
}

impl ReloadPlan {
    /// Whether the reload changes nothing at all.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty() && self.filters.is_empty() && self.outputs.is_empty() && !self.reordered
    }
}

/// Why a reload was refused; the old pipeline keeps running.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new config is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A setting changed that only a restart can apply.
    #[error("{setting} changed; that needs a restart (nothing was reloaded)")]
    NeedsRestart {
        /// Which setting.
        setting: &'static str,
    },
    /// A new or modified filter could not be loaded, configured or handed
    /// the old instance's state.
    #[error(transparent)]
    Plugin(#[from] crate::plugin::PluginError),
    /// A new or modified output could not be built.
    #[error(transparent)]
    Output(#[from] crate::outputs::OutputError),
    /// A new or modified input could not be built.
    #[error(transparent)]
    Input(#[from] crate::inputs::InputError),
    /// The pipeline is stopping.
    #[error("the pipeline is stopping")]
    Stopping,
    /// A stateful filter would be partitioned differently, and state cannot
    /// move between partitions.
    #[error(
        "filter {filter}: its partitioning changed (partition_by, or one instance against one per partition) and its state cannot move between partitions; give it a new name to start it with empty state (nothing was reloaded)"
    )]
    Repartition {
        /// The filter's name.
        filter: String,
    },
    /// A filter the plan keeps was not running on the chain: a bug in the
    /// plan, caught before anything changed.
    #[error("filter {filter} is not running, so it cannot be kept; this is a bug in weir")]
    NotRunning {
        /// The filter's name.
        filter: String,
    },
}

/// Compare `old` with `new`. `changed_plugins` names the filters whose
/// plugin file changed on disk since they were loaded.
pub fn plan(old: &Config, new: &Config, changed_plugins: &HashSet<String>) -> Result<ReloadPlan, ReloadError> {
    let restart = |setting| Err(ReloadError::NeedsRestart { setting });
    if old.pipeline.queue_capacity != new.pipeline.queue_capacity {
        return restart("pipeline.queue_capacity");
    }
    if old.pipeline.workers != new.pipeline.workers {
        return restart("pipeline.workers");
    }
    if old.dead_letter_tag != new.dead_letter_tag {
        return restart("dead_letter.tag");
    }
    if old.admin != new.admin {
        return restart("admin.address");
    }
    if old.state_dir != new.state_dir {
        return restart("state_dir");
    }
    if old.cache_dir != new.cache_dir {
        return restart("cache_dir");
    }
    let filters = Changes::diff(&old.filters, &new.filters, |f| &f.name, |n| changed_plugins.contains(n));
    let kept_order = |c: &Config| -> Vec<String> {
        c.filters.iter().map(|f| f.name.clone()).filter(|n| !filters.added.contains(n)).collect()
    };
    let reordered = kept_order(old).into_iter().filter(|n| !filters.removed.contains(n)).collect::<Vec<_>>()
        != kept_order(new)
        || old.pipeline != new.pipeline;
    Ok(ReloadPlan {
        inputs: Changes::diff(&old.inputs, &new.inputs, |i| &i.name, |_| false),
        outputs: Changes::diff(&old.outputs, &new.outputs, |o| &o.name, |_| false),
        filters,
        reordered,
    })
}

impl Running {
    /// Apply `new`: see the module docs. All or nothing up to the swap: filters
    /// and outputs are built first, and any failure leaves everything as it
    /// was.
    pub(super) async fn reload(&mut self, new: Config) -> Result<ReloadPlan, ReloadError> {
        if self.shutdown.is_cancelled() {
            return Err(ReloadError::Stopping);
        }
        let digests: HashMap<String, Option<String>> =
            new.filters.iter().map(|f| (f.name.clone(), file_digest(&f.wasm))).collect();
        let changed: HashSet<String> = digests
            .iter()
            .filter(|(name, digest)| self.digests.get(*name).is_some_and(|old| old != *digest))
            .map(|(name, _)| name.clone())
            .collect();
        let plan = plan(&self.config, &new, &changed)?;
        if plan.is_empty() {
            return Ok(plan);
        }

        // Compile and configure new filter instances off the hot path, as
        // many of each as it runs with (one per worker or per partition).
        let engine = self.engine.clone();
        let clock = self.clock.clone();
        let workers = new.pipeline.workers;
        let checkpoints = self.checkpoints.clone();
        let build: Vec<_> = new.filters.iter().filter(|f| plan.filters.builds(&f.name)).cloned().collect();
        let mut built: HashMap<String, Filter> = tokio::task::spawn_blocking(move || {
            build
                .iter()
                .map(|spec| {
                    Filter::build(&engine, spec, clock.clone(), workers, checkpoints.as_ref())
                        .map(|f| (spec.name.clone(), f))
                })
                .collect::<Result<HashMap<_, _>, _>>()
        })
        .await
        .map_err(|_| ReloadError::Stopping)??;
        let filters: Vec<FilterSlot> = new
            .filters
            .iter()
            .map(|f| match built.remove(&f.name) {
                Some(filter) => {
                    FilterSlot::Replace { filter: Box::new(filter), hand_over: plan.filters.modified.contains(&f.name) }
                }
                None => FilterSlot::Keep(f.name.clone()),
            })
            .collect();

        // Start new and modified outputs beside the old ones.
        let mut started = Outputs::default();
        for spec in new.outputs.iter().filter(|o| plan.outputs.builds(&o.name)) {
            let started_one =
                started.start(spec, new.pipeline.queue_capacity, &self.dead_letters, &self.drain, &self.queues).await;
            if let Err(error) = started_one {
                started.finish().await;
                return Err(error.into());
            }
        }
        let mut senders = self.outputs.senders.clone();
        senders.extend(started.senders.iter().map(|(k, v)| (k.clone(), v.clone())));
        let routes = super::routes(&senders, &new.outputs);

        // Swap at a batch boundary.
        let (reply, outcome) = oneshot::channel();
        let command = ChainCommand::Apply {
            filters,
            routes: routes.clone(),
            batch_max_records: new.pipeline.batch_max_records,
            tick_interval: new.pipeline.tick_interval,
            reply,
        };
        let swapped = match self.control.send(command) {
            Ok(()) => outcome.await.map_err(|_| ReloadError::Stopping).and_then(|r| r),
            Err(_) => Err(ReloadError::Stopping),
        };
        if let Err(error) = swapped {
            started.finish().await;
            return Err(error);
        }

        // Committed: retire removed and replaced outputs (their queues
        // drain), adopt the new ones, then move the inputs.
        for name in plan.outputs.removed.iter().chain(&plan.outputs.modified) {
            self.outputs.senders.remove(name);
        }
        self.outputs.senders.extend(started.senders);
        self.outputs.tasks.extend(started.tasks);
        self.dead_letters.set_outputs(&routes);
        for name in plan.inputs.removed.iter().chain(&plan.inputs.modified) {
            self.inputs.stop(name);
        }
        self.queues.set_stall_timeout(new.pipeline.stall_timeout);
        self.config = new;
        self.digests = digests;
        for spec in self.config.inputs.clone().iter().filter(|i| plan.inputs.builds(&i.name)) {
            // Readiness is about start-up; a reloaded input joins a ready pipeline.
            drop(self.start_input(spec)?);
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn config(text: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"").unwrap();
        std::fs::write(dir.path().join("b.wasm"), b"").unwrap();
        let file = dir.path().join("weir.yaml");
        let config = crate::config::parse(&file, text, |_| None).unwrap();
        // Keep paths comparable across the two temp dirs of a test.
        let mut config = config;
        for f in &mut config.filters {
            f.wasm = Path::new("/plugins").join(f.wasm.file_name().unwrap());
        }
        config.cache_dir = "/cache".into();
        config
    }

    const BASE: &str = "plugin_dir: .
inputs: [{ type: stdin }]
filters:
  - { type: a, match: '*', config: { x: 1 } }
  - { type: b, match: '*' }
outputs: [{ type: stdout, match: '*' }]
";

    #[test]
    fn an_identical_config_changes_nothing() {
        let p = plan(&config(BASE), &config(BASE), &HashSet::new()).unwrap();
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(p.filters.unchanged, ["a", "b"]);
    }

    #[test]
    fn a_filter_config_change_modifies_only_that_filter() {
        let p = plan(&config(BASE), &config(&BASE.replace("x: 1", "x: 2")), &HashSet::new()).unwrap();
        assert_eq!(p.filters.modified, ["a"]);
        assert_eq!(p.filters.unchanged, ["b"]);
        assert!(p.inputs.is_empty() && p.outputs.is_empty() && !p.reordered);
    }

    #[test]
    fn a_changed_plugin_file_modifies_its_filter() {
        let p = plan(&config(BASE), &config(BASE), &HashSet::from(["b".to_string()])).unwrap();
        assert_eq!(p.filters.modified, ["b"]);
    }

    #[test]
    fn added_removed_and_reordered_components_are_named() {
        let new = "plugin_dir: .
inputs: [{ type: stdin, name: other }]
filters:
  - { type: b, match: '*' }
  - { type: a, match: '*', config: { x: 1 } }
outputs: [{ type: stdout, match: '*' }, { type: blackhole, match: x }]
";
        let p = plan(&config(BASE), &config(new), &HashSet::new()).unwrap();
        assert_eq!(p.inputs.added, ["other"]);
        assert_eq!(p.inputs.removed, ["stdin"]);
        assert_eq!(p.outputs.added, ["blackhole"]);
        assert_eq!(p.outputs.unchanged, ["stdout"]);
        assert!(p.reordered);
        assert!(p.filters.is_empty());
    }

    #[test]
    fn settings_that_need_a_restart_refuse_the_reload() {
        let err = plan(&config(BASE), &config(&format!("pipeline: {{ queue_capacity: 3 }}\n{BASE}")), &HashSet::new())
            .unwrap_err();
        assert_eq!(err.to_string(), "pipeline.queue_capacity changed; that needs a restart (nothing was reloaded)");
    }
}
