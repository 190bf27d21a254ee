//! Two statements whose rows are read one after the other, the second
//! started while the first is still read ([`chain_started`]): the database
//! works on both at once (SQLite on a worker thread per connection,
//! PostgreSQL in a backend per connection), so a statement that sorts
//! before its first row, as the timeline's markers do, costs no wait after
//! the first. What is held meanwhile stays bounded: one row of the second
//! here, and what the driver buffers for its connection.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::stream::{BoxStream, Stream, StreamExt};

/// Every item of `first`, then every item of `second`, as
/// [`StreamExt::chain`] gives them, but with `second` polled from the
/// start, until it has an item ready, so that it runs meanwhile.
pub fn chain_started<'a, T: Send + Unpin + 'a>(
    first: BoxStream<'a, T>,
    second: BoxStream<'a, T>,
) -> BoxStream<'a, T> {
    StartedChain {
        first: Some(first),
        second,
        ahead: None,
        second_done: false,
    }
    .boxed()
}

struct StartedChain<'a, T> {
    /// `None` once it has ended.
    first: Option<BoxStream<'a, T>>,
    second: BoxStream<'a, T>,
    /// The second's first item, taken while the first is read.
    ahead: Option<T>,
    second_done: bool,
}

impl<T: Unpin> Stream for StartedChain<'_, T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        if let Some(first) = &mut this.first {
            if this.ahead.is_none() && !this.second_done {
                match this.second.poll_next_unpin(cx) {
                    Poll::Ready(Some(item)) => this.ahead = Some(item),
                    Poll::Ready(None) => this.second_done = true,
                    Poll::Pending => {}
                }
            }
            match first.poll_next_unpin(cx) {
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
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::stream;

    use super::*;

    /// A stream of `items` that counts the times it is polled.
    fn counted(items: Vec<u32>, polls: Arc<AtomicUsize>) -> BoxStream<'static, u32> {
        let mut items = items.into_iter();
        stream::poll_fn(move |_| {
            polls.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(items.next())
        })
        .boxed()
    }

    #[tokio::test]
    async fn gives_the_first_streams_items_then_the_seconds_in_order() {
        let polls = Arc::new(AtomicUsize::new(0));
        let both = chain_started(
            stream::iter(vec![1, 2, 3]).boxed(),
            counted(vec![4, 5, 6], polls),
        );
        assert_eq!(both.collect::<Vec<_>>().await, [1, 2, 3, 4, 5, 6]);
    }

    #[tokio::test]
    async fn starts_the_second_before_the_first_ends_and_takes_one_item_ahead() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut both = chain_started(
            stream::iter(vec![1, 2, 3]).boxed(),
            counted(vec![4, 5, 6], polls.clone()),
        );
        assert_eq!(both.next().await, Some(1));
        assert_eq!(polls.load(Ordering::SeqCst), 1, "started with the first");
        assert_eq!(both.next().await, Some(2));
        assert_eq!(polls.load(Ordering::SeqCst), 1, "one item ahead at most");
    }

    #[tokio::test]
    async fn an_empty_first_or_second_gives_the_other_whole() {
        let polls = Arc::new(AtomicUsize::new(0));
        let first_empty = chain_started(stream::empty().boxed(), counted(vec![7, 8], polls));
        assert_eq!(first_empty.collect::<Vec<_>>().await, [7, 8]);
        let polls = Arc::new(AtomicUsize::new(0));
        let second_empty = chain_started(
            stream::iter(vec![9]).boxed(),
            counted(Vec::new(), polls.clone()),
        );
        assert_eq!(second_empty.collect::<Vec<_>>().await, [9]);
        assert_eq!(
            polls.load(Ordering::SeqCst),
            1,
            "an ended stream is not polled again"
        );
    }
}
