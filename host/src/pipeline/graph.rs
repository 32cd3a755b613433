//! The filter chain and routing. One thread owns every filter instance
//! (WASM stores are single-threaded) and moves batches through the filters
//! in config order, each filter taking the records its `match` selects,
//! then hands each record to every output whose `match` selects it.
//! Queues are bounded: when an output is full the chain waits, and so do
//! the inputs behind it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::dead_letter::DeadLetter;
use super::record::{Batch, Record, Timestamp};
use super::routing::TagMatch;
use crate::admin::metrics::{Counter, registry};
use crate::plugin::bindings::Event;
use crate::plugin::{FilterInstance, PluginEngine, PluginError};

/// Sends records to the outputs whose globs match their tags.
#[derive(Clone)]
pub struct Router {
    outputs: Vec<RouteTarget>,
    dead_letter_tag: Arc<str>,
    unrouted: Counter,
}

#[derive(Clone)]
struct RouteTarget {
    matches: TagMatch,
    sender: mpsc::Sender<Batch>,
}

impl Router {
    /// A router over `(globs, queue)` pairs.
    pub fn new(outputs: Vec<(TagMatch, mpsc::Sender<Batch>)>, dead_letter_tag: Arc<str>) -> Self {
        Router {
            outputs: outputs.into_iter().map(|(matches, sender)| RouteTarget { matches, sender }).collect(),
            dead_letter_tag,
            unrouted: registry().counter(
                "weir_records_unrouted_total",
                "Records no output matched, sent to dead letter.",
                &[],
            ),
        }
    }

    /// Replace the outputs (a reload). Queues no longer listed close once
    /// their other holders let go, and their tasks drain and stop.
    pub fn set_routes(&mut self, outputs: Vec<(TagMatch, mpsc::Sender<Batch>)>) {
        self.outputs = outputs.into_iter().map(|(matches, sender)| RouteTarget { matches, sender }).collect();
    }

    /// The tag of dead letters.
    pub fn dead_letter_tag(&self) -> &Arc<str> {
        &self.dead_letter_tag
    }

    /// Route a batch, waiting (blocking the thread) while an output is full.
    /// Records no output matches become dead letters; dead letters no
    /// output matches are logged, as there is nowhere else to keep them.
    pub fn route_blocking(&self, records: Batch) {
        let mut per_output: Vec<Batch> = vec![Vec::new(); self.outputs.len()];
        let mut unrouted = Vec::new();
        for record in records {
            let mut targets = self.outputs.iter().enumerate().filter(|(_, o)| o.matches.matches(&record.tag));
            let Some((first, _)) = targets.next() else {
                unrouted.push(record);
                continue;
            };
            for (i, _) in targets {
                per_output[i].push(record.clone());
            }
            per_output[first].push(record);
        }
        for (batch, output) in per_output.into_iter().zip(&self.outputs) {
            // A closed queue means that output has stopped at shutdown; its
            // records are dropped with their acks failed below.
            if !batch.is_empty()
                && let Err(mpsc::error::SendError(batch)) = output.sender.blocking_send(batch)
            {
                fail_all(batch, "output stopped before the record reached it");
            }
        }
        if unrouted.is_empty() {
            return;
        }
        self.unrouted.add(unrouted.len() as u64);
        let mut letters = Vec::new();
        for record in unrouted {
            if record.tag == self.dead_letter_tag {
                log_lost_dead_letter(&record, "no output matches the dead-letter tag");
            } else {
                let reason = format!("no output matches tag {:?}", &*record.tag);
                letters.push(DeadLetter::of(record, "routing", reason).into_record(&self.dead_letter_tag));
            }
        }
        if !letters.is_empty() {
            self.route_blocking(letters);
        }
    }
}

/// Log a dead letter that cannot be kept anywhere, and fail its ack.
pub fn log_lost_dead_letter(record: &Record, why: &str) {
    tracing::error!(why, record = %String::from_utf8_lossy(&record.body), "dead letter could not be delivered; logging it here");
    if let Some(ack) = &record.ack {
        ack.fail();
    }
}

fn fail_all(batch: Batch, why: &str) {
    tracing::warn!(records = batch.len(), why, "records not delivered");
    for record in &batch {
        if let Some(ack) = &record.ack {
            ack.fail();
        }
    }
}

/// One filter in the chain.
pub struct Stage {
    instance: FilterInstance,
    matches: TagMatch,
    stage_name: String,
    tags: HashMap<Box<str>, Arc<str>>,
    records_in: Counter,
    records_out: Counter,
    dead_letters: Counter,
    restarts: Counter,
    errors: HashMap<&'static str, Counter>,
}

