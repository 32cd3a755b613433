//! The filter chain on `pipeline.workers` threads, with the results of one
//! thread: every key's records reach their stateful instance in input
//! order, and outputs receive batches in input order.
//!
//! How a batch travels:
//! - The **dispatcher** thread (`weir-chain`) takes batches from the input
//!   queue, coalesced up to `batch_max_records`, numbers each (an *item*),
//!   and puts it on a queue any idle worker takes from. Ticks are items
//!   too, numbered among the batches, so every instance sees its ticks at
//!   the same point of its input as with one thread.
//! - The chain is cut into **segments** at each partitioned filter (see
//!   [`Placement`]): segment 0 holds the stateless filters before the first
//!   partitioned one and runs wherever the item was taken; each later
//!   segment starts with a partitioned filter and holds the stateless ones
//!   after it, and runs per partition, on the worker owning the partition.
//! - Between segments, the **exchange** sends each record to the partition
//!   of its key (records the partitioned filter does not select go to
//!   partition `item % partitions`); every partition gets a part of every
//!   item, empty or not, and a [`Resequencer`] per partition runs the item
//!   once all its parts came, in item order. A partition's records thus
//!   come in input order; within an item, parts from several partitions of
//!   an earlier segment join in partition order.
//! - The **sink** puts items back in number order across all partitions
//!   and routes them; the worker that completes the next item routes it.
//! - Stateless filters have one instance per worker. A tick ticks every
//!   partition's instance, and one instance of each stateless filter.
//!
//! Backpressure: at most [`ITEMS_IN_FLIGHT_PER_WORKER`] items per worker are
//! between the input queue and the outputs (a permit travels with each
//! item's parts); a full output stops the routing worker, items stop
//! completing, the dispatcher stops taking batches, and the input queue
//! fills. Queues between threads are therefore unbounded without growing.
//!
//! Reload and shutdown are barriers: the dispatcher stops taking batches
//! and waits for every permit, so no record is between filters; then it
//! collects every instance from the workers ([`Chain::apply`] hands state
//! over instance by instance), and hands the new chain out. At the drain's
//! abort (see [`Drain`]) every thread stops after its current call and what
//! is still queued between threads is abandoned, its inputs told.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::error::SendError;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::END_OF_TIME;
use super::chain::{Chain, ChainCommand, Filter, FilterSlot, Stage};
use super::console::taps::Taps;
use super::drain::Drain;
use super::error::PipelineError;
use super::keyed;
use super::partition::{Partitioner, Placement};
use super::queues::Taken;
use super::reload::ReloadError;
use super::router::Router;
use super::sequence::Resequencer;
use crate::core::clock::Clock;
use crate::core::record::{Batch, Timestamp};
use crate::core::tag_match::TagMatch;
use crate::plugin::PluginEngine;

/// Items in flight per worker: one being filtered and one waiting, so a
/// worker finding its partition's next item incomplete has other work.
const ITEMS_IN_FLIGHT_PER_WORKER: usize = 2;

/// Why records held between threads are abandoned at the drain's abort.
const ABANDONED: &str = "shutdown_timeout ran out before the filters reached them";

/// What the chain runs with, besides its filters.
pub struct Settings {
    /// Worker threads.
    pub workers: usize,
    /// Most records per filter call, and per item.
    pub batch_max_records: usize,
    /// How often filters are ticked.
    pub tick_interval: Duration,
    /// The host clock ticks read.
    pub clock: Clock,
    /// Fired when the pipeline was told to stop: then no last tick at
    /// [`END_OF_TIME`], the filters' state is saved instead.
    pub shutdown: CancellationToken,
    /// What the console sees of each filter call, when it runs.
    pub taps: Option<Arc<Taps>>,
    /// Marked at each take from the input queue (stall detection).
    pub taken: Taken,
    /// Requests for a checkpoint barrier (a `kafka` input's `checkpoints`).
    pub checkpoints: Option<mpsc::UnboundedReceiver<keyed::Request>>,
}

