//! The MCP tasks extension (`io.modelcontextprotocol/tasks`) for clients that declare it: a tool
//! that proposes work answers with a task at once, and the task follows the instruction in
//! kromad until it is final: `completed` with the [`InstructionReport`] as its result when the
//! instruction is done, `failed` when it failed, `cancelled` when it was canceled. `tasks/cancel`
//! cancels the instruction through `instruction.cancel`, the same as `cancel_instruction`; an
//! agent may withdraw its own work, it never approves any.
//!
//! Tasks are bounded: at most [`MAX_TASKS`] are kept, each lives [`TASK_TTL`] (rmcp's
//! `TaskManager` marks an unfinished one `failed` then, and forgets a finished one one TTL after
//! it finished). When the cap is reached, a tool answers as it does for clients without tasks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kroma_protocol as protocol;
use protocol::instruction::{Instruction, InstructionState};
use rmcp::ErrorData;
use rmcp::RoleServer;
use rmcp::model::{CallToolResult, CreateTaskResult};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskContext, TaskExit, TaskManager, TaskOptions};

use crate::server::KromaServer;

/// The most tasks kept at once, running and finished together.
pub const MAX_TASKS: usize = 64;
/// How long a task lives; an instruction still unfinished then is followed with
/// `instruction_status`.
pub const TASK_TTL: Duration = Duration::from_secs(30 * 60);
/// How often a task reads its instruction, and the poll interval it suggests to the client.
pub const TASK_POLL: Duration = Duration::from_secs(1);

/// The tasks of one `kroma-mcp` process, shared by every session.
#[derive(Clone, Default)]
pub struct InstructionTasks {
    manager: TaskManager,
    /// When each kept task was made, oldest first.
    made: Arc<Mutex<VecDeque<Instant>>>,
}

impl InstructionTasks {
    pub fn manager(&self) -> &TaskManager {
        &self.manager
    }

    /// Takes a place for a new task made `now`, or `false` when [`MAX_TASKS`] are kept. A task is
    /// kept at most two TTLs (its life, then its finished state's), so older places are free.
    fn take_place(&self, now: Instant) -> bool {
        let Ok(mut made) = self.made.lock() else {
            return false;
        };
        while made
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= 2 * TASK_TTL)
        {
            made.pop_front();
        }
        if made.len() >= MAX_TASKS {
            return false;
        }
        made.push_back(now);
        true
    }
}

/// Whether the client of this request declared the tasks extension on a 2026-07-28 (or later)
/// request. The extension's task is a result of its own kind (`resultType: "task"`), which
/// 2025-11-25 does not have: a client of that era that lists the extension anyway cannot read
/// one, so it gets the answer every client without tasks gets.
pub fn declared(context: &RequestContext<RoleServer>) -> bool {
    crate::instructions::is_modern(context)
        && context
            .client_capabilities()
            .is_some_and(|capabilities| capabilities.supports_tasks())
}

impl KromaServer {
    /// A task that follows `instruction` for `client`, or `None` when the client did not declare
    /// tasks, the instruction is already final, or the cap is reached.
    pub(crate) fn instruction_task(
        &self,
        client: &str,
        instruction: &Instruction,
        context: &RequestContext<RoleServer>,
    ) -> Option<CreateTaskResult> {
        if !declared(context)
            || instruction.state.is_final()
            || !self.tasks().take_place(Instant::now())
        {
            return None;
        }
        let server = self.clone();
        let client = client.to_owned();
        let id = instruction.id.clone();
        let options = TaskOptions::new()
            .with_ttl_ms(millis(TASK_TTL))
            .with_poll_interval_ms(millis(TASK_POLL))
            .with_status_message(status_message(instruction));
        let task = self.tasks().manager().spawn(options, move |task| {
            Box::pin(async move { server.follow_in_task(&client, &id, &task).await })
        });
        Some(CreateTaskResult::new(task))
    }

    /// Reads the instruction until it is final, canceling it once when the client cancels the
    /// task.
    async fn follow_in_task(
        &self,
        client: &str,
        id: &str,
        task: &TaskContext,
    ) -> Result<CallToolResult, TaskExit> {
        let mut cancel_sent = false;
        loop {
            if task.is_cancel_requested() && !cancel_sent {
                cancel_sent = true;
                let params = protocol::instruction::InstructionRef { id: id.to_owned() };
                if let Err(err) = self
                    .call::<protocol::instruction::Cancel>(client, &params)
                    .await
                {
                    // A finished instruction cannot be canceled: the task reports how it ended.
                    tracing::info!(%err, instruction = id, "canceling the instruction of a task");
                }
            }
            let instruction = self.instruction(client, id).await.map_err(task_error)?;
            task.set_status_message(status_message(&instruction));
            match instruction.state {
                InstructionState::Canceled => return Err(TaskExit::Cancelled),
                InstructionState::Failed => {
                    let report = self.report(client, instruction).await.map_err(task_error)?;
                    let data = serde_json::to_value(&report).ok();
                    return Err(TaskExit::Error(ErrorData::internal_error(
                        report.summary(),
                        data,
                    )));
                }
                InstructionState::Done => {
                    let report = self.report(client, instruction).await.map_err(task_error)?;
                    return report.into_result().map_err(task_error);
                }
                _ => {}
            }
            tokio::select! {
                () = tokio::time::sleep(TASK_POLL) => {}
                () = task.cancelled(), if !cancel_sent => {}
            }
        }
    }
}

/// What the task says while it follows the instruction: kroma-mcp's own words, the id, the
/// state and, while it waits, the most it may cost.
fn status_message(instruction: &Instruction) -> String {
    match instruction.state {
        InstructionState::AwaitingConfirmation => format!(
            "instruction {} waits for a person to approve up to ${:.2}",
            instruction.id, instruction.max_cost_usd
        ),
        state => format!("instruction {} is {}", instruction.id, state.as_str()),
    }
}

fn task_error(message: String) -> TaskExit {
    TaskExit::Error(ErrorData::internal_error(message, None))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_tasks_are_kept_and_places_free_after_two_lives() {
        let tasks = InstructionTasks::default();
        let start = Instant::now();
        for _ in 0..MAX_TASKS {
            assert!(tasks.take_place(start));
        }
        assert!(!tasks.take_place(start + TASK_TTL));
        assert!(tasks.take_place(start + 2 * TASK_TTL));
    }
}
