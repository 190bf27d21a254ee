//! When an event happened, by Nomad's clock where its frame says so.
//!
//! A raft entry is one moment: an event whose payload carries no time of its
//! own takes the newest time found in its frame, and a frame with none at
//! all falls back to its receipt time, marked as such; or, read from a
//! capture (which says nothing of when it was received), to the newest
//! Nomad time of the frames before it, marked too. Order is always the raft
//! index; a time is an attribute (a server with a skewed clock can date a
//! later entry earlier).

use serde::Serialize;

use super::ReceivedFrame;
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
    /// The frame carried no time and came from a capture: the newest time
    /// Nomad gave the frames before it there, the earliest it can be.
    Preceding,
}

impl TimeSource {
    /// The value of the `time_source` column.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeSource::Nomad => "nomad",
            TimeSource::Received => "received",
            TimeSource::Preceding => "preceding",
        }
    }

    /// Whether the time is not the event's own (tables mark it `~`).
    pub fn is_approximate(self) -> bool {
        self != TimeSource::Nomad
    }

    /// Reads the column; anything but `received` or `preceding` is Nomad's
    /// clock.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("received") => TimeSource::Received,
            Some("preceding") => TimeSource::Preceding,
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

/// The newest time Nomad gave any event of `frame`.
pub fn newest_time(frame: &Frame) -> Option<i64> {
    frame.events.iter().filter_map(|e| e.nomad_time).max()
}

/// The time of each event of `frame`, in order: see [`ReceivedFrame`]
/// for `received.preceding`.
pub fn frame_times(received: &ReceivedFrame) -> impl Iterator<Item = EventTime> + '_ {
    let fallback = match received.preceding {
        Some(at) => EventTime {
            at,
            source: TimeSource::Preceding,
        },
        None => EventTime {
            at: received.received_at,
            source: TimeSource::Received,
        },
    };
    let newest = newest_time(&received.frame);
    received
        .frame
        .events
        .iter()
        .map(move |e| match e.nomad_time.or(newest) {
            Some(at) => EventTime {
                at,
                source: TimeSource::Nomad,
            },
            None => fallback,
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
        dated(frame, None)
    }

    fn dated(frame: &Frame, preceding: Option<i64>) -> Vec<(i64, TimeSource)> {
        let received = ReceivedFrame {
            frame: frame.clone(),
            received_at: 99,
            preceding,
        };
        frame_times(&received).map(|t| (t.at, t.source)).collect()
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

    #[test]
    fn a_frame_without_any_time_from_a_capture_takes_the_time_before_it() {
        let preceding = TimeSource::Preceding;
        let f = frame(&[None, None]);
        assert_eq!(dated(&f, Some(42)), vec![(42, preceding), (42, preceding)]);
        // A frame with a time of its own keeps it.
        let f = frame(&[None, Some(50)]);
        let nomad = TimeSource::Nomad;
        assert_eq!(dated(&f, Some(42)), vec![(50, nomad), (50, nomad)]);
        assert_eq!(TimeSource::parse(Some(preceding.as_str())), preceding);
        assert!(preceding.is_approximate() && !nomad.is_approximate());
    }
}
