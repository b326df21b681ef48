//! Callbacks: SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat, by
//! task token.

use serde_json::Value;
use tokio::sync::oneshot;

use crate::executor::{self, Message};
use stepline_language::interp::token;
use stepline_language::interp::{Command, TaskId};

use super::{Engine, EngineError};

impl Engine {
    /// Answers a task with its output (JSON text), once the answer is
    /// durable. AWS's errors: InvalidToken (not a token), TaskTimedOut (the
    /// task is closed or unknown), InvalidOutput (not JSON).
    pub async fn send_task_success(&self, token: &str, output: &str) -> Result<(), EngineError> {
        let output: Value = serde_json::from_str(output)
            .map_err(|e| EngineError::InvalidOutput(format!("Invalid Output: '{e}'")))?;
        self.answer(token, |task| Command::TaskSucceeded {
            task,
            output,
            cached: None,
        })
        .await
    }

    /// Fails a task with an error and a cause.
    pub async fn send_task_failure(
        &self,
        token: &str,
        error: Option<String>,
        cause: Option<String>,
    ) -> Result<(), EngineError> {
        self.answer(token, |task| Command::TaskFailed { task, error, cause })
            .await
    }

    /// Says a task is alive: its HeartbeatSeconds start again.
    pub async fn send_task_heartbeat(&self, token: &str) -> Result<(), EngineError> {
        self.answer(token, |task| Command::TaskHeartbeat { task })
            .await
    }

    pub(super) async fn answer(
        &self,
        token: &str,
        command: impl FnOnce(TaskId) -> Command,
    ) -> Result<(), EngineError> {
        if !token::is_well_formed(token) {
            return Err(EngineError::InvalidToken(token.chars().take(64).collect()));
        }
        let record = self
            .inner
            .store
            .task_token(token)?
            .ok_or(EngineError::TaskTimedOut)?;
        let task = TaskId(record.task);
        let (reply, answered) = oneshot::channel();
        let message = Message::Answer {
            task,
            command: command(task),
            reply,
        };
        match executor::send(self, &record.execution, message) {
            Ok(()) => answered.await.unwrap_or(Err(EngineError::TaskTimedOut)),
            // Another node runs the execution: the answer waits for it in
            // the store, and is applied once, while the task is open.
            Err(Message::Answer { command, .. }) if self.is_clustered() => {
                self.post_command(&record.execution, Some(task), &command)?;
                self.flush().await?;
                Ok(())
            }
            Err(_) => Err(EngineError::TaskTimedOut),
        }
    }
}