/// Start the dispatcher and the workers on `chain`, routing through
/// `router`. The handle returns the chain when every input has ended
/// (after a last tick at [`END_OF_TIME`] unless `settings.shutdown` fired)
/// or the drain aborted, and every thread has stopped.
///
/// # Errors
/// [`PipelineError::Thread`] when a thread cannot start.
pub fn start(
    chain: Chain,
    router: Router,
    engine: PluginEngine,
    settings: Settings,
    input: mpsc::Receiver<Batch>,
    control: mpsc::UnboundedReceiver<ChainCommand>,
) -> Result<std::thread::JoinHandle<Result<Chain, PipelineError>>, PipelineError> {
    let Settings { workers, batch_max_records, tick_interval, clock, shutdown, taps, taken, checkpoints } = settings;
    let runtime = tokio::runtime::Handle::current();
    let drain = router.drain().clone();
    // A worker that panics stops the others too, or they would wait for
    // its parts forever; the drain's abort stops them all.
    let halt = drain.abort.child_token();
    let dead_letter_tag = router.dead_letter_tag().clone();
    let layout = Arc::new(Layout::new(chain.filters(), workers, batch_max_records, dead_letter_tag));
    let sink = Arc::new(Sink::new(router, layout.sink_contributors()));
    let (work_tx, work_rx) = mpsc::unbounded_channel();
    let work_rx = Arc::new(tokio::sync::Mutex::new(work_rx));
    let (peers, inboxes): (Vec<_>, Vec<_>) = (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
    let peers: Arc<[mpsc::UnboundedSender<Message>]> = peers.into();
    let mut threads = Vec::with_capacity(workers);
    for ((index, slots), inbox) in layout.spread(chain).into_iter().enumerate().zip(inboxes) {
        let mut worker = Worker {
            index,
            layout: layout.clone(),
            slots: Vec::new(),
            resequencers: HashMap::new(),
            peers: peers.clone(),
            sink: sink.clone(),
            engine: engine.clone(),
            drain: drain.clone(),
            halt: halt.clone(),
            runtime: runtime.clone(),
            taps: taps.clone(),
            warned: HashSet::new(),
        };
        worker.install(layout.clone(), slots, 0);
        let work = work_rx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("weir-worker-{index}"))
            .spawn(move || {
                let _stop_others = StopOthersOnPanic(worker.halt.clone());
                worker.run(inbox, &work)
            })
            .map_err(PipelineError::Thread)?;
        threads.push(thread);
    }
    let capacity = u32::try_from(workers * ITEMS_IN_FLIGHT_PER_WORKER).unwrap_or(u32::MAX);
    let dispatcher = Dispatcher {
        layout,
        threads,
        collected: (0..workers).map(|_| None).collect(),
        peers,
        work: Some(work_tx),
        work_rx,
        permits: Arc::new(Semaphore::new(capacity as usize)),
        capacity,
        next: 0,
        sink,
        drain,
        halt,
        runtime,
        batch_max_records,
        tick_interval,
        checkpoints,
    };
    std::thread::Builder::new()
        .name("weir-chain".into())
        .spawn(move || dispatcher.run(input, &taken, control, &shutdown, &clock))
        .map_err(PipelineError::Thread)
}

/// Cancels the halt token when its thread unwinds from a panic.
struct StopOthersOnPanic(CancellationToken);

impl Drop for StopOthersOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.cancel();
        }
    }
}

/// What an item asks of the filters besides running its records.
#[derive(Debug, Clone, Copy)]
enum Work {
    Records,
    /// Tick every instance with this host time after the records.
    Tick(Timestamp),
}

/// An item's permit to be in flight, shared by its parts; the item is done
/// when the last part is routed.
type Ticket = Arc<OwnedSemaphorePermit>;

/// The records of item `seq` one contributor (a partition of the segment
/// before, or the worker that ran segment 0) passes on.
struct Part {
    seq: u64,
    from: usize,
    work: Work,
    records: Batch,
    ticket: Ticket,
}

enum Message {
    /// A part for partition `partition` of segment `segment`.
    Part { segment: usize, partition: usize, part: Part },
    /// Give every instance back (the chain is idle).
    Collect(oneshot::Sender<Vec<Slot>>),
    /// Run these instances from item `next` on.
    Install { layout: Arc<Layout>, slots: Vec<Slot>, next: u64 },
    /// Return the instances and stop (the chain is idle).
    Stop,
}

