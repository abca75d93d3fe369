//! Group commit for publishing: concurrent publishes share one storage transaction.
//!
//! Producers publish one event per request as things happen; stored one transaction each, every
//! publish paid a commit (an fsync on SQLite, a round trip and a WAL flush on PostgreSQL) and
//! waited for the writer in turn. Here a publish joins a queue; when no commit is in progress it
//! starts one. The committer takes what is waiting (up to [`Bounds`]), stores it with one
//! [`DeliveryQueue::publish`](crate::store::queue::DeliveryQueue::publish), answers each publish, and goes again while publishes are waiting —
//! the classic group-commit loop: nothing lingers, a publish that arrives alone is committed at
//! once, and under load each commit carries everything that arrived during the previous one.
//!
//! A publish is answered only after the commit that holds it; a failed commit fails each publish
//! in it with the same error, and while the disk is full ([`DiskWatch`]) a group is refused
//! without being written. An idempotency key reused for a different event fails only the
//! publish that carries it: the others of its group are stored again without it. The committer
//! is a task of its own, so a publish whose client went away is still committed with its group,
//! never half stored.
//!
//! Events are fanned out with the candidates of [`Routing`], the node's cache: a group checks
//! the routing version once and sends back the publishes fanned out at an older one, which look
//! their candidates up again and go unchecked (see [`routing`]).

mod group;
mod routing;

use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use self::group::{take_group, Waiting};
use crate::disk::DiskWatch;
use crate::domain::events::NewEvent;
use crate::domain::fanout::{fan_out_all, routing_keys, Publication};
use crate::domain::idempotency::Published;
use crate::ids::IdGenerator;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError, StoreResult};

pub use self::group::Bounds;
pub use self::routing::Routing;

/// The bounds of a commit group by default: four full batches, and bodies that a commit writes
/// in a few milliseconds.
pub const DEFAULT_BOUNDS: Bounds = Bounds { events: 4000, bytes: 16 << 20 };

/// Publishes that are waiting, and whether a committer is at work on them.
#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    committing: bool,
}

/// One publish waiting for its commit.
struct Pending {
    publications: Vec<Publication>,
    reply: Reply,
}

type Answer = StoreResult<Vec<Published>>;

/// Where a publish waits for its answer.
enum Reply {
    /// Fanned out with candidates of this routing version; at another, its publications come
    /// back unstored.
    Checked { version: i64, answer: oneshot::Sender<Result<Answer, Vec<Publication>>> },
    /// Fanned out with candidates read for it (or none needed): stored whatever the version.
    Unchecked(oneshot::Sender<Result<Answer, Infallible>>),
}

impl Reply {
    /// Answers the publish; one whose client went away has no one to answer, and is no less
    /// stored.
    fn send(self, answer: Answer) {
        let _ = match self {
            Reply::Checked { answer: sender, .. } => sender.send(Ok(answer)).map_err(drop),
            Reply::Unchecked(sender) => sender.send(Ok(answer)).map_err(drop),
        };
    }
}

impl Waiting for Pending {
    fn events(&self) -> usize {
        self.publications.len()
    }

    fn bytes(&self) -> usize {
        self.publications.iter().flat_map(|p| &p.deliveries).map(|d| d.body.len()).sum()
    }

    fn keys(&self) -> Vec<(i64, &str)> {
        self.publications
            .iter()
            .filter_map(|p| p.event.idempotency.as_ref().map(|k| (p.event.account_id, k.key.as_str())))
            .collect()
    }
}

/// Stores publishes in shared transactions; see the module doc.
pub struct GroupCommit {
    store: Arc<dyn Store>,
    disk: Arc<DiskWatch>,
    metrics: Arc<Metrics>,
    bounds: Bounds,
    routing: Routing,
    queue: Mutex<Queue>,
}

