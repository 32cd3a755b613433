//! A pipeline's filters without its inputs and outputs, for `weir test`:
//! records are handed to the real filter [`Stage`]s, one instance each as on
//! one worker (tag matching, batching, dead letters, ticks cascading
//! through later filters) and the [`Router`]
//! delivers what the outputs would receive to a queue read back here, on
//! the caller's thread with a manual clock. Nothing is started, nothing is
//! saved or restored.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::END_OF_TIME;
use super::chain::{Stage, filter_stage};
use super::router::Router;
use crate::config::Config;
use crate::core::clock::Clock;
use crate::core::dead_letter::Envelope;
use crate::core::record::{Batch, Record, Timestamp};
use crate::core::tag_match::TagMatch;
use crate::plugin::{FilterInstance, PluginEngine, PluginError};

/// The filters of a config, ready to take records.
pub struct DryRun {
    stages: Vec<Stage>,
    router: Router,
    engine: PluginEngine,
    batch_max_records: usize,
    /// What the router waits on when it hands records over: a queue with
    /// room, so nothing here needs I/O or timers.
    _runtime: tokio::runtime::Runtime,
    clock: Clock,
    delivered: mpsc::Receiver<Batch>,
    dead_letter_tag: Arc<str>,
    filters: Vec<String>,
    out: DryRunOutput,
    /// Per filter, what passed through it (for `weir bench -c`).
    passes: Vec<StagePasses>,
}

/// What went through one filter of a dry run: batches handed to it,
/// records in and out, and the wall time of its stage (the plugin calls
/// plus the host's work around them: tag matching, batching, dead letters).
#[derive(Debug, Default, Clone, Copy)]
pub struct StagePasses {
    /// Batches handed to the stage (each one or more plugin calls).
    pub batches: u64,
    /// Records handed to the stage, matching or not.
    pub records_in: u64,
    /// Records the stage passed on: what it emitted and what it did not match.
    pub records_out: u64,
    /// Wall time inside the stage.
    pub elapsed: Duration,
}

/// What came out of a dry run, in the order it came.
#[derive(Debug, Default)]
pub struct DryRunOutput {
    /// Records the outputs take: with no outputs configured, everything the
    /// chain emits.
    pub records: Batch,
    /// Inputs a filter refused, singly or with their batch: (filter name,
    /// the dead letter).
    pub rejected: Vec<(String, Envelope)>,
    /// Every other dead letter, such as records no output takes.
    pub dead_letters: Vec<Envelope>,
}

impl DryRun {
    /// Instantiate and configure every filter of `config`, with the host
    /// clock at `now`.
    ///
    /// # Errors
    /// A filter that cannot be loaded or refuses its config.
    pub fn new(config: &Config, engine: &PluginEngine, now: Timestamp) -> Result<DryRun, PluginError> {
        let clock = Clock::manual(now);
        let stages = config
            .filters
            .iter()
            .map(|spec| Ok(Stage::new(FilterInstance::new(engine, spec, clock.clone())?)))
            .collect::<Result<Vec<_>, PluginError>>()?;
        // Everything some output takes, and the dead letters even when no
        // output takes them (a run would log those as lost), on one queue
        // so each record is read once however many outputs match it.
        let mut globs: Vec<String> = config.outputs.iter().flat_map(|o| o.matches.globs().iter().cloned()).collect();
        if globs.is_empty() {
            globs.push("*".into());
        }
        globs.push(config.dead_letter_tag.to_string());
        let route = TagMatch::new(globs).expect("output globs were checked when the config loaded");
        // Each `process` routes at most twice (records, then what no output
        // takes), each tick twice per filter; the queue is drained after each.
        let (tx, delivered) = mpsc::channel(2 * (stages.len() + 1));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime without I/O or timers needs no OS resources");
        let router = {
            let _in_runtime = runtime.enter();
            Router::new(vec![(route, tx)], config.dead_letter_tag.clone(), super::drain::Drain::default())
        };
        Ok(DryRun {
            stages,
            router,
            engine: engine.clone(),
            batch_max_records: config.pipeline.batch_max_records,
            _runtime: runtime,
            clock,
            delivered,
            dead_letter_tag: config.dead_letter_tag.clone(),
            filters: config.filters.iter().map(|f| f.name.clone()).collect(),
            out: DryRunOutput::default(),
            passes: vec![StagePasses::default(); config.filters.len()],
        })
    }

    /// Run `records` through the chain as one batch.
    pub fn process(&mut self, records: Batch) {
        let out = self.run_from(0, records);
        self.router.route_blocking(out);
        self.collect();
    }

    /// What came out so far, taken (a long run reads it as it goes instead
    /// of holding it all).
    pub fn take_output(&mut self) -> DryRunOutput {
        std::mem::take(&mut self.out)
    }

    /// Per filter, in config order: its name and what passed through it.
    pub fn passes(&self) -> impl Iterator<Item = (&str, StagePasses)> {
        self.filters.iter().map(String::as_str).zip(self.passes.iter().copied())
    }

    /// Move the clock forward to `now`; an earlier `now` leaves it.
    pub fn advance_clock(&mut self, now: Timestamp) {
        if now > self.clock.now() {
            self.clock.set(now);
        }
    }

    /// Set the clock to `now` and tick every filter.
    pub fn tick(&mut self, now: Timestamp) {
        self.clock.set(now);
        self.tick_all(now);
    }

    /// Finish: with `end_of_time`, the last tick a pipeline gives when its
    /// inputs end, so windows still open are emitted.
    pub fn finish(mut self, end_of_time: bool) -> DryRunOutput {
        if end_of_time {
            self.tick_all(END_OF_TIME);
        }
        self.out
    }

    /// Tick every filter; what one emits passes through the filters after it.
    fn tick_all(&mut self, now: Timestamp) {
        for i in 0..self.stages.len() {
            let emitted = self.stages[i].tick(&self.engine, now, None);
            if !emitted.is_empty() {
                let out = self.run_from(i + 1, emitted);
                self.router.route_blocking(out);
            }
        }
        self.collect();
    }

    fn run_from(&mut self, from: usize, mut records: Batch) -> Batch {
        for (stage, passes) in self.stages[from..].iter_mut().zip(&mut self.passes[from..]) {
            let (started, records_in) = (Instant::now(), records.len());
            records = stage.run(&self.engine, records, &self.dead_letter_tag, self.batch_max_records, None);
            passes.batches += 1;
            passes.records_in += records_in as u64;
            passes.records_out += records.len() as u64;
            passes.elapsed += started.elapsed();
        }
        records
    }

    fn collect(&mut self) {
        while let Ok(batch) = self.delivered.try_recv() {
            for record in batch {
                self.sort(record);
            }
        }
    }

    fn sort(&mut self, record: Record) {
        if record.tag != self.dead_letter_tag {
            self.out.records.push(record);
            return;
        }
        // A filter may emit a record of its own with the dead-letter tag:
        // that is no envelope, and outputs take it as a record.
        let Ok(envelope) = Envelope::read(&record.body) else {
            self.out.records.push(record);
            return;
        };
        match self.filters.iter().find(|name| filter_stage(name) == envelope.stage) {
            Some(name) => self.out.rejected.push((name.clone(), envelope)),
            None => self.out.dead_letters.push(envelope),
        }
    }
}
