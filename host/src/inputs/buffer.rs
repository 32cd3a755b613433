//! The durable buffer: a write-ahead log per input, so that an HTTP
//! `ack: accepted` survives kill -9, as Vector's disk buffers and Fluent
//! Bit's filesystem storage do.
//!
//! The log is the input's queue. A request's records are appended as one
//! unit (synced per [`Fsync`]) before the client gets its 200; a feeder
//! ([`Buffer::feed`]) reads units back in order and sends them into the
//! pipeline, waiting as long as the pipeline is full; a unit is
//! acknowledged once every record derived from it was delivered or
//! dead-lettered. While an output is down the log grows, up to
//! `max_bytes`; past that the input refuses (429 with `Retry-After`)
//! instead of accepting and dropping.
//!
//! At start every unit not known to be acknowledged is sent again:
//! at-least-once. Acknowledgements are recorded on disk as a low-water
//! mark, every `fsync_interval` and on a clean stop, so after a crash the
//! units acknowledged since the last record are sent twice; records keep
//! their identity ([`Record::identity`]: origin, time, body) across the
//! replay, so the Elasticsearch output's `_id`s and filters' `dedupe` see
//! the repeat for what it is.
//!
//! On disk, one folder per input: segments `<first id>.wal` of frames
//! `[len u32][crc32 u32][id u64][payload]` (little-endian; `len` counts id
//! and payload; the CRC covers both), `committed` (the lowest id not yet
//! acknowledged) and `lock`, held while a process uses the folder. A
//! segment is deleted once every unit in it is acknowledged; a new one
//! starts past an eighth of `max_bytes` (at most 64 MiB), so acknowledged
//! space is freed well before the cap.
//!
//! Damage found at start is cut off, counted
//! (`weir_buffer_truncated_total`) and logged, never a crash: a torn tail
//! (the last frame cut short by a crash mid-write) is truncated; a frame
//! whose CRC does not match ends its segment, and what followed it is
//! lost.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
use tokio::sync::Notify;

use super::InputContext;
use crate::core::ack::{AckToken, Delivery};
use crate::core::metrics::catalogue::{BUFFER_BYTES, BUFFER_REPLAYED, BUFFER_TRUNCATED, BUFFER_UNITS};
use crate::core::metrics::{Counter, Gauge, registry};
use crate::core::record::{Origin, Record, Timestamp};
use crate::core::units::{ByteSize, HumanDuration};

/// Bytes of a frame's header: length, CRC and id.
const HEADER: usize = 4 + 4 + 8;
/// Largest segment: few files, and acknowledged data freed promptly.
const MAX_SEGMENT_BYTES: u64 = 64 << 20;
/// Smallest segment, for tiny caps in tests.
const MIN_SEGMENT_BYTES: u64 = 4 << 10;
/// How long opening waits for the folder's lock before refusing.
const LOCK_PATIENCE: Duration = Duration::from_secs(5);

/// An input's `buffer:` settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferSettings {
    /// The folder of the log, relative to the config file; one per input
    /// (a second process using it is refused at start).
    pub dir: PathBuf,
    /// The most the log may hold on disk, acknowledged units included until
    /// their segment is deleted; past it the input answers 429. A single
    /// request larger than this gets 413. Default 1GiB.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: ByteSize,
    /// When appends reach the disk; see [`Fsync`]. Default `always`.
    #[serde(default)]
    pub fsync: Fsync,
    /// How often the log is synced with `fsync: interval`, and how often
    /// acknowledgements are recorded (whatever the policy). Default 1s.
    #[serde(default = "default_fsync_interval")]
    pub fsync_interval: HumanDuration,
}

fn default_max_bytes() -> ByteSize {
    ByteSize(1 << 30)
}

fn default_fsync_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

impl BufferSettings {
    pub(crate) fn rebase(mut self, base: &Path) -> Self {
        self.dir = base.join(&self.dir);
        self
    }
}

/// When appended units are synced to disk, and what each choice may lose.
/// A crash of the process alone (kill -9, OOM) loses nothing with any of
/// them: what was written is in the OS's page cache. They differ on a crash
/// of the machine (power loss, kernel panic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fsync {
    /// Synced before the client is answered: nothing answered 200 is lost.
    /// One `fdatasync` per request (a few ms on most disks, µs on NVMe).
    #[default]
    Always,
    /// Synced every `fsync_interval` in the background: up to that much of
    /// what was answered 200 may be lost.
    Interval,
    /// Left to the OS's write-back (on Linux, up to ~30 s by default).
    Never,
}

