//! When an event happened, by Nomad's clock where its frame says so.
//!
//! A raft entry is one moment: an event whose payload carries no time of its
//! own takes the newest time found in its frame, and a frame with none at
//! all falls back to its receipt time, marked as such. Order is always the
//! raft index; a time is an attribute (a server with a skewed clock can date
//! a later entry earlier).

use serde::Serialize;

use crate::nomad::Frame;

/// Where an event's time came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    /// Nomad's clock, from the payload of the event or of its frame.
    #[default]
    Nomad,
    /// The frame carried no time: when the archive received it.
    Received,
}

impl TimeSource {
    /// The value of the `time_source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeSource::Nomad => "nomad",
            TimeSource::Received => "received",
        }
    }

    /// Reads the column; anything but `received` is Nomad's clock.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("received") => TimeSource::Received,
            _ => TimeSource::Nomad,
        }
    }
}

/// An event's time: Unix milliseconds and where they came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventTime {
    pub at: i64,
    pub source: TimeSource,
}

/// The time of each event of `frame`, in order, given when it was received.
pub fn frame_times(frame: &Frame, received_at: i64) -> impl Iterator<Item = EventTime> + '_ {
    let newest = frame.events.iter().filter_map(|e| e.nomad_time).max();
    frame
        .events
        .iter()
        .map(move |e| match e.nomad_time.or(newest) {
            Some(at) => EventTime {
                at,
                source: TimeSource::Nomad,
            },
            None => EventTime {
                at: received_at,
                source: TimeSource::Received,
            },
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nomad::Event;

    fn frame(times: &[Option<i64>]) -> Frame {
        let events = times
            .iter()
            .map(|t| Event {
                nomad_time: *t,
                ..Event::default()
            })
            .collect();
        Frame { index: 7, events }
    }

    fn times(frame: &Frame) -> Vec<(i64, TimeSource)> {
        frame_times(frame, 99).map(|t| (t.at, t.source)).collect()
    }

    #[test]
    fn events_without_a_time_take_the_newest_of_their_frame() {
        let f = frame(&[Some(10), None, Some(30), None]);
        let nomad = TimeSource::Nomad;
        assert_eq!(
            times(&f),
            vec![(10, nomad), (30, nomad), (30, nomad), (30, nomad)]
        );
    }

    #[test]
    fn a_frame_without_any_time_is_dated_by_its_receipt() {
        let f = frame(&[None, None]);
        let received = TimeSource::Received;
        assert_eq!(times(&f), vec![(99, received), (99, received)]);
        assert_eq!(TimeSource::parse(Some("received")), received);
        assert_eq!(TimeSource::parse(Some(received.as_str())), received);
        assert_eq!(TimeSource::parse(None), TimeSource::Nomad);
    }
}
