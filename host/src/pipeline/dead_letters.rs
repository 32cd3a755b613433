//! Where dead letters go: the outputs whose `match` selects the dead-letter
//! tag. The envelope itself is [`crate::core::dead_letter`]; this module
//! routes the dead letters of outputs (records a destination refused) and
//! keeps, by logging, those nothing can take.

use std::sync::{Arc, RwLock};

use tokio::sync::mpsc;

use super::console::taps::Taps;
use crate::core::dead_letter::DeadLetter;
use crate::core::metrics::catalogue::RECORDS_DROPPED;
use crate::core::metrics::registry;
use crate::core::record::{Batch, Record};
use crate::core::tag_match::TagMatch;

/// Log a dead letter that cannot be kept anywhere, count it as dropped at
/// `stage`, and fail its ack.
pub fn log_lost_dead_letter(record: &Record, stage: &str, why: &str) {
    registry().counter(&RECORDS_DROPPED, &[stage, "dead_letter_lost"]).add(1);
    tracing::error!(stage, why, record = %String::from_utf8_lossy(&record.body), "dead letter could not be delivered; logging it here");
    if let Some(ack) = &record.ack {
        ack.fail();
    }
}

/// Where an output's refused records go: the queues of the outputs that
/// match the dead-letter tag. Held weakly, so output tasks do not keep one
/// another alive at shutdown; shared by every output task and updated on
/// reload.
#[derive(Clone)]
pub struct DeadLetterRoute {
    targets: Arc<RwLock<Vec<mpsc::WeakSender<Batch>>>>,
    tag: Arc<str>,
    taps: Option<Arc<Taps>>,
}

impl DeadLetterRoute {
    /// A route for dead letters tagged `tag`, to no output yet.
    pub fn new(tag: Arc<str>) -> Self {
        DeadLetterRoute { targets: Arc::default(), tag, taps: None }
    }

    /// Show the console the dead letters of outputs.
    pub fn with_taps(mut self, taps: Option<Arc<Taps>>) -> Self {
        self.taps = taps;
        self
    }

    /// The dead-letter tag.
    pub fn tag(&self) -> &Arc<str> {
        &self.tag
    }

    /// Route to those of `outputs` that match the dead-letter tag.
    pub fn set_outputs(&self, outputs: &[(TagMatch, mpsc::Sender<Batch>)]) {
        let targets = outputs.iter().filter(|(m, _)| m.matches(&self.tag)).map(|(_, s)| s.downgrade()).collect();
        *self.targets.write().unwrap_or_else(|p| p.into_inner()) = targets;
    }

    async fn send(&self, letters: Vec<DeadLetter>) {
        for letter in letters {
            let record = letter.into_record(&self.tag);
            if let Some(taps) = &self.taps {
                taps.dead_letters(std::iter::once(&record));
            }
            let mut delivered = false;
            let targets: Vec<_> =
                self.targets.read().unwrap_or_else(|p| p.into_inner()).iter().filter_map(|t| t.upgrade()).collect();
            for sender in targets {
                if sender.send(vec![record.clone()]).await.is_ok() {
                    delivered = true;
                }
            }
            if !delivered {
                log_lost_dead_letter(&record, "dead letter", "no running output matches the dead-letter tag");
            }
        }
    }

    /// Hand `letters` to the dead-letter outputs that have room now, without
    /// waiting (the drain is giving up); returns, as records carrying the
    /// original acknowledgements, those none took. Dead letters themselves
    /// are never re-routed.
    pub fn try_send(&self, letters: Vec<DeadLetter>) -> Vec<Record> {
        let targets: Vec<_> =
            self.targets.read().unwrap_or_else(|p| p.into_inner()).iter().filter_map(|t| t.upgrade()).collect();
        let mut unsent = Vec::new();
        for letter in letters {
            let rerouted = letter.tag == self.tag;
            let record = letter.into_record(&self.tag);
            // Every dead-letter output gets its copy, as in `send`.
            let taken = !rerouted && targets.iter().filter(|t| t.try_send(vec![record.clone()]).is_ok()).count() > 0;
            if !taken {
                unsent.push(record);
            }
        }
        unsent
    }

    /// Route what an output's destination refused. Dead letters refused by
    /// a dead-letter output are not re-routed (that could loop); they are
    /// logged instead.
    pub async fn send_refused(&self, letters: Vec<DeadLetter>) {
        let (lost, kept): (Vec<_>, Vec<_>) = letters.into_iter().partition(|l| l.tag == self.tag);
        for letter in lost {
            let (stage, reason) = (letter.stage.clone(), letter.reason.clone());
            log_lost_dead_letter(&letter.into_record(&self.tag), &stage, &reason);
        }
        self.send(kept).await;
    }
}