/// Why the buffer refused a unit, or failed.
#[derive(Debug, thiserror::Error)]
pub enum BufferError {
    /// Appending would pass `max_bytes`.
    #[error("the input's durable buffer is full ({max} bytes, buffer.max_bytes); retry later")]
    Full {
        /// The configured cap.
        max: u64,
    },
    /// One unit is larger than `max_bytes`: it could never fit.
    #[error("the request needs {bytes} bytes in the durable buffer, more than buffer.max_bytes ({max} bytes)")]
    TooLarge {
        /// The unit's size on disk.
        bytes: u64,
        /// The configured cap.
        max: u64,
    },
    /// Another process holds the folder.
    #[error("buffer {}: in use by another process (its `lock` file is held); one folder per input", dir.display())]
    Locked {
        /// The folder.
        dir: PathBuf,
    },
    /// A file could not be read or written.
    #[error("buffer {}: {what}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn io_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BufferError {
    let path = path.to_path_buf();
    move |source| BufferError::Io { path, what, source }
}

/// What opening the log found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovery {
    /// Units to send again: appended and not known to be acknowledged.
    pub replayed: u64,
    /// Torn tails truncated.
    pub torn: u64,
    /// Segments cut at a corrupt frame.
    pub corrupt: u64,
}

/// One segment file.
struct Segment {
    path: PathBuf,
    /// Valid bytes: what frames were written (or survived recovery).
    bytes: u64,
    /// The last unit id in it, `None` while empty.
    last: Option<u64>,
}

/// The log; cheap to clone, shared by the request handlers, the feeder and
/// the acknowledgements of the records in flight.
#[derive(Clone)]
pub struct Buffer(Arc<Shared>);

struct Shared {
    inner: Mutex<Inner>,
    /// Woken on every append, for the feeder.
    appended: Notify,
    interval: Duration,
    input: String,
}

/// The logs this process has open, by folder: a reloaded input gets the
/// log its previous instance had (the folder's lock is per process).
static OPEN: Mutex<Vec<(PathBuf, std::sync::Weak<Shared>)>> = Mutex::new(Vec::new());

struct Inner {
    dir: PathBuf,
    max_bytes: u64,
    segment_bytes: u64,
    fsync: Fsync,
    /// Every live segment by first id; the last one is being appended to.
    segments: BTreeMap<u64, Segment>,
    active: File,
    next_id: u64,
    /// Appended or replayed, not yet acknowledged.
    in_flight: BTreeSet<u64>,
    /// Of those, the ones a feeder has sent on and not yet heard back
    /// about: a feeder that starts after a reload skips them.
    sent: BTreeSet<u64>,
    /// The `committed` value last written.
    recorded: u64,
    /// Written since the last sync.
    dirty: bool,
    /// Held for the life of the log.
    _lock: File,
    bytes: Gauge,
    units: Gauge,
    truncated: [Counter; 2],
}