impl Stage {
    /// Wrap a configured instance.
    pub fn new(instance: FilterInstance) -> Self {
        let name = instance.name().to_string();
        let labels = [("filter", name.as_str())];
        Stage {
            matches: instance.spec().matches.clone(),
            stage_name: format!("filter {name}"),
            tags: HashMap::new(),
            records_in: registry().counter("weir_filter_records_in_total", "Records given to a filter.", &labels),
            records_out: registry().counter("weir_filter_records_out_total", "Records a filter emitted.", &labels),
            dead_letters: registry().counter(
                "weir_filter_dead_letters_total",
                "Records a filter rejected or failed on, sent to dead letter.",
                &labels,
            ),
            restarts: registry().counter(
                "weir_filter_restarts_total",
                "Filter instances recreated after a trap, deadline or memory cap.",
                &labels,
            ),
            errors: HashMap::new(),
            instance,
        }
    }

    /// The filter's name.
    pub fn name(&self) -> &str {
        self.instance.name()
    }

    /// The instance, e.g. for snapshots.
    pub fn instance_mut(&mut self) -> &mut FilterInstance {
        &mut self.instance
    }

    fn intern(&mut self, tag: String) -> Arc<str> {
        if let Some(t) = self.tags.get(tag.as_str()) {
            return t.clone();
        }
        let t: Arc<str> = tag.as_str().into();
        // Tags come from plugins; bound the cache so a plugin minting a tag
        // per record cannot grow it without end.
        if self.tags.len() < 1024 {
            self.tags.insert(tag.into_boxed_str(), t.clone());
        }
        t
    }

    fn count_error(&mut self, error: &PluginError) {
        let kind = error.kind();
        let name = self.instance.name().to_string();
        self.errors
            .entry(kind)
            .or_insert_with(|| {
                registry().counter(
                    "weir_filter_errors_total",
                    "Filter calls that failed, by kind.",
                    &[("filter", &name), ("kind", kind)],
                )
            })
            .add(1);
    }

    /// After a call error: recreate a poisoned instance.
    fn recover(&mut self, engine: &PluginEngine, error: &PluginError) {
        self.count_error(error);
        if !error.poisons_instance() {
            return;
        }
        self.restarts.add(1);
        match self.instance.recreate(engine) {
            Ok(()) => {
                tracing::warn!(filter = %self.instance.name(), %error, "filter instance recreated; its state was reset")
            }
            Err(e) => {
                tracing::error!(filter = %self.instance.name(), error = %e, "cannot recreate filter instance; its batches will be dead-lettered")
            }
        }
    }
}

/// A reload for the chain thread to apply between batches.
pub enum ChainCommand {
    /// Replace the filter list and the routes.
    Apply {
        /// The new chain, in order.
        filters: Vec<FilterSlot>,
        /// The new outputs.
        routes: Vec<(TagMatch, mpsc::Sender<Batch>)>,
        /// The new batch size.
        batch_max_records: usize,
        /// The new tick period.
        tick_interval: Duration,
        /// The outcome.
        reply: tokio::sync::oneshot::Sender<Result<(), PluginError>>,
    },
}

/// One position of the chain after a reload.
pub enum FilterSlot {
    /// Keep the running filter of this name as it is.
    Keep(String),
    /// A new, configured instance; `hand_over` takes the state of the
    /// running filter of the same name.
    Replace {
        /// The new instance (boxed: a store is large, and slots move).
        instance: Box<FilterInstance>,
        /// Whether to restore the old instance's snapshot into it.
        hand_over: bool,
    },
}

/// The filters and the router: everything the chain thread owns.
pub struct Chain {
    stages: Vec<Stage>,
    router: Router,
    engine: PluginEngine,
    batch_max_records: usize,
}

impl Chain {
    /// A chain of `stages` feeding `router`.
    pub fn new(stages: Vec<Stage>, router: Router, engine: PluginEngine, batch_max_records: usize) -> Self {
        Chain { stages, router, engine, batch_max_records }
    }

    /// The stages, e.g. for snapshots at shutdown.
    pub fn stages_mut(&mut self) -> &mut [Stage] {
        &mut self.stages
    }

