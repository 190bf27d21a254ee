//! Whose history a capture may join: an NDJSON capture does not say which
//! cluster it came from, so it may join a label whose history was only ever
//! imported, but not one that `ingest` followed live from a Nomad cluster
//! (an identity or an address recorded) unless `--cluster` names that label:
//! the same refusal `ingest` gives another cluster at a known address.

use std::fmt;

use crate::archive::Cluster;
use crate::nomad::ClusterIdentity;

/// An import that would add a capture of unknown origin to the history of
/// a cluster ingested live: nothing is imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveLabel {
    /// The archive's label (`--cluster`, by default `default`).
    pub label: String,
    /// What the archive recorded of the cluster ingested under it.
    pub identity: Option<ClusterIdentity>,
    pub address: Option<String>,
}

impl LiveLabel {
    /// Refuses an import into `existing` (the cluster under the label, if
    /// any) unless the label was `named` with `--cluster` or its history was
    /// only ever imported.
    pub fn check(existing: Option<&Cluster>, named: bool) -> Result<(), LiveLabel> {
        match existing {
            Some(c) if !named && (c.identity.is_some() || c.address.is_some()) => Err(LiveLabel {
                label: c.name.clone(),
                identity: c.identity.clone(),
                address: c.address.clone(),
            }),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for LiveLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let label = &self.label;
        write!(f, "the archive's cluster `{label}` was ingested live")?;
        if let Some(address) = &self.address {
            write!(f, " from Nomad at `{address}`")?;
        }
        if let Some(identity) = &self.identity {
            write!(f, ", which reports {identity}")?;
        }
        write!(
            f,
            "; a capture does not say which cluster it came from, so importing it there could mix \
             two clusters' histories, and nothing was imported (hint: if the capture is that \
             cluster's, name it: --cluster {label}; otherwise give it a label of its own: \
             --cluster <new label>)"
        )
    }
}

impl std::error::Error for LiveLabel {}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(identity: bool, address: bool) -> Cluster {
        Cluster {
            id: 1,
            name: "default".to_owned(),
            checkpoint: Some(900),
            identity: identity.then(|| ClusterIdentity {
                region: "global".to_owned(),
                servers: ["aaaaaaaa-1".to_owned()].into(),
            }),
            address: address.then(|| "http://nomad:4646".to_owned()),
        }
    }

    #[test]
    fn a_live_label_refuses_an_unnamed_import_and_says_how_to_go_on() {
        let refusal = LiveLabel::check(Some(&cluster(true, true)), false).expect_err("refused");
        assert_eq!(
            refusal.to_string(),
            "the archive's cluster `default` was ingested live from Nomad at `http://nomad:4646`, \
             which reports region `global`, servers `aaaaaaaa`; a capture does not say which \
             cluster it came from, so importing it there could mix two clusters' histories, and \
             nothing was imported (hint: if the capture is that cluster's, name it: --cluster \
             default; otherwise give it a label of its own: --cluster <new label>)"
        );
        assert!(LiveLabel::check(Some(&cluster(false, true)), false).is_err());
    }

    #[test]
    fn a_named_label_an_imported_one_or_a_new_one_takes_the_capture() {
        assert_eq!(LiveLabel::check(Some(&cluster(true, true)), true), Ok(()));
        assert_eq!(
            LiveLabel::check(Some(&cluster(false, false)), false),
            Ok(())
        );
        assert_eq!(LiveLabel::check(None, false), Ok(()));
    }
}