impl Buffer {
    /// Open (creating) the log in `settings.dir` for the input named
    /// `input`: take the folder's lock, check every segment (truncating and
    /// counting damage), and delete what was acknowledged.
    ///
    /// # Errors
    /// [`BufferError::Locked`] when another process uses the folder;
    /// [`BufferError::Io`] when it or a segment cannot be read or created.
    /// A folder this process already has open (an input reloaded with new
    /// settings) gives the same log, with its settings as first opened.
    pub fn open(input: &str, settings: &BufferSettings) -> Result<(Buffer, Recovery), BufferError> {
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|(_, shared)| shared.strong_count() > 0);
        if let Some(shared) = open.iter().find(|(dir, _)| *dir == settings.dir).and_then(|(_, s)| s.upgrade()) {
            return Ok((Buffer(shared), Recovery::default()));
        }
        let segment_bytes = (settings.max_bytes.0 / 8).clamp(MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES);
        let (buffer, recovery) = Self::open_with(input, settings, segment_bytes)?;
        open.push((settings.dir.clone(), Arc::downgrade(&buffer.0)));
        Ok((buffer, recovery))
    }

    fn open_with(
        input: &str,
        settings: &BufferSettings,
        segment_bytes: u64,
    ) -> Result<(Buffer, Recovery), BufferError> {
        let dir = settings.dir.clone();
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&dir).map_err(io_error("creating", &dir))?;
        }
        let lock_path = dir.join("lock");
        let lock = create_private(&lock_path).map_err(io_error("opening", &lock_path))?;
        // A reloaded input's predecessor may still be closing the log.
        let deadline = std::time::Instant::now() + LOCK_PATIENCE;
        loop {
            match lock.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(BufferError::Locked { dir }),
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(BufferError::Io { path: lock_path, what: "locking", source });
                }
            }
        }
        let committed = read_committed(&dir).map_err(io_error("reading `committed` in", &dir))?;
        let mut files: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
            .map_err(io_error("listing", &dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let path = e.path();
                let first = path.file_stem()?.to_str()?.parse::<u64>().ok()?;
                (path.extension()? == "wal").then_some((first, path))
            })
            .collect();
        files.sort();
        let labels = [input];
        let truncated = [
            registry().counter(&BUFFER_TRUNCATED, &[input, "torn"]),
            registry().counter(&BUFFER_TRUNCATED, &[input, "corrupt"]),
        ];
        let mut recovery = Recovery::default();
        let mut segments = BTreeMap::new();
        let mut in_flight = BTreeSet::new();
        let mut next_id = committed;
        let last_file = files.last().map(|(first, _)| *first);
        for (first, path) in files {
            // Appends go after every segment there is, whatever its frames say.
            next_id = next_id.max(first);
            let scan = scan_segment(&path).map_err(io_error("reading", &path))?;
            // Only the last segment was being written when a crash came: a
            // torn frame anywhere else is damage.
            let damage = match scan.damage {
                Some(Damage::Torn) if Some(first) != last_file => Some(Damage::Corrupt),
                other => other,
            };
            if let Some(damage) = damage {
                let file = OpenOptions::new().write(true).open(&path).map_err(io_error("truncating", &path))?;
                file.set_len(scan.valid_bytes).map_err(io_error("truncating", &path))?;
                let lost = scan.file_bytes - scan.valid_bytes;
                match damage {
                    Damage::Torn => {
                        recovery.torn += 1;
                        truncated[0].add(1);
                        tracing::warn!(input, file = %path.display(), lost_bytes = lost, "buffer: a torn tail (a crash mid-write, or a damaged length) was truncated");
                    }
                    Damage::Corrupt => {
                        recovery.corrupt += 1;
                        truncated[1].add(1);
                        tracing::error!(input, file = %path.display(), lost_bytes = lost, "buffer: a corrupt frame (checksum mismatch or unreadable) ended this segment; what followed it is lost");
                    }
                }
            }
            for &id in &scan.ids {
                next_id = next_id.max(id + 1);
                if id >= committed {
                    in_flight.insert(id);
                }
            }
            if !scan.ids.is_empty() {
                next_id = next_id.max(first.saturating_add(1));
            }
            segments.insert(first, Segment { path, bytes: scan.valid_bytes, last: scan.ids.last().copied() });
        }
        if committed > next_id {
            tracing::warn!(
                input,
                committed,
                next_id,
                "buffer: `committed` is ahead of every unit in the log; nothing in it is sent again"
            );
        }
        recovery.replayed = in_flight.len() as u64;
        // Appends go to a fresh segment: a damaged one is never appended to.
        let active_path = segment_path(&dir, next_id);
        let active = create_private(&active_path).map_err(io_error("creating", &active_path))?;
        segments.insert(next_id, Segment { path: active_path, bytes: 0, last: None });
        registry().counter(&BUFFER_REPLAYED, &labels).add(recovery.replayed);
        let inner = Inner {
            dir,
            max_bytes: settings.max_bytes.0,
            segment_bytes,
            fsync: settings.fsync,
            segments,
            active,
            next_id,
            in_flight,
            sent: BTreeSet::new(),
            recorded: committed,
            dirty: false,
            _lock: lock,
            bytes: registry().gauge(&BUFFER_BYTES, &labels),
            units: registry().gauge(&BUFFER_UNITS, &labels),
            truncated,
        };
        let buffer = Buffer(Arc::new(Shared {
            inner: Mutex::new(inner),
            appended: Notify::new(),
            interval: settings.fsync_interval.0,
            input: input.to_string(),
        }));
        {
            let mut inner = buffer.lock();
            let dir = inner.dir.clone();
            inner.drop_acknowledged().map_err(io_error("dropping acknowledged segments in", &dir))?;
            inner.publish();
        }
        if recovery.replayed > 0 {
            tracing::warn!(
                input,
                units = recovery.replayed,
                "buffer: sending again what was not acknowledged before the last stop"
            );
        }
        Ok((buffer, recovery))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Append one unit's records (their acks and arrival times are not
    /// stored), synced before returning with `fsync: always`; returns its
    /// id. Blocking: call it off the async threads.
    ///
    /// # Errors
    /// [`BufferError::Full`] past `max_bytes`, [`BufferError::TooLarge`]
    /// for a unit that could never fit, [`BufferError::Io`] when writing
    /// fails.
    pub fn append(&self, records: &[Record]) -> Result<u64, BufferError> {
        let mut frame = encode(records);
        let mut inner = self.lock();
        let size = frame.len() as u64;
        if size > inner.max_bytes {
            return Err(BufferError::TooLarge { bytes: size, max: inner.max_bytes });
        }
        if inner.total_bytes() + size > inner.max_bytes && inner.active_bytes() > 0 && inner.active_done() {
            // Everything in the segment being appended to was delivered: start
            // a new one so that one can go, instead of refusing.
            inner.rotate()?;
            let dir = inner.dir.clone();
            inner.drop_acknowledged().map_err(io_error("dropping acknowledged segments in", &dir))?;
        }
        if inner.total_bytes() + size > inner.max_bytes {
            return Err(BufferError::Full { max: inner.max_bytes });
        }
        if inner.active_bytes() > 0 && inner.active_bytes() + size > inner.segment_bytes {
            inner.rotate()?;
        }
        let id = inner.next_id;
        seal(&mut frame, id);
        let path = inner.active_segment().path.clone();
        inner.active.write_all(&frame).map_err(io_error("appending to", &path))?;
        if inner.fsync == Fsync::Always {
            inner.active.sync_data().map_err(io_error("syncing", &path))?;
        } else {
            inner.dirty = true;
        }
        let segment = inner.active_segment_mut();
        segment.bytes += size;
        segment.last = Some(id);
        inner.next_id += 1;
        inner.in_flight.insert(id);
        inner.publish();
        drop(inner);
        self.0.appended.notify_one();
        Ok(id)
    }

    /// [`Buffer::append`] on a blocking thread.
    ///
    /// # Errors
    /// As [`Buffer::append`].
    pub async fn append_async(&self, records: Vec<Record>) -> Result<u64, BufferError> {
        let buffer = self.clone();
        tokio::task::spawn_blocking(move || buffer.append(&records)).await.unwrap_or_else(|e| {
            Err(BufferError::Io { path: PathBuf::new(), what: "appending", source: std::io::Error::other(e) })
        })
    }

    /// Unit `id` was delivered (or dead-lettered): it is not sent again,
    /// and its segment goes once every unit in it is acknowledged.
    pub fn ack(&self, id: u64) {
        let mut inner = self.lock();
        inner.in_flight.remove(&id);
        inner.sent.remove(&id);
        if let Err(error) = inner.drop_acknowledged() {
            tracing::warn!(input = %self.0.input, %error, "buffer: cannot delete acknowledged segments; retried on the next acknowledgement");
        }
        inner.publish();
    }

    /// Sync what was appended since the last sync, and record how far
    /// acknowledgements got.
    ///
    /// # Errors
    /// [`BufferError::Io`] when syncing or writing `committed` fails.
    pub fn sync(&self) -> Result<(), BufferError> {
        let mut inner = self.lock();
        if inner.dirty {
            let path = inner.active_segment().path.clone();
            inner.active.sync_data().map_err(io_error("syncing", &path))?;
            inner.dirty = false;
        }
        let committed = inner.committed();
        if committed != inner.recorded {
            let dir = inner.dir.clone();
            write_committed(&dir, committed).map_err(io_error("writing `committed` in", &dir))?;
            inner.recorded = committed;
        }
        Ok(())
    }

    /// Send the log's units into the pipeline in order, from the first one
    /// not acknowledged, as long as it takes, until `ctx.shutdown` fires;
    /// meanwhile sync every `fsync_interval`. A unit cut short by shutdown
    /// has its acknowledgement failed, so it stays in the log for the next
    /// start.
    pub async fn feed(&self, ctx: &InputContext) {
        let syncing = {
            let buffer = self.clone();
            let shutdown = ctx.shutdown.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(buffer.0.interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        () = shutdown.cancelled() => return,
                    }
                    let b = buffer.clone();
                    if let Ok(Err(error)) = tokio::task::spawn_blocking(move || b.sync()).await {
                        tracing::error!(input = %buffer.0.input, %error, "buffer: sync failed");
                    }
                }
            })
        };
        let mut reader = Reader { segment: 0, offset: 0, file: None, last_read: None };
        loop {
            let buffer = self.clone();
            let read = tokio::task::spawn_blocking(move || {
                let next = reader.next(&buffer);
                (reader, next)
            })
            .await;
            let next;
            (reader, next) = match read {
                Ok(read) => read,
                Err(error) => {
                    tracing::error!(input = %self.0.input, %error, "buffer: the reader failed; sending stops");
                    break;
                }
            };
            match next {
                Ok(Some((id, records))) => {
                    if !self.send_unit(ctx, id, records).await {
                        break;
                    }
                }
                Ok(None) => tokio::select! {
                    () = self.0.appended.notified() => {}
                    () = ctx.shutdown.cancelled() => break,
                },
                Err(error) => {
                    tracing::error!(input = %self.0.input, %error, "buffer: reading failed; retrying in 1s");
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_secs(1)) => {}
                        () = ctx.shutdown.cancelled() => break,
                    }
                }
            }
        }
        let _ = syncing.await;
        let buffer = self.clone();
        let _ = tokio::task::spawn_blocking(move || buffer.sync()).await;
    }

    /// Send one unit's records with one acknowledgement; false when the
    /// pipeline closed or shutdown came first.
    async fn send_unit(&self, ctx: &InputContext, id: u64, mut records: Vec<Record>) -> bool {
        let buffer = self.clone();
        let token = AckToken::new(move |outcome| match outcome {
            Delivery::Delivered => buffer.ack(id),
            // Still owed: sent again by the next feeder (after a reload or
            // at the next start).
            Delivery::Failed => {
                buffer.lock().sent.remove(&id);
            }
        });
        self.lock().sent.insert(id);
        for record in &mut records {
            record.ack = Some(token.clone());
        }
        let size = ctx.batch_max_records.max(1);
        while !records.is_empty() {
            let rest = records.split_off(records.len().min(size));
            let batch = std::mem::replace(&mut records, rest);
            let sent = tokio::select! {
                sent = ctx.send(batch) => sent.is_ok(),
                () = ctx.shutdown.cancelled() => false,
            };
            if !sent {
                // Not all of it went: it stays owed, and goes again next start.
                token.fail();
                return false;
            }
        }
        true
    }
}