impl GroupCommit {
    pub fn new(
        store: Arc<dyn Store>,
        disk: Arc<DiskWatch>,
        metrics: Arc<Metrics>,
        bounds: Bounds,
    ) -> Arc<Self> {
        let routing = Routing::new(store.clone(), metrics.clone());
        Arc::new(GroupCommit { store, disk, metrics, bounds, routing, queue: Mutex::default() })
    }

    /// The node's routing cache, which also knows which accounts exist.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// Fans `events` (one request's, all or none) out to their receivers and stores them with
    /// whatever else is being published; answers once they are committed, as
    /// [`DeliveryQueue::publish`](crate::store::queue::DeliveryQueue::publish) does.
    pub async fn publish_events(self: &Arc<Self>, events: Vec<NewEvent>, ids: &IdGenerator) -> Answer {
        let keys = routing_keys(&events);
        let mut ids = std::iter::repeat_with(|| ids.next_id());
        let (version, candidates) = self.routing.candidates(&keys).await?;
        let (answer, answered) = oneshot::channel();
        let publications = fan_out_all(events, &candidates, &mut ids);
        let back = match self.wait(publications, Reply::Checked { version, answer }, answered).await {
            Ok(answer) => return answer,
            Err(back) => back,
        };
        // The apps changed since the candidates were remembered. The commit forgot the older
        // ones, so these are of its version or newer: current for this publish, which began
        // before that commit read the version.
        self.metrics.routing_lookup("stale");
        let (_, candidates) = self.routing.candidates(&keys).await?;
        let events = back.into_iter().map(|p| p.event).collect();
        self.publish(fan_out_all(events, &candidates, &mut ids)).await
    }

    /// Stores `publications`, fanned out already, as [`GroupCommit::publish_events`] does.
    pub async fn publish(self: &Arc<Self>, publications: Vec<Publication>) -> Answer {
        let (answer, answered) = oneshot::channel();
        let Ok(answer) = self.wait(publications, Reply::Unchecked(answer), answered).await;
        answer
    }

