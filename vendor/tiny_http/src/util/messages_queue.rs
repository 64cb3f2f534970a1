use std::collections::VecDeque;
use std::sync::MutexGuard;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// dpyfs: a poisoned lock (a thread panicked while holding it) is taken anyway: the queue
/// itself is never left half-changed.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

enum Control<T> {
    Elem(T),
    Unblock,
}

pub struct MessagesQueue<T>
where
    T: Send,
{
    queue: Mutex<VecDeque<Control<T>>>,
    condvar: Condvar,
    // dpyfs: set when no element will ever come (the accept thread ended): every `pop`
    // returns None from then on, and all waiting threads wake.
    closed: std::sync::atomic::AtomicBool,
}

impl<T> MessagesQueue<T>
where
    T: Send,
{
    pub fn with_capacity(capacity: usize) -> Arc<MessagesQueue<T>> {
        Arc::new(MessagesQueue {
            queue: Mutex::new(VecDeque::with_capacity(capacity)),
            condvar: Condvar::new(),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Pushes an element to the queue.
    pub fn push(&self, value: T) {
        let mut queue = lock(&self.queue);
        queue.push_back(Control::Elem(value));
        self.condvar.notify_one();
    }

    /// Unblock one thread stuck in pop loop.
    pub fn unblock(&self) {
        let mut queue = lock(&self.queue);
        queue.push_back(Control::Unblock);
        self.condvar.notify_one();
    }

    /// dpyfs: ends the queue for every consumer (see `closed`).
    pub fn close(&self) {
        let _queue = lock(&self.queue);
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        self.condvar.notify_all();
    }

    /// dpyfs: pops the first element `take` accepts, leaving the others in order. Blocks
    /// until there is one; None after `unblock()` or `close()`. `take` runs under the
    /// queue's lock, so it may claim something (a worker slot) for the element it accepts.
    pub fn pop_where(&self, mut take: impl FnMut(&T) -> bool) -> Option<T> {
        let mut queue = lock(&self.queue);
        loop {
            if self.closed.load(std::sync::atomic::Ordering::Acquire) {
                return None;
            }
            let found = queue.iter().position(|c| match c {
                Control::Elem(v) => take(v),
                Control::Unblock => true,
            });
            if let Some(i) = found {
                match queue.remove(i) {
                    Some(Control::Elem(value)) => return Some(value),
                    _ => return None,
                }
            }
            queue = match self.condvar.wait(queue) {
                Ok(q) => q,
                Err(poisoned) => poisoned.into_inner(),
            };
        }
    }

    /// Pops an element. Blocks until one is available.
    /// Returns None in case unblock() was issued.
    pub fn pop(&self) -> Option<T> {
        let mut queue = lock(&self.queue);

        loop {
            if self.closed.load(std::sync::atomic::Ordering::Acquire) {
                return None;
            }
            match queue.pop_front() {
                Some(Control::Elem(value)) => return Some(value),
                Some(Control::Unblock) => return None,
                None => (),
            }

            queue = self.condvar.wait(queue).unwrap();
        }
    }

    /// Tries to pop an element without blocking.
    pub fn try_pop(&self) -> Option<T> {
        let mut queue = lock(&self.queue);
        match queue.pop_front() {
            Some(Control::Elem(value)) => Some(value),
            Some(Control::Unblock) | None => None,
        }
    }

    /// Tries to pop an element without blocking
    /// more than the specified timeout duration
    /// or unblock() was issued
    pub fn pop_timeout(&self, timeout: Duration) -> Option<T> {
        let mut queue = lock(&self.queue);
        let mut duration = timeout;
        loop {
            match queue.pop_front() {
                Some(Control::Elem(value)) => return Some(value),
                Some(Control::Unblock) => return None,
                None => (),
            }
            let now = Instant::now();
            let (_queue, result) = self.condvar.wait_timeout(queue, timeout).unwrap();
            queue = _queue;
            let sleep_time = now.elapsed();
            duration = if duration > sleep_time {
                duration - sleep_time
            } else {
                Duration::from_millis(0)
            };
            if result.timed_out()
                || (duration.as_secs() == 0 && duration.subsec_nanos() < 1_000_000)
            {
                return None;
            }
        }
    }
}
