//! Activity tasks waiting for workers, and workers waiting for tasks.
//!
//! An activity task is offered when its execution schedules it (and again
//! when an execution resumes after a restart, unless a worker had already
//! taken it). A worker's GetActivityTask takes the oldest task of that
//! activity, or waits for one up to its poll timeout. Nothing here is
//! durable: the tasks themselves are (their tokens are in the store and
//! the executions re-offer them at start), the queue is only their order.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::oneshot;

use stepline_language::interp::TaskId;

/// An activity task as a worker receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityTask {
    pub token: String,
    /// The effective input, as JSON text.
    pub input: String,
    pub execution_arn: String,
    pub task: TaskId,
}

#[derive(Debug, Default)]
struct Queue {
    tasks: VecDeque<ActivityTask>,
    /// Workers polling, oldest first.
    pollers: VecDeque<oneshot::Sender<ActivityTask>>,
}

/// Every activity's queue, by activity ARN.
#[derive(Debug, Default)]
pub struct ActivityQueues {
    queues: Mutex<HashMap<String, Queue>>,
}

impl ActivityQueues {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Queue>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Offers a task to the activity's workers: the oldest waiting worker
    /// takes it, or it waits in line.
    pub fn offer(&self, activity_arn: &str, mut task: ActivityTask) {
        let mut queues = self.lock();
        let queue = queues.entry(activity_arn.to_owned()).or_default();
        while let Some(poller) = queue.pollers.pop_front() {
            match poller.send(task) {
                Ok(()) => return,
                // That worker gave up (its request ended): try the next.
                Err(back) => task = back,
            }
        }
        queue.tasks.push_back(task);
    }

    /// Withdraws a task no worker took yet (it timed out, its execution
    /// stopped). A task already taken stays with its worker, whose answer
    /// will be refused.
    pub fn withdraw(&self, activity_arn: &str, execution_arn: &str, task: TaskId) {
        if let Some(queue) = self.lock().get_mut(activity_arn) {
            queue
                .tasks
                .retain(|t| !(t.task == task && t.execution_arn == execution_arn));
        }
    }

    /// Takes the oldest task of the activity, waiting up to `wait` for one.
    /// `None` when none came: AWS then answers with an empty token.
    pub async fn take(&self, activity_arn: &str, wait: Duration) -> Option<ActivityTask> {
        let receiver = {
            let mut queues = self.lock();
            let queue = queues.entry(activity_arn.to_owned()).or_default();
            if let Some(task) = queue.tasks.pop_front() {
                return Some(task);
            }
            let (sender, receiver) = oneshot::channel();
            queue.pollers.retain(|p| !p.is_closed());
            queue.pollers.push_back(sender);
            receiver
        };
        tokio::time::timeout(wait, receiver).await.ok()?.ok()
    }

    /// Tasks waiting for a worker (for tests and metrics).
    pub fn waiting(&self, activity_arn: &str) -> usize {
        self.lock().get(activity_arn).map_or(0, |q| q.tasks.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(n: u64) -> ActivityTask {
        ActivityTask {
            token: format!("token-{n}"),
            input: "{}".into(),
            execution_arn: "exec".into(),
            task: TaskId(n),
        }
    }

    #[tokio::test]
    async fn tasks_are_taken_in_order_and_withdrawn() {
        let queues = ActivityQueues::default();
        queues.offer("a", task(1));
        queues.offer("a", task(2));
        queues.offer("a", task(3));
        queues.withdraw("a", "exec", TaskId(2));
        let wait = Duration::from_millis(10);
        assert_eq!(queues.take("a", wait).await, Some(task(1)));
        assert_eq!(queues.take("a", wait).await, Some(task(3)));
        assert_eq!(queues.take("a", wait).await, None);
        assert_eq!(queues.take("other", wait).await, None);
    }

    #[tokio::test]
    async fn a_waiting_worker_gets_the_next_task_and_a_gone_one_does_not() {
        let queues = std::sync::Arc::new(ActivityQueues::default());
        // A worker that gave up: its poll timed out.
        assert_eq!(queues.take("a", Duration::from_millis(1)).await, None);
        let waiting = {
            let queues = std::sync::Arc::clone(&queues);
            tokio::spawn(async move { queues.take("a", Duration::from_secs(5)).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        queues.offer("a", task(7));
        assert_eq!(waiting.await.unwrap(), Some(task(7)));
        assert_eq!(queues.waiting("a"), 0);
    }
}