/// One filter's instances on one worker.
enum Slot {
    /// Boxed: a store is large, and slots move between threads.
    Parallel(Box<Stage>),
    /// By partition; empty when the worker owns none of them.
    Partitioned(BTreeMap<usize, Stage>),
}

/// Where every filter runs, fixed between reloads.
struct Layout {
    workers: usize,
    /// Each filter's `match` and placement, in chain order.
    filters: Vec<(TagMatch, Placement)>,
    segments: Vec<Segment>,
    batch_max_records: usize,
    dead_letter_tag: Arc<str>,
}

/// A run of filters processed together: segment 0 once per item, a later
/// one once per partition of its first filter.
struct Segment {
    filters: Range<usize>,
    partitions: usize,
}

impl Layout {
    fn new(filters: &[Filter], workers: usize, batch_max_records: usize, dead_letter_tag: Arc<str>) -> Self {
        let mut segments = vec![Segment { filters: 0..0, partitions: 1 }];
        for (i, filter) in filters.iter().enumerate() {
            match &filter.placement {
                Placement::Partitioned(p) => segments.push(Segment { filters: i..i + 1, partitions: p.partitions() }),
                Placement::Parallel => segments.last_mut().expect("segment 0 always exists").filters.end = i + 1,
            }
        }
        Layout {
            workers,
            filters: filters.iter().map(|f| (f.instances[0].matches().clone(), f.placement.clone())).collect(),
            segments,
            batch_max_records,
            dead_letter_tag,
        }
    }

    /// The worker running `partition` of `segment` (1 or more). Shifted by
    /// segment, so filters of one instance each spread over the workers.
    fn owner(&self, segment: usize, partition: usize) -> usize {
        (partition + segment - 1) % self.workers
    }

    /// How many parts each item of `segment` (or of the sink, one past the
    /// last) comes in: one per partition of the segment before.
    fn contributors(&self, segment: usize) -> usize {
        self.segments[segment - 1].partitions
    }

    fn sink_contributors(&self) -> usize {
        self.contributors(self.segments.len())
    }

    /// The `match` and partitioner of the filter opening `segment` (1 or more).
    fn entry(&self, segment: usize) -> (&TagMatch, &Partitioner) {
        let (matches, placement) = &self.filters[self.segments[segment].filters.start];
        match placement {
            Placement::Partitioned(partitioner) => (matches, partitioner),
            Placement::Parallel => unreachable!("a segment after the first opens with a partitioned filter"),
        }
    }

    fn segment_of(&self, filter: usize) -> usize {
        self.segments.iter().position(|s| s.filters.contains(&filter)).expect("every filter is in a segment")
    }

    /// Each worker's instances: its own of every stateless filter, and the
    /// partitions it owns of the others.
    fn spread(&self, chain: Chain) -> Vec<Vec<Slot>> {
        let mut slots: Vec<Vec<Slot>> = (0..self.workers).map(|_| Vec::new()).collect();
        for (i, filter) in chain.into_filters().into_iter().enumerate() {
            match filter.placement {
                Placement::Parallel => {
                    for (worker, stage) in filter.instances.into_iter().enumerate() {
                        slots[worker].push(Slot::Parallel(Box::new(stage)));
                    }
                }
                Placement::Partitioned(_) => {
                    let segment = self.segment_of(i);
                    let mut owned: Vec<BTreeMap<usize, Stage>> = (0..self.workers).map(|_| BTreeMap::new()).collect();
                    for (partition, stage) in filter.instances.into_iter().enumerate() {
                        owned[self.owner(segment, partition)].insert(partition, stage);
                    }
                    for (worker, stages) in owned.into_iter().enumerate() {
                        slots[worker].push(Slot::Partitioned(stages));
                    }
                }
            }
        }
        slots
    }

