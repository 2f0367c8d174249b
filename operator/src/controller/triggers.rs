//! What wakes a controller: the objects a watch brings, once its store can be read for them.
//!
//! kube's `applied_objects()` passes on each object of a (re)list as it arrives, but the
//! reflector's store only swaps in the new list when the list is complete. A reconcile woken by
//! such an object reads the store's copy from before the relist, and nothing wakes it again once
//! the store has the new one. After a watch broke (an API server restart, an expired resource
//! version), a `Lease` closed meanwhile was then reconciled as still active, and its namespace
//! stayed. [`settled`] holds a list's objects back until the list is complete, then passes them
//! all on: every reconcile it wakes reads what the watch brought.

use futures::{Stream, StreamExt, future, stream};
use kube::runtime::watcher::{Error, Event};

/// The objects of `events` (a reflected watch stream) that should wake a reconcile: each object
/// applied, each object deleted when `with_deleted` (as `touched_objects()` does), and after a
/// (re)list every object listed, once the list is complete. Errors are passed on as they come.
pub(crate) fn settled<K, S>(events: S, with_deleted: bool) -> impl Stream<Item = Result<K, Error>>
where
    S: Stream<Item = Result<Event<K>, Error>>,
{
    events
        .scan(Vec::new(), move |listed, event| {
            let out: Vec<Result<K, Error>> = match event {
                Ok(Event::Apply(object)) => vec![Ok(object)],
                Ok(Event::Delete(object)) if with_deleted => vec![Ok(object)],
                Ok(Event::Delete(_)) => Vec::new(),
                Ok(Event::Init) => {
                    listed.clear();
                    Vec::new()
                }
                Ok(Event::InitApply(object)) => {
                    listed.push(object);
                    Vec::new()
                }
                Ok(Event::InitDone) => std::mem::take(listed).into_iter().map(Ok).collect(),
                Err(e) => vec![Err(e)],
            };
            future::ready(Some(stream::iter(out)))
        })
        .flatten()
}

#[cfg(test)]
mod tests;
