//! Statements whose rows are read one after the other, each started while
//! those before it are still read ([`chain_started`]): the database works
//! on them at once (SQLite on a worker thread per connection, PostgreSQL in
//! a backend per connection), so a statement that sorts before its first
//! row, as the timeline's markers do, costs no wait after the one before.
//! What is held meanwhile stays bounded: one row of each later statement
//! here, and what the driver buffers for its connection.
//!
//! Each stream asks the pool for its connection when first polled, so the
//! earlier one is always polled first: the pool hands connections out in
//! the order they were asked for, so a statement holding a connection
//! while it waits to be read never keeps the one before it from getting
//! one, and requests that share a small pool cannot wait on each other
//! for good.
//!
//! A later statement that fails before its turn ends the chain at once:
//! its error comes next, and the statements before it are dropped, as the
//! reader would stop at the error anyway. What this costs: a later
//! statement holds its connection, idle once its driver's buffer is full,
//! until its turn; and a reader that stops early (a window cut at its most
//! rows, a client gone) has started statements it will not read, which
//! PostgreSQL's driver reads out before the connection goes back to the
//! pool (SQLite's stops the statement).

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::{BoxStream, Stream, StreamExt};

/// Every item of each stream of `streams`, one stream after the other, as
/// [`StreamExt::chain`] gives them, but with each later stream polled from
/// the start, after those before it, so that it runs meanwhile; the
/// chain of those after the first is polled until it has an item ready.
pub fn chain_started<'a, R, E>(
    streams: impl IntoIterator<Item = BoxStream<'a, Result<R, E>>>,
) -> BoxStream<'a, Result<R, E>>
where
    R: Send + Unpin + 'a,
    E: Send + Unpin + 'a,
{
    let mut streams: Vec<_> = streams.into_iter().collect();
    let Some(mut chained) = streams.pop() else {
        return futures_util::stream::empty().boxed();
    };
    while let Some(first) = streams.pop() {
        chained = StartedChain {
            first: Some(first),
            second: chained,
            ahead: None,
            second_done: false,
        }
        .boxed();
    }
    chained
}

struct StartedChain<'a, T> {
    /// `None` once it has ended.
    first: Option<BoxStream<'a, T>>,
    second: BoxStream<'a, T>,
    /// The second's first item, taken while the first is read.
    ahead: Option<T>,
    second_done: bool,
}

impl<R: Unpin, E: Unpin> Stream for StartedChain<'_, Result<R, E>> {
    type Item = Result<R, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(first) = &mut this.first {
            // The first before the second: see the module's comment.
            let polled = first.poll_next_unpin(cx);
            if this.ahead.is_none() && !this.second_done {
                match this.second.poll_next_unpin(cx) {
                    Poll::Ready(Some(item)) => this.ahead = Some(item),
                    Poll::Ready(None) => this.second_done = true,
                    Poll::Pending => {}
                }
            }
            if matches!(this.ahead, Some(Err(_))) {
                this.first = None;
                return Poll::Ready(this.ahead.take());
            }
            match polled {
                Poll::Ready(None) => this.first = None,
                other => return other,
            }
        }
        if let Some(item) = this.ahead.take() {
            return Poll::Ready(Some(item));
        }
        if this.second_done {
            return Poll::Ready(None);
        }
        this.second.poll_next_unpin(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use futures_util::stream;

    use super::*;

    /// Which stream was polled, in order.
    type Log = Arc<Mutex<Vec<&'static str>>>;

    type Item = Result<u32, &'static str>;

    /// A stream of `items` that logs each time it is polled as `name`.
    fn logged(name: &'static str, items: Vec<Item>, log: &Log) -> BoxStream<'static, Item> {
        let (mut items, log) = (items.into_iter(), log.clone());
        stream::poll_fn(move |_| {
            log.lock().expect("log").push(name);
            Poll::Ready(items.next())
        })
        .boxed()
    }

    fn oks(values: &[u32]) -> Vec<Item> {
        values.iter().copied().map(Ok).collect()
    }

    fn polls(log: &Log, name: &str) -> usize {
        log.lock()
            .expect("log")
            .iter()
            .filter(|n| **n == name)
            .count()
    }

    #[tokio::test]
    async fn gives_each_streams_items_in_turn_and_in_order() {
        let log = Log::default();
        let all = chain_started([
            logged("a", oks(&[1, 2, 3]), &log),
            logged("b", oks(&[4, 5]), &log),
            logged("c", oks(&[6]), &log),
        ]);
        assert_eq!(all.collect::<Vec<_>>().await, oks(&[1, 2, 3, 4, 5, 6]));
    }

    #[tokio::test]
    async fn starts_every_stream_after_the_ones_before_it_holding_one_item_ahead() {
        let log = Log::default();
        let mut all = chain_started([
            logged("a", oks(&[1, 2, 3]), &log),
            logged("b", oks(&[4, 5]), &log),
            logged("c", oks(&[6, 7]), &log),
        ]);
        assert_eq!(all.next().await, Some(Ok(1)));
        assert_eq!(
            *log.lock().expect("log"),
            ["a", "b", "c"],
            "in order, each once"
        );
        assert_eq!(all.next().await, Some(Ok(2)));
        assert_eq!(
            (polls(&log, "b"), polls(&log, "c")),
            (1, 1),
            "one item ahead at most"
        );
    }

    #[tokio::test]
    async fn empty_streams_are_passed_over_and_not_polled_again() {
        let log = Log::default();
        let all = chain_started([
            logged("a", Vec::new(), &log),
            logged("b", oks(&[8]), &log),
            logged("c", Vec::new(), &log),
        ]);
        assert_eq!(all.collect::<Vec<_>>().await, oks(&[8]));
        assert_eq!((polls(&log, "a"), polls(&log, "c")), (1, 1));
        let none: Vec<BoxStream<'static, Item>> = Vec::new();
        assert_eq!(
            chain_started(none).collect::<Vec<_>>().await,
            Vec::<Item>::new()
        );
    }

    #[tokio::test]
    async fn a_later_streams_error_ends_the_chain_without_reading_the_rest() {
        let log = Log::default();
        let all = chain_started([
            logged("a", oks(&[1, 2, 3]), &log),
            logged("b", vec![Err("no such table")], &log),
        ]);
        assert_eq!(all.collect::<Vec<_>>().await, [Err("no such table")]);
        assert_eq!(polls(&log, "a"), 1, "the first is dropped at the error");
    }
}