    /// The chain back from every worker's instances, by worker.
    fn gather(&self, per_worker: Vec<Vec<Slot>>) -> Chain {
        let mut instances: Vec<BTreeMap<usize, Stage>> = self.filters.iter().map(|_| BTreeMap::new()).collect();
        for (worker, slots) in per_worker.into_iter().enumerate() {
            for (i, slot) in slots.into_iter().enumerate() {
                match slot {
                    Slot::Parallel(stage) => {
                        instances[i].insert(worker, *stage);
                    }
                    Slot::Partitioned(stages) => instances[i].extend(stages),
                }
            }
        }
        Chain::new(
            instances
                .into_iter()
                .zip(&self.filters)
                .map(|(stages, (_, placement))| Filter {
                    placement: placement.clone(),
                    instances: stages.into_values().collect(),
                })
                .collect(),
        )
    }
}

/// Routes items in number order, whichever worker finishes them.
struct Sink {
    pending: Mutex<Resequencer<(Batch, Ticket)>>,
    /// Held by the one worker routing; the others leave their parts.
    router: Mutex<Router>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while routing is a bug reported by its thread; the queue of
    // parts stays consistent (inserts and pops are single calls).
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sink {
    fn new(router: Router, contributors: usize) -> Self {
        Sink { pending: Mutex::new(Resequencer::new(0, contributors)), router: Mutex::new(router) }
    }

    /// Take contributor `from`'s part of item `seq`, and route every item
    /// complete in order unless another worker is routing (it then routes
    /// this one too).
    fn deliver(&self, seq: u64, from: usize, records: Batch, ticket: Ticket) {
        lock(&self.pending).insert(seq, from, (records, ticket));
        loop {
            let router = match self.router.try_lock() {
                Ok(router) => router,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            loop {
                let next = lock(&self.pending).pop();
                let Some((_, parts)) = next else { break };
                let (records, tickets): (Vec<Batch>, Vec<Ticket>) = parts.into_iter().unzip();
                router.route_blocking(records.into_iter().flatten().collect());
                drop(tickets);
            }
            drop(router);
            // A part that came while this worker held the router was left
            // for it; look once more now that the router is free.
            if !lock(&self.pending).is_ready() {
                return;
            }
        }
    }

    /// Start over at item `next` (the chain is idle), with `routes` if given.
    fn reset(&self, next: u64, contributors: usize, routes: Option<Vec<(TagMatch, mpsc::Sender<Batch>)>>) {
        *lock(&self.pending) = Resequencer::new(next, contributors);
        if let Some(routes) = routes {
            lock(&self.router).set_routes(routes);
        }
    }

    fn abandon(&self, drain: &Drain) {
        let parts: Vec<(Batch, Ticket)> = lock(&self.pending).drain().collect();
        drain.abandon(parts.into_iter().flat_map(|(records, _)| records), "routing", ABANDONED);
    }
}

/// One worker thread: its instances, and the resequencers of the
/// partitions it owns.
struct Worker {
    index: usize,
    layout: Arc<Layout>,
    slots: Vec<Slot>,
    resequencers: HashMap<(usize, usize), Resequencer<Part>>,
    peers: Arc<[mpsc::UnboundedSender<Message>]>,
    sink: Arc<Sink>,
    engine: PluginEngine,
    drain: Drain,
    halt: CancellationToken,
    runtime: tokio::runtime::Handle,
    taps: Option<Arc<Taps>>,
    /// Stateless filters found keeping state, reported once.
    warned: HashSet<String>,
}

impl Worker {
    fn run(
        mut self,
        mut inbox: mpsc::UnboundedReceiver<Message>,
        work: &tokio::sync::Mutex<mpsc::UnboundedReceiver<Part>>,
    ) -> Vec<Slot> {
        enum Next {
            Message(Option<Message>),
            Work(Option<Part>),
            Halt,
        }
        let mut work_open = true;
        loop {
            let next = self.runtime.block_on(async {
                tokio::select! {
                    // Parts of items already started first: they free permits.
                    biased;
                    () = self.halt.cancelled() => Next::Halt,
                    message = inbox.recv() => Next::Message(message),
                    part = async { work.lock().await.recv().await }, if work_open => Next::Work(part),
                }
            });
            match next {
                Next::Message(Some(Message::Part { segment, partition, part })) => {
                    self.receive(segment, partition, part);
                }
                Next::Message(Some(Message::Collect(reply))) => {
                    let _ = reply.send(std::mem::take(&mut self.slots));
                }
                Next::Message(Some(Message::Install { layout, slots, next })) => self.install(layout, slots, next),
                Next::Work(Some(part)) => self.start(part),
                Next::Work(None) => work_open = false,
                Next::Message(Some(Message::Stop) | None) | Next::Halt => return self.stop(inbox),
            }
        }
    }

    /// Give up what is held (nothing, unless the drain aborted) and return
    /// the instances.
    fn stop(mut self, mut inbox: mpsc::UnboundedReceiver<Message>) -> Vec<Slot> {
        inbox.close();
        while let Ok(message) = inbox.try_recv() {
            match message {
                Message::Part { part, .. } => self.drain.abandon(part.records, "filter chain", ABANDONED),
                Message::Install { slots, .. } => self.slots = slots,
                Message::Collect(_) | Message::Stop => {}
            }
        }
        for resequencer in self.resequencers.values_mut() {
            self.drain.abandon(resequencer.drain().flat_map(|part| part.records), "filter chain", ABANDONED);
        }
        self.slots
    }

    fn install(&mut self, layout: Arc<Layout>, slots: Vec<Slot>, next: u64) {
        self.resequencers = (1..layout.segments.len())
            .flat_map(|segment| (0..layout.segments[segment].partitions).map(move |partition| (segment, partition)))
            .filter(|&(segment, partition)| layout.owner(segment, partition) == self.index)
            .map(|(segment, partition)| ((segment, partition), Resequencer::new(next, layout.contributors(segment))))
            .collect();
        self.layout = layout;
        self.slots = slots;
    }

    /// Run a new item through segment 0 and pass it on.
    fn start(&mut self, part: Part) {
        let Part { seq, work, records, ticket, .. } = part;
        let out = self.run_segment(0, None, records, work);
        self.forward(1, seq, 0, work, out, ticket);
    }

    /// Take a part for a partition this worker owns, and run every item of
    /// that partition now complete, in order.
    fn receive(&mut self, segment: usize, partition: usize, part: Part) {
        let key = (segment, partition);
        let resequencer = self.resequencers.get_mut(&key).expect("parts go to the owner of their partition");
        resequencer.insert(part.seq, part.from, part);
        loop {
            let next = self.resequencers.get_mut(&key).and_then(Resequencer::pop);
            let Some((seq, parts)) = next else { return };
            let (work, ticket) = (parts[0].work, parts[0].ticket.clone());
            let records: Batch = parts.into_iter().flat_map(|p| p.records).collect();
            let out = self.run_segment(segment, Some(partition), records, work);
            self.forward(segment + 1, seq, partition, work, out, ticket);
        }
    }

    /// Run `records` through the filters of `segment` (with this instance of
    /// each: the worker's, or `partition`'s), then, for a tick, tick them in
    /// order, what each emits passing through the filters after it.
    fn run_segment(&mut self, segment: usize, partition: Option<usize>, mut records: Batch, work: Work) -> Batch {
        let layout = self.layout.clone();
        let filters = layout.segments[segment].filters.clone();
        for i in filters.clone() {
            records = self.run_filter(&layout, i, partition, records);
        }
        let Work::Tick(now) = work else { return records };
        for i in filters.clone() {
            let stage = match &mut self.slots[i] {
                // One tick per period, as with one thread: the first partition
                // ticks the stateless filters of its segment.
                Slot::Parallel(stage) if partition.unwrap_or(0) == 0 => stage,
                Slot::Parallel(_) => continue,
                Slot::Partitioned(stages) => stages
                    .get_mut(&partition.expect("partitioned filters open a segment"))
                    .expect("a partition runs on its owner"),
            };
            let mut emitted = stage.tick(&self.engine, now, self.taps.as_deref());
            for j in i + 1..filters.end {
                emitted = self.run_filter(&layout, j, partition, emitted);
            }
            records.extend(emitted);
        }
        if partition.unwrap_or(0) == 0 {
            self.check_stateless(filters);
        }
        records
    }

    fn run_filter(&mut self, layout: &Layout, i: usize, partition: Option<usize>, records: Batch) -> Batch {
        let stage = match &mut self.slots[i] {
            Slot::Parallel(stage) => stage,
            Slot::Partitioned(stages) => stages
                .get_mut(&partition.expect("partitioned filters open a segment"))
                .expect("a partition runs on its owner"),
        };
        stage.run(&self.engine, records, &layout.dead_letter_tag, layout.batch_max_records, self.taps.as_deref())
    }

    /// A filter taken as stateless (an empty snapshot after `configure`)
    /// runs one instance per worker; if it turns out to keep state after
    /// all, each instance holds part of it: say so, loudly, once.
    fn check_stateless(&mut self, filters: Range<usize>) {
        for i in filters {
            let Slot::Parallel(stage) = &mut self.slots[i] else { continue };
            if self.warned.contains(stage.name()) || stage.instance_mut().snapshot().map_or(true, |s| s.is_empty()) {
                continue;
            }
            tracing::error!(
                filter = stage.name(),
                "filter keeps state although its snapshot was empty after configure, so it runs one instance per worker, each with part of its state; set partition_by on it (partition_by: [] runs it as one instance)"
            );
            self.warned.insert(stage.name().to_string());
        }
    }

    /// Pass item `seq`'s records from contributor `from` to every partition
    /// of `segment` (each record to its key's), or to the sink after the
    /// last segment.
    fn forward(&mut self, segment: usize, seq: u64, from: usize, work: Work, records: Batch, ticket: Ticket) {
        let layout = &self.layout;
        if segment == layout.segments.len() {
            self.sink.deliver(seq, from, records, ticket);
            return;
        }
        let partitions = layout.segments[segment].partitions;
        let (matches, partitioner) = layout.entry(segment);
        let rest = (seq % partitions as u64) as usize;
        let mut parts: Vec<Batch> = (0..partitions).map(|_| Vec::new()).collect();
        for record in records {
            let partition = if record.tag != layout.dead_letter_tag && matches.matches(&record.tag) {
                partitioner.partition(&record.body)
            } else {
                rest
            };
            parts[partition].push(record);
        }
        for (partition, records) in parts.into_iter().enumerate() {
            let part = Part { seq, from, work, records, ticket: ticket.clone() };
            let owner = layout.owner(segment, partition);
            // Only a stopping worker refuses parts: give them up, with acks.
            if let Err(SendError(Message::Part { part, .. })) =
                self.peers[owner].send(Message::Part { segment, partition, part })
            {
                self.drain.abandon(part.records, "filter chain", ABANDONED);
            }
        }
    }
}

/// The `weir-chain` thread: numbers items, ticks, and runs the barriers.
struct Dispatcher {
    layout: Arc<Layout>,
    threads: Vec<std::thread::JoinHandle<Vec<Slot>>>,
    /// Instances a worker handed over for a reload it stopped before getting
    /// back.
    collected: Vec<Option<Vec<Slot>>>,
    peers: Arc<[mpsc::UnboundedSender<Message>]>,
    work: Option<mpsc::UnboundedSender<Part>>,
    work_rx: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<Part>>>,
    permits: Arc<Semaphore>,
    capacity: u32,
    next: u64,
    sink: Arc<Sink>,
    drain: Drain,
    halt: CancellationToken,
    runtime: tokio::runtime::Handle,
    batch_max_records: usize,
    tick_interval: Duration,
    checkpoints: Option<mpsc::UnboundedReceiver<keyed::Request>>,
}

/// The next checkpoint request, or never when there are none.
async fn next_request(requests: &mut Option<mpsc::UnboundedReceiver<keyed::Request>>) -> Option<keyed::Request> {
    match requests {
        Some(requests) => requests.recv().await,
        None => std::future::pending().await,
    }
}

impl Dispatcher {
    fn run(
        mut self,
        mut input: mpsc::Receiver<Batch>,
        taken: &Taken,
        mut control: mpsc::UnboundedReceiver<ChainCommand>,
        shutdown: &CancellationToken,
        clock: &Clock,
    ) -> Result<Chain, PipelineError> {
        enum Next {
            Batch(Option<Batch>),
            Command(Option<ChainCommand>),
            Checkpoint(Option<keyed::Request>),
            Tick,
            Halt,
        }
        let mut control_open = true;
        let mut next_tick = Instant::now() + self.tick_interval;
        let mut requests = self.checkpoints.take();
        let ended = loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let next = self.runtime.block_on(async {
                tokio::select! {
                    // Reloads first: a swap waits for at most the items in flight.
                    biased;
                    () = self.halt.cancelled() => Next::Halt,
                    command = control.recv(), if control_open => Next::Command(command),
                    request = next_request(&mut requests) => Next::Checkpoint(request),
                    batch = input.recv() => Next::Batch(batch),
                    () = tokio::time::sleep(wait) => Next::Tick,
                }
            });
            match next {
                Next::Batch(Some(mut batch)) => {
                    taken.mark();
                    // Coalesce what is already waiting, up to one full batch.
                    while batch.len() < self.batch_max_records {
                        match input.try_recv() {
                            Ok(more) => batch.extend(more),
                            Err(_) => break,
                        }
                    }
                    if !self.dispatch(Work::Records, batch) {
                        break false;
                    }
                }
                Next::Batch(None) => break true,
                Next::Command(Some(ChainCommand::Apply {
                    filters,
                    routes,
                    batch_max_records,
                    tick_interval,
                    reply,
                })) => {
                    let result = self.reload(filters, routes, batch_max_records, tick_interval);
                    let _ = reply.send(result);
                }
                Next::Command(None) => control_open = false,
                Next::Checkpoint(Some(request)) => {
                    if let Some(taken) = self.checkpoint(&request) {
                        let _ = request.reply.send(taken);
                    }
                }
                Next::Checkpoint(None) => requests = None,
                Next::Tick => {}
                Next::Halt => break false,
            }
            if Instant::now() >= next_tick {
                if !self.dispatch(Work::Tick(clock.now()), Vec::new()) {
                    break false;
                }
                next_tick = Instant::now() + self.tick_interval;
            }
        };
        if ended && !shutdown.is_cancelled() {
            self.dispatch(Work::Tick(END_OF_TIME), Vec::new());
        }
        // Wait until everything taken is routed (or the drain aborts).
        drop(self.quiesce());
        if self.halt.is_cancelled() {
            // Refuse new batches, and fail the acks of those queued: dropped
            // unread, they would report "delivered".
            input.close();
            while let Ok(batch) = input.try_recv() {
                self.drain.abandon(batch, "input queue", ABANDONED);
            }
        }
        self.finish()
    }

    /// Number `records` as the next item and queue it for the workers, once
    /// a permit is free; false (the records abandoned) if the chain halts
    /// first.
    fn dispatch(&mut self, work: Work, records: Batch) -> bool {
        let permit = self.runtime.block_on(async {
            tokio::select! {
                biased;
                () = self.halt.cancelled() => None,
                permit = self.permits.clone().acquire_owned() => permit.ok(),
            }
        });
        let Some(permit) = permit else {
            self.drain.abandon(records, "input queue", ABANDONED);
            return false;
        };
        let part = Part { seq: self.next, from: 0, work, records, ticket: Arc::new(permit) };
        self.next += 1;
        let work = self.work.as_ref().expect("the work queue is open until the chain finishes");
        if let Err(SendError(part)) = work.send(part) {
            self.drain.abandon(part.records, "input queue", ABANDONED);
            return false;
        }
        true
    }

    /// Wait until no item is in flight; `None` if the chain halts first.
    fn quiesce(&self) -> Option<OwnedSemaphorePermit> {
        self.runtime.block_on(async {
            tokio::select! {
                biased;
                () = self.halt.cancelled() => None,
                all = self.permits.clone().acquire_many_owned(self.capacity) => all.ok(),
            }
        })
    }

    /// Apply a reload at a barrier: see the module docs.
    fn reload(
        &mut self,
        filters: Vec<FilterSlot>,
        routes: Vec<(TagMatch, mpsc::Sender<Batch>)>,
        batch_max_records: usize,
        tick_interval: Duration,
    ) -> Result<(), ReloadError> {
        let started = Instant::now();
        let Some(idle) = self.quiesce() else { return Err(ReloadError::Stopping) };
        let waited = started.elapsed();
        let Some(per_worker) = self.collect() else { return Err(ReloadError::Stopping) };
        let mut chain = self.layout.gather(per_worker);
        let swapping = Instant::now();
        let result = chain.apply(filters);
        let took = swapping.elapsed();
        let routes = if result.is_ok() {
            self.batch_max_records = batch_max_records;
            self.tick_interval = tick_interval;
            Some(routes)
        } else {
            None
        };
        self.install(chain, routes);
        drop(idle);
        if result.is_ok() {
            let filters = self.layout.filters.len();
            tracing::info!(filters, ?waited, ?took, "reload applied at a batch boundary");
        }
        result
    }

    /// Checkpoint the partitions' state at a barrier, like a reload's;
    /// `None` if the chain halts first or the requester gave up waiting.
    fn checkpoint(&mut self, request: &keyed::Request) -> Option<keyed::Taken> {
        let started = Instant::now();
        let revoke = &request.revoke;
        if request.reply.is_closed() {
            return None;
        }
        let idle = self.quiesce()?;
        if request.reply.is_closed() {
            tracing::warn!(waited = ?started.elapsed(), "checkpoint barrier given up by its requester; not taken");
            return None;
        }
        let per_worker = self.collect()?;
        let mut chain = self.layout.gather(per_worker);
        let taken = chain.checkpoint(revoke);
        self.install(chain, None);
        drop(idle);
        tracing::debug!(checkpoints = taken.checkpoints.len(), revoked = revoke.len(), took = ?started.elapsed(), "checkpoint barrier");
        Some(taken)
    }

    /// Every worker's instances, or `None` if a worker stopped (what the
    /// others gave is kept for [`Dispatcher::finish`]).
    fn collect(&mut self) -> Option<Vec<Vec<Slot>>> {
        let replies: Vec<_> = self
            .peers
            .iter()
            .map(|peer| {
                let (reply, slots) = oneshot::channel();
                let _ = peer.send(Message::Collect(reply));
                slots
            })
            .collect();
        // An idle worker answers at once; a stopped one drops the reply.
        let answers: Vec<Option<Vec<Slot>>> = replies.into_iter().map(|r| r.blocking_recv().ok()).collect();
        if answers.iter().all(Option::is_some) {
            return Some(answers.into_iter().flatten().collect());
        }
        for (kept, answer) in self.collected.iter_mut().zip(answers) {
            *kept = answer;
        }
        None
    }

    /// Hand `chain` out to the workers from the next item on.
    fn install(&mut self, chain: Chain, routes: Option<Vec<(TagMatch, mpsc::Sender<Batch>)>>) {
        let layout = Arc::new(Layout::new(
            chain.filters(),
            self.layout.workers,
            self.batch_max_records,
            self.layout.dead_letter_tag.clone(),
        ));
        self.sink.reset(self.next, layout.sink_contributors(), routes);
        for (worker, slots) in layout.spread(chain).into_iter().enumerate() {
            let install = Message::Install { layout: layout.clone(), slots, next: self.next };
            if let Err(SendError(Message::Install { slots, .. })) = self.peers[worker].send(install) {
                self.collected[worker] = Some(slots);
            }
        }
        self.layout = layout;
    }

    /// Stop the workers and take the chain back; abandon what is left
    /// between threads (only after the drain aborted).
    fn finish(mut self) -> Result<Chain, PipelineError> {
        for peer in self.peers.iter() {
            let _ = peer.send(Message::Stop);
        }
        drop(self.work.take());
        let mut per_worker = Vec::with_capacity(self.threads.len());
        let mut panicked = false;
        for (worker, thread) in self.threads.drain(..).enumerate() {
            match thread.join() {
                Ok(slots) => per_worker.push(self.collected[worker].take().unwrap_or(slots)),
                Err(_) => panicked = true,
            }
        }
        let mut queued = self.work_rx.blocking_lock();
        queued.close();
        while let Ok(part) = queued.try_recv() {
            self.drain.abandon(part.records, "filter chain", ABANDONED);
        }
        drop(queued);
        self.sink.abandon(&self.drain);
        if panicked {
            return Err(PipelineError::ChainPanicked);
        }
        Ok(self.layout.gather(per_worker))
    }
}
