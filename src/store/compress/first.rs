//! A topic's first dictionary: small ([`FIRST_DICTIONARY_BYTES`]), trained
//! on the topic's first [`Settings::first_train_after`] events (or
//! [`FIRST_SAMPLE_BYTES`] of them) before the batch that completes them is
//! compressed, so that no more than those first events are stored plain.
//! A full dictionary trained in the background, once enough events have
//! arrived, replaces it. Training on this few events takes a few ms, once
//! per topic and cluster; waiting for a background training instead left
//! the whole first batch plain, thousands of events when `import` reads.

use std::collections::HashMap;

use super::training::{self, Samples};
use super::{Compression, FIRST_SAMPLE_BYTES, Ledger, Settings};
use crate::archive::{Batch, Cluster};
use crate::store::StoreError;
use crate::store::codec::FIRST_DICTIONARY_BYTES;
use crate::store::rows::event_rows;

impl Compression {
    /// Trains and stores the first dictionary of each topic of the batch
    /// that has none and, with the batch's events, enough to train on.
    pub(super) async fn train_first(
        &mut self,
        ledger: &mut dyn Ledger,
        cluster: &Cluster,
        batch: &Batch,
    ) -> Result<(), StoreError> {
        if !first_dictionaries(self.settings) {
            return Ok(());
        }
        for (name, samples) in self.first_samples(batch) {
            let topic = name.clone();
            let trained = tokio::task::spawn_blocking(move || {
                training::train(&topic, &samples, FIRST_DICTIONARY_BYTES)
            })
            .await;
            match trained {
                Ok(Ok(trained)) => {
                    self.put_in_use(ledger, cluster, (&name, true), &trained)
                        .await?
                }
                Ok(Err(reason)) => self.first_failed(&name, &reason),
                Err(e) => self.first_failed(&name, &e.to_string()),
            }
        }
        Ok(())
    }

    /// For each topic still without a dictionary, the events collected so
    /// far and the batch's, when they are enough for a first one.
    fn first_samples(&self, batch: &Batch) -> Vec<(String, Samples)> {
        let mut wanted: HashMap<&str, (Samples, usize)> = HashMap::new();
        for row in event_rows(batch) {
            let name = row.event.topic.as_str();
            let topic = self.topics.get(name);
            if topic.is_some_and(|t| t.active.is_some() || t.training.is_some() || t.first_failed) {
                continue;
            }
            let (samples, bytes) = wanted.entry(name).or_insert_with(|| match topic {
                Some(t) => (t.samples.clone(), t.sample_bytes),
                None => (Samples::new(), 0),
            });
            if !enough(samples, *bytes, self.settings) {
                *bytes += row.event.raw.len();
                samples.push((row.index, row.event.raw.clone()));
            }
        }
        wanted
            .into_iter()
            .filter(|(_, (samples, bytes))| enough(samples, *bytes, self.settings))
            .map(|(name, (samples, _))| (name.to_owned(), samples))
            .collect()
    }

    /// The topic gets no first dictionary; its events stay plain until its
    /// full one.
    fn first_failed(&mut self, name: &str, reason: &str) {
        tracing::warn!(
            topic = name,
            reason,
            "Could not train a first dictionary; events stay plain until the full one"
        );
        self.topics.entry(name.to_owned()).or_default().first_failed = true;
    }
}

/// Whether topics get a first dictionary before their full one.
fn first_dictionaries(settings: Settings) -> bool {
    settings.trains() && settings.first_train_after < settings.train_after
}

/// Whether samples are enough to train a first dictionary on.
fn enough(samples: &Samples, bytes: usize, settings: Settings) -> bool {
    samples.len() as u64 >= settings.first_train_after || bytes >= FIRST_SAMPLE_BYTES
}