impl Inner {
    fn total_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.bytes).sum()
    }

    fn active_segment(&self) -> &Segment {
        self.segments.values().next_back().expect("the active segment is always there")
    }

    fn active_segment_mut(&mut self) -> &mut Segment {
        self.segments.values_mut().next_back().expect("the active segment is always there")
    }

    fn active_bytes(&self) -> u64 {
        self.active_segment().bytes
    }

    /// Whether every unit of the segment being appended to is acknowledged.
    fn active_done(&self) -> bool {
        let (&first, _) = self.segments.iter().next_back().expect("the active segment is always there");
        self.in_flight.range(first..).next().is_none()
    }

    fn publish(&self) {
        self.bytes.set(i64::try_from(self.total_bytes()).unwrap_or(i64::MAX));
        self.units.set(i64::try_from(self.in_flight.len()).unwrap_or(i64::MAX));
    }

    /// The lowest id still owed an acknowledgement: everything below it is
    /// done.
    fn committed(&self) -> u64 {
        self.in_flight.first().copied().unwrap_or(self.next_id)
    }

    fn rotate(&mut self) -> Result<(), BufferError> {
        let old = self.active_segment().path.clone();
        self.active.sync_data().map_err(io_error("syncing", &old))?;
        let path = segment_path(&self.dir, self.next_id);
        self.active = create_private(&path).map_err(io_error("creating", &path))?;
        if self.fsync != Fsync::Never {
            // The new file's name must survive a machine crash too.
            File::open(&self.dir).and_then(|d| d.sync_all()).map_err(io_error("syncing", &self.dir))?;
        }
        self.segments.insert(self.next_id, Segment { path, bytes: 0, last: None });
        self.dirty = false;
        Ok(())
    }

    /// Delete the segments (not the active one) whose units are all
    /// acknowledged, recording the committed id first so a crash between
    /// the two replays nothing that was deleted.
    fn drop_acknowledged(&mut self) -> std::io::Result<()> {
        let committed = self.committed();
        let active = *self.segments.keys().next_back().expect("the active segment is always there");
        let done: Vec<u64> = self
            .segments
            .iter()
            .filter(|&(&first, s)| first != active && s.last.is_none_or(|last| last < committed))
            .map(|(&first, _)| first)
            .collect();
        if done.is_empty() {
            return Ok(());
        }
        if committed != self.recorded {
            write_committed(&self.dir, committed)?;
            self.recorded = committed;
        }
        for first in done {
            if let Some(segment) = self.segments.remove(&first) {
                std::fs::remove_file(&segment.path)?;
            }
        }
        Ok(())
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // A clean stop records how far acknowledgements got, so the next
        // start sends again only what is still owed.
        let _ = self.active.sync_data();
        let _ = write_committed(&self.dir, self.committed());
    }
}