    /// Queues a publish, starts a committer if none is at work, and waits for the answer.
    async fn wait<T>(
        self: &Arc<Self>,
        publications: Vec<Publication>,
        reply: Reply,
        answered: oneshot::Receiver<Result<Answer, T>>,
    ) -> Result<Answer, T> {
        let lead = {
            let mut queue = self.queue();
            queue.waiting.push(Pending { publications, reply });
            !std::mem::replace(&mut queue.committing, true)
        };
        if lead {
            tokio::spawn(Committer::new(self.clone()).run());
        }
        answered.await.unwrap_or_else(|_| {
            Ok(Err(StoreError::Internal(
                "the commit of this publish ended without an answer; the server log says why".into(),
            )))
        })
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        // The queue is consistent between any two statements, so a panic elsewhere leaves it usable.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The publishes of the next commit; when nothing waits, none, and the committer stops (in
    /// the same lock, so the next publish knows to start one).
    fn next_group(&self) -> Option<Vec<Pending>> {
        let mut queue = self.queue();
        if queue.waiting.is_empty() {
            queue.committing = false;
            return None;
        }
        Some(take_group(&mut queue.waiting, self.bounds))
    }

    /// Stores `group` in one transaction and answers each of its publishes.
    async fn commit(&self, group: Vec<Pending>) {
        let mut group = match self.current(group).await {
            Ok(current) => current,
            Err((group, failure)) => {
                group.into_iter().for_each(|pending| pending.reply.send(Err(failure.clone())));
                return;
            }
        };
        while !group.is_empty() {
            // Held while the group is written, so the ballast is not released under it.
            let Some(_admitted) = self.disk.admit_publish().await else {
                // These passed the API's check before the disk filled; written now, they would
                // take the room the ballast freed for delivering what is already accepted.
                let refused = StoreError::DiskFull("refused while the disk is full".into());
                group.into_iter().for_each(|pending| pending.reply.send(Err(refused.clone())));
                return;
            };
            let sizes: Vec<usize> = group.iter().map(|p| p.publications.len()).collect();
            // A copy goes to storage, so that the group can go again without a publish it refused.
            let publications: Vec<Publication> =
                group.iter().flat_map(|p| p.publications.iter().cloned()).collect();
            match self.store.publish(publications).await {
                Ok(answers) => {
                    self.metrics.publish_group(group.len());
                    let mut answers = answers.into_iter();
                    for (pending, size) in group.into_iter().zip(sizes) {
                        pending.reply.send(Ok(answers.by_ref().take(size).collect()));
                    }
                    return;
                }
                Err(StoreError::KeyReused { index, key, event_id }) => {
                    let (culprit, first) = owner_of(&sizes, index);
                    let refused = group.remove(culprit);
                    refused.reply.send(Err(StoreError::KeyReused { index: index - first, key, event_id }));
                }
                Err(failure) => {
                    group.into_iter().for_each(|pending| pending.reply.send(Err(failure.clone())));
                    return;
                }
            }
        }
    }

    /// The publishes of `group` fanned out at the current routing version (or unchecked); the
    /// others get their publications back. When the version cannot be read, the whole group
    /// with the failure.
    async fn current(&self, group: Vec<Pending>) -> Result<Vec<Pending>, (Vec<Pending>, StoreError)> {
        if group.iter().all(|pending| matches!(pending.reply, Reply::Unchecked(_))) {
            return Ok(group);
        }
        let current = match self.store.routing_version().await {
            Ok(version) => version,
            Err(failure) => return Err((group, failure)),
        };
        self.routing.see(current);
        let mut kept = Vec::with_capacity(group.len());
        for pending in group {
            match pending.reply {
                Reply::Checked { version, answer } if version != current => {
                    let _ = answer.send(Err(pending.publications));
                }
                reply => kept.push(Pending { reply, ..pending }),
            }
        }
        Ok(kept)
    }
}

/// Which publish of a group holds its `index`th event, and the index of that publish's first
/// event. An index past the end (storage naming an event it was not given) is put on the last.
fn owner_of(sizes: &[usize], index: usize) -> (usize, usize) {
    let mut first = 0;
    for (publish, &size) in sizes.iter().enumerate() {
        if index < first + size || publish + 1 == sizes.len() {
            return (publish, first);
        }
        first += size;
    }
    (0, 0)
}

/// The task that commits while publishes wait. It stops when the queue is empty; one that ends
/// otherwise (a panic mid-commit) hands what waits to a new committer, so no publish waits for
/// a committer that is gone. One that never ran (the runtime shutting down) fails what waits
/// instead of handing it on to another that would not run either.
struct Committer {
    group_commit: Arc<GroupCommit>,
    started: bool,
    finished: bool,
}

impl Committer {
    fn new(group_commit: Arc<GroupCommit>) -> Self {
        Committer { group_commit, started: false, finished: false }
    }

    async fn run(mut self) {
        self.started = true;
        while let Some(group) = self.group_commit.next_group() {
            self.group_commit.commit(group).await;
        }
        self.finished = true;
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let mut queue = self.group_commit.queue();
        let runtime = tokio::runtime::Handle::try_current();
        match runtime {
            Ok(runtime) if self.started && !queue.waiting.is_empty() => {
                drop(queue);
                runtime.spawn(Committer::new(self.group_commit.clone()).run());
            }
            _ => {
                // Dropping the waiting publishes answers each with an error.
                queue.waiting.clear();
                queue.committing = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::owner_of;

    #[test]
    fn an_event_index_names_its_publish_and_that_publish_s_first_event() {
        let sizes = [1, 3, 1];
        assert_eq!(owner_of(&sizes, 0), (0, 0));
        assert_eq!(owner_of(&sizes, 1), (1, 1));
        assert_eq!(owner_of(&sizes, 3), (1, 1));
        assert_eq!(owner_of(&sizes, 4), (2, 4));
        assert_eq!(owner_of(&sizes, 9), (2, 4));
    }
}