    /// Receive batches until every input has stopped, ticking filters every
    /// `tick_interval` with the time from `now`, and applying reloads from
    /// `control` between batches. Returns when the input queue is closed
    /// and drained.
    pub fn run(
        &mut self,
        runtime: &tokio::runtime::Handle,
        input: &mut mpsc::Receiver<Batch>,
        control: &mut mpsc::UnboundedReceiver<ChainCommand>,
        mut tick_interval: Duration,
        now: impl Fn() -> Timestamp,
    ) {
        enum Next {
            Batch(Option<Batch>),
            Command(Option<ChainCommand>),
            Tick,
        }
        let mut control_open = true;
        let mut next_tick = Instant::now() + tick_interval;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let next = runtime.block_on(async {
                tokio::select! {
                    // Reloads first: a swap waits for at most one batch.
                    biased;
                    command = control.recv(), if control_open => Next::Command(command),
                    batch = input.recv() => Next::Batch(batch),
                    () = tokio::time::sleep(wait) => Next::Tick,
                }
            });
            match next {
                Next::Batch(Some(mut batch)) => {
                    // Coalesce what is already waiting, up to one full batch.
                    while batch.len() < self.batch_max_records {
                        match input.try_recv() {
                            Ok(more) => batch.extend(more),
                            Err(_) => break,
                        }
                    }
                    self.process(batch);
                }
                Next::Batch(None) => return,
                Next::Command(Some(ChainCommand::Apply {
                    filters,
                    routes,
                    batch_max_records,
                    tick_interval: tick,
                    reply,
                })) => {
                    let result = self.apply(filters, routes);
                    if result.is_ok() {
                        self.batch_max_records = batch_max_records;
                        tick_interval = tick;
                    }
                    let _ = reply.send(result);
                }
                Next::Command(None) => control_open = false,
                Next::Tick => {}
            }
            if Instant::now() >= next_tick {
                self.tick(now());
                next_tick = Instant::now() + tick_interval;
            }
        }
    }

    /// Swap in a new filter list and routes, at a batch boundary. Every
    /// replaced filter first hands its state to its successor; if any
    /// handover fails nothing changes and the error is returned.
    fn apply(
        &mut self,
        mut filters: Vec<FilterSlot>,
        routes: Vec<(TagMatch, mpsc::Sender<Batch>)>,
    ) -> Result<(), PluginError> {
        let started = Instant::now();
        for slot in &mut filters {
            match slot {
                FilterSlot::Keep(name) => {
                    if !self.stages.iter().any(|s| s.name() == name) {
                        return Err(PluginError::Misbehaved {
                            plugin: name.clone(),
                            call: "reload",
                            reason: "is not running, so it cannot be kept".into(),
                        });
                    }
                }
                FilterSlot::Replace { instance, hand_over } => {
                    let old = self.stages.iter_mut().find(|s| s.name() == &**instance.name());
                    if let (true, Some(old)) = (*hand_over, old) {
                        crate::plugin::hand_over(&mut old.instance, instance)?;
                    }
                }
            }
        }
        let mut old: HashMap<String, Stage> = self.stages.drain(..).map(|s| (s.name().to_string(), s)).collect();
        self.stages = filters
            .into_iter()
            .map(|slot| match slot {
                FilterSlot::Keep(name) => old.remove(&name).expect("checked above that every kept filter runs"),
                FilterSlot::Replace { instance, .. } => Stage::new(*instance),
            })
            .collect();
        self.router.set_routes(routes);
        tracing::info!(filters = self.stages.len(), took = ?started.elapsed(), "reload applied at a batch boundary");
        Ok(())
    }

    /// Run a batch through every stage and route the result.
    pub fn process(&mut self, batch: Batch) {
        let out = self.run_stages(0, batch);
        self.router.route_blocking(out);
    }

    /// Tick every filter; what a filter emits passes through the filters after it.
    pub fn tick(&mut self, now: Timestamp) {
        for i in 0..self.stages.len() {
            let stage = &mut self.stages[i];
            let events = match stage.instance.tick(now) {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(filter = %stage.instance.name(), %error, "tick failed");
                    stage.recover(&self.engine, &error);
                    continue;
                }
            };
            if events.is_empty() {
                continue;
            }
            stage.records_out.add(events.len() as u64);
            let records: Batch = events
                .into_iter()
                .map(|e| Record {
                    time: e.time,
                    tag: stage.intern(e.tag),
                    body: e.body.into(),
                    origin: None,
                    ack: None,
                })
                .collect();
            let out = self.run_stages(i + 1, records);
            self.router.route_blocking(out);
        }
    }

    fn run_stages(&mut self, from: usize, mut records: Batch) -> Batch {
        for i in from..self.stages.len() {
            records = self.run_stage(i, records);
        }
        records
    }

    fn run_stage(&mut self, i: usize, records: Batch) -> Batch {
        let dead_letter_tag = self.router.dead_letter_tag().clone();
        let stage = &mut self.stages[i];
        let (selected, mut out): (Batch, Batch) =
            records.into_iter().partition(|r| r.tag != dead_letter_tag && stage.matches.matches(&r.tag));
        if selected.is_empty() {
            return out;
        }
        let mut selected = selected.into_iter().peekable();
        while selected.peek().is_some() {
            let chunk: Batch = selected.by_ref().take(self.batch_max_records).collect();
            stage.records_in.add(chunk.len() as u64);
            let events: Vec<Event> =
                chunk.iter().map(|r| Event { time: r.time, tag: r.tag.to_string(), body: r.body.to_vec() }).collect();
            match stage.instance.process(&events) {
                Ok(result) => {
                    drop(events);
                    stage.records_out.add(result.emitted.len() as u64);
                    let mut children = vec![0u32; chunk.len()];
                    for emitted in result.emitted {
                        let (origin, ack) = match emitted.parent {
                            Some(p) => {
                                let parent = &chunk[p as usize];
                                let ordinal = children[p as usize];
                                children[p as usize] += 1;
                                (parent.origin.as_ref().map(|o| o.child(ordinal)), parent.ack.clone())
                            }
                            None => (None, None),
                        };
                        let e = emitted.event;
                        out.push(Record { time: e.time, tag: stage.intern(e.tag), body: e.body.into(), origin, ack });
                    }
                    if !result.rejected.is_empty() {
                        stage.dead_letters.add(result.rejected.len() as u64);
                        let mut chunk: Vec<Option<Record>> = chunk.into_iter().map(Some).collect();
                        for rejected in result.rejected {
                            if let Some(record) = chunk[rejected.index as usize].take() {
                                out.push(
                                    DeadLetter::of(record, stage.stage_name.clone(), rejected.reason)
                                        .into_record(&dead_letter_tag),
                                );
                            }
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(filter = %stage.instance.name(), records = chunk.len(), %error, "filter call failed; batch sent to dead letter");
                    stage.dead_letters.add(chunk.len() as u64);
                    let reason = error.to_string();
                    out.extend(chunk.into_iter().map(|r| {
                        DeadLetter::of(r, stage.stage_name.clone(), reason.clone()).into_record(&dead_letter_tag)
                    }));
                    stage.recover(&self.engine, &error);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn record(tag: &str) -> Record {
        Record { time: 0, tag: tag.into(), body: bytes::Bytes::from_static(b"{}"), origin: None, ack: None }
    }

    fn all() -> TagMatch {
        TagMatch::new(vec!["*".into()]).unwrap()
    }

    #[test]
    fn routing_waits_while_an_output_queue_is_full() {
        let (tx, mut rx) = mpsc::channel(1);
        let router = Router::new(vec![(all(), tx)], "dlq".into());
        router.route_blocking(vec![record("a")]);
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let sender = std::thread::spawn(move || {
            router.route_blocking(vec![record("b")]);
            done_tx.send(()).unwrap();
        });
        assert!(
            done_rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "a full queue must block the chain (backpressure), not grow"
        );
        assert_eq!(&*rx.blocking_recv().unwrap()[0].tag, "a");
        done_rx.recv_timeout(Duration::from_secs(5)).expect("routing resumes once there is room");
        assert_eq!(&*rx.blocking_recv().unwrap()[0].tag, "b");
        sender.join().unwrap();
    }

    #[test]
    fn a_record_goes_to_every_matching_output_and_unmatched_ones_to_dead_letter() {
        let (tx_a, mut rx_a) = mpsc::channel(4);
        let (tx_dlq, mut rx_dlq) = mpsc::channel(4);
        let router = Router::new(
            vec![
                (TagMatch::new(vec!["app.*".into()]).unwrap(), tx_a),
                (TagMatch::new(vec!["app.x".into(), "dlq".into()]).unwrap(), tx_dlq),
            ],
            "dlq".into(),
        );
        router.route_blocking(vec![record("app.x"), record("app.y"), record("other")]);
        let a: Vec<_> = rx_a.try_recv().unwrap().into_iter().map(|r| r.tag).collect();
        assert_eq!(a, [Arc::from("app.x"), Arc::from("app.y")]);
        let second: Vec<_> = rx_dlq.try_recv().unwrap().into_iter().map(|r| r.tag).collect();
        assert_eq!(second, [Arc::from("app.x")]);
        let dead = rx_dlq.try_recv().unwrap();
        let body: serde_json::Value = serde_json::from_slice(&dead[0].body).unwrap();
        assert_eq!(body["reason"], "no output matches tag \"other\"");
    }

    #[test]
    fn a_dropped_record_acknowledges_its_input_once_every_copy_is_delivered() {
        let (token, mut outcome) = crate::pipeline::ack::AckToken::channel();
        let (tx_a, mut rx_a) = mpsc::channel(4);
        let (tx_b, mut rx_b) = mpsc::channel(4);
        let router = Router::new(vec![(all(), tx_a), (all(), tx_b)], "dlq".into());
        let mut r = record("t");
        r.ack = Some(token);
        router.route_blocking(vec![r]);
        drop(rx_a.try_recv().unwrap());
        assert!(outcome.try_recv().is_err(), "one output still holds a copy");
        drop(rx_b.try_recv().unwrap());
        assert_eq!(outcome.try_recv().unwrap(), crate::pipeline::ack::Delivery::Delivered);
    }
}