/// The feeder's place in the log.
struct Reader {
    /// First id of the segment being read.
    segment: u64,
    offset: u64,
    file: Option<BufReader<File>>,
    /// The last unit id read from this segment.
    last_read: Option<u64>,
}

impl Reader {
    /// The next unit to send, `None` when caught up. Blocking.
    fn next(&mut self, buffer: &Buffer) -> Result<Option<(u64, Vec<Record>)>, BufferError> {
        loop {
            let (first, path, end, last, is_active) = {
                let inner = buffer.lock();
                let active = *inner.segments.keys().next_back().expect("the active segment is always there");
                let Some((&first, s)) = inner.segments.range(self.segment..).next() else { return Ok(None) };
                (first, s.path.clone(), s.bytes, s.last, first == active)
            };
            if first != self.segment || self.file.is_none() {
                if first != self.segment {
                    self.offset = 0;
                    self.last_read = None;
                }
                self.segment = first;
                let mut file = BufReader::new(File::open(&path).map_err(io_error("opening", &path))?);
                file.seek(SeekFrom::Start(self.offset)).map_err(io_error("reading", &path))?;
                self.file = Some(file);
            }
            if self.offset >= end {
                if is_active {
                    return Ok(None);
                }
                // Done with a closed segment: on to the next one.
                *self = Reader { segment: first + 1, offset: 0, file: None, last_read: None };
                continue;
            }
            let file = self.file.as_mut().expect("opened above");
            match read_frame(file).map_err(io_error("reading", &path))? {
                Some((id, size, Some(records))) => {
                    self.offset += size;
                    self.last_read = Some(id);
                    let inner = buffer.lock();
                    // Acknowledged (before the last stop, or since), or on
                    // its way from an earlier feeder of this log.
                    if !inner.in_flight.contains(&id) || inner.sent.contains(&id) {
                        continue;
                    }
                    return Ok(Some((id, records)));
                }
                _ => {
                    // Damage after the start-up check (the disk failing):
                    // give the rest of the segment up, count it, and release
                    // its units so the log does not hold them forever.
                    let mut inner = buffer.lock();
                    inner.truncated[1].add(1);
                    let from = self.last_read.map_or(first, |id| id + 1);
                    if let Some(last) = last {
                        let lost: Vec<u64> = inner.in_flight.range(from..=last).copied().collect();
                        tracing::error!(input = %buffer.0.input, file = %path.display(), units = lost.len(), "buffer: a frame could not be read back; the rest of this segment is lost");
                        for id in lost {
                            inner.in_flight.remove(&id);
                        }
                    }
                    drop(inner);
                    self.offset = end;
                }
            }
        }
    }
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.wal"))
}

