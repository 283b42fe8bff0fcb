//! Everything recorded about one run: what `drover show` prints and a resume starts from.

use rusqlite::Connection;
use serde::Serialize;

use super::columns::json_at;
use super::node_row::NodeRow;
use super::run_row::RunRow;
use super::step_row::StepRow;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunDetail {
    pub run: RunRow,
    /// The plan as the engine recorded it, so a resume follows the same phases and
    /// batches even if the inventory changed since.
    pub plan: serde_json::Value,
    pub options: serde_json::Value,
    /// In plan order.
    pub nodes: Vec<NodeRow>,
    pub steps: Vec<StepRow>,
}

impl RunDetail {
    /// Reads in one transaction, so the run, its nodes and its steps agree with each
    /// other even while the writer commits.
    pub(super) fn load(conn: &mut Connection, id: &str) -> rusqlite::Result<Option<RunDetail>> {
        let tx = conn.transaction()?;
        let Some(run) = RunRow::query(&tx, Some(id), None)?.into_iter().next() else {
            return Ok(None);
        };
        let (plan, options) = tx
            .prepare_cached("SELECT plan, options FROM runs WHERE id = ?1")?
            .query_row([id], |row| Ok((json_at(row, 0)?, json_at(row, 1)?)))?;
        let nodes = NodeRow::of_run(&tx, id)?;
        let steps = StepRow::of_run(&tx, id)?;
        tx.finish()?;
        Ok(Some(RunDetail {
            run,
            plan,
            options,
            nodes,
            steps,
        }))
    }
}
