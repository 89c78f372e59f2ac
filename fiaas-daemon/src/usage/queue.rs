//! What the reporter keeps between events: the queue between the deploys and the sending
//! task, and the start times that completions are reported with.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use super::{UsageEvent, UsageStatus};

/// A deployment that started but never completed (daemon restarted mid-deploy, lost event)
/// must not be remembered forever.
pub(super) const MAX_REMEMBERED_STARTS: usize = 1000;

/// A bounded FIFO that drops its oldest entry rather than block or grow.
#[derive(Debug)]
pub(super) struct Queue {
    state: Mutex<QueueState>,
    wake: Notify,
    capacity: usize,
}

#[derive(Debug, Default)]
pub(super) struct QueueState {
    pub(super) events: VecDeque<UsageEvent>,
    closed: bool,
}

impl Queue {
    pub(super) fn new(capacity: usize) -> Queue {
        Queue {
            state: Mutex::default(),
            wake: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, QueueState> {
        // No critical section can leave the state half-updated, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `event`; returns the event dropped to make room, if any.
    pub(super) fn push(&self, event: UsageEvent) -> Option<UsageEvent> {
        let dropped = {
            let mut state = self.lock();
            let dropped = if state.events.len() >= self.capacity {
                state.events.pop_front()
            } else {
                None
            };
            state.events.push_back(event);
            dropped
        };
        self.wake.notify_one();
        dropped
    }

    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.wake.notify_one();
    }

    /// The next event, waiting for one; None once closed and drained.
    pub(super) async fn pop(&self) -> Option<UsageEvent> {
        loop {
            {
                let mut state = self.lock();
                if let Some(event) = state.events.pop_front() {
                    return Some(event);
                }
                if state.closed {
                    return None;
                }
            }
            // `notify_one` stores a permit when nobody waits, so a push between the unlock
            // above and this await is not missed.
            self.wake.notified().await;
        }
    }
}

/// Start times of deployments in progress, keyed by (app, deployment id), oldest first.
#[derive(Debug, Default)]
pub(super) struct StartTimes {
    pub(super) entries: VecDeque<((String, String), String)>,
}

impl StartTimes {
    /// The `started_at` for `event` reported at `now`: `now` for a start (remembered), the
    /// remembered start for a completion (forgotten), else `now` (e.g. a config that failed to
    /// parse has no start).
    pub(super) fn started_at(&mut self, event: &UsageEvent, now: &str) -> String {
        let key = (event.app.clone(), event.deployment_id.clone());
        let known = self
            .entries
            .iter()
            .position(|(k, _)| *k == key)
            .and_then(|at| self.entries.remove(at));
        match event.status {
            UsageStatus::Started => {
                if self.entries.len() >= MAX_REMEMBERED_STARTS {
                    self.entries.pop_front();
                }
                self.entries.push_back((key, now.to_owned()));
                now.to_owned()
            }
            UsageStatus::Succeeded | UsageStatus::Failed => {
                known.map_or_else(|| now.to_owned(), |(_, started)| started)
            }
        }
    }
}