fn create_private(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new().create(true).append(true).mode(0o600).open(path)
}

fn read_committed(dir: &Path) -> std::io::Result<u64> {
    match std::fs::read_to_string(dir.join("committed")) {
        Ok(text) => Ok(text.trim().parse().unwrap_or(0)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Replace `committed` atomically (write, then rename). Not synced: a lost
/// update only means more is sent again after a machine crash.
fn write_committed(dir: &Path, committed: u64) -> std::io::Result<()> {
    let tmp = dir.join("committed.tmp");
    std::fs::write(&tmp, committed.to_string())?;
    std::fs::rename(&tmp, dir.join("committed"))
}

/// A frame without its id and CRC (see [`seal`]): the payload is
/// `count u32`, then per record `time i64`, tag, origin (`0`, or `1` +
/// stream + offset u64 + lineage u64) and body, strings and bytes prefixed
/// by their length (u32).
fn encode(records: &[Record]) -> Vec<u8> {
    let guess = records.iter().map(|r| r.body.len() + r.tag.len() + 48).sum::<usize>();
    let mut frame = Vec::with_capacity(HEADER + 4 + guess);
    frame.resize(HEADER, 0);
    frame.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        frame.extend_from_slice(&r.time.to_le_bytes());
        put_bytes(&mut frame, r.tag.as_bytes());
        match &r.origin {
            None => frame.push(0),
            Some(o) => {
                frame.push(1);
                put_bytes(&mut frame, o.stream.as_bytes());
                frame.extend_from_slice(&o.offset.to_le_bytes());
                frame.extend_from_slice(&o.lineage.to_le_bytes());
            }
        }
        put_bytes(&mut frame, &r.body);
    }
    frame
}

/// A whole frame of `records` with `id`, as [`Buffer::append`] writes it.
pub(crate) fn frame(records: &[Record], id: u64) -> Vec<u8> {
    let mut frame = encode(records);
    seal(&mut frame, id);
    frame
}

/// Fill in a frame's length, CRC and id.
fn seal(frame: &mut [u8], id: u64) {
    let len = (frame.len() - 8) as u32;
    frame[8..16].copy_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&frame[8..]);
    frame[0..4].copy_from_slice(&len.to_le_bytes());
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// A payload being read back; every read is bounds-checked.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

fn decode(payload: &[u8]) -> Option<Vec<Record>> {
    let mut c = Cursor(payload);
    let count = c.u32()?;
    let mut records = Vec::with_capacity(count.min(1 << 16) as usize);
    for _ in 0..count {
        let time = c.u64()? as Timestamp;
        let tag = std::str::from_utf8(c.bytes()?).ok()?;
        let origin = match c.take(1)?[0] {
            0 => None,
            1 => {
                let stream = std::str::from_utf8(c.bytes()?).ok()?;
                Some(Origin { stream: stream.into(), offset: c.u64()?, lineage: c.u64()? })
            }
            _ => return None,
        };
        let body = Bytes::copy_from_slice(c.bytes()?);
        records.push(Record { time, tag: tag.into(), body, origin, ack: None, arrival: None });
    }
    c.0.is_empty().then_some(records)
}

/// Read one frame: `None` at a clean end of file; `Some((id, size, None))`
/// for a frame cut short, failing its CRC or not decoding.
#[allow(clippy::type_complexity)]
pub(crate) fn read_frame(file: &mut impl Read) -> std::io::Result<Option<(u64, u64, Option<Vec<Record>>)>> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        match file.read(&mut header[got..])? {
            0 if got == 0 => return Ok(None),
            0 => return Ok(Some((0, got as u64, None))),
            n => got += n,
        }
    }
    let len = u64::from(u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")));
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let id = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    if len < 8 {
        return Ok(Some((id, HEADER as u64, None)));
    }
    let mut payload = Vec::new();
    let read = file.take(len - 8).read_to_end(&mut payload)? as u64;
    let size = 8 + 8 + read;
    if read < len - 8 {
        return Ok(Some((id, size, None)));
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[8..16]);
    hasher.update(&payload);
    if hasher.finalize() != crc {
        return Ok(Some((id, size, None)));
    }
    Ok(Some((id, size, decode(&payload))))
}

enum Damage {
    Torn,
    Corrupt,
}

struct Scan {
    ids: Vec<u64>,
    valid_bytes: u64,
    file_bytes: u64,
    damage: Option<Damage>,
}

/// Check a segment's frames up to its end or the first damage: a bad last
/// frame is a torn tail, a bad frame with more after it is corruption.
fn scan_segment(path: &Path) -> std::io::Result<Scan> {
    let mut file = BufReader::new(File::open(path)?);
    let file_bytes = file.get_ref().metadata()?.len();
    let mut scan = Scan { ids: Vec::new(), valid_bytes: 0, file_bytes, damage: None };
    while let Some((id, size, records)) = read_frame(&mut file)? {
        if records.is_some() {
            scan.ids.push(id);
            scan.valid_bytes += size;
            continue;
        }
        let at_end = scan.valid_bytes + size >= file_bytes;
        scan.damage = Some(if at_end { Damage::Torn } else { Damage::Corrupt });
        break;
    }
    Ok(scan)
}

#[cfg(test)]
mod tests;
