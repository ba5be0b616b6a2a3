//! Evaluation (考核问效): how well each department and command level handled
//! its cases. It reads what the case capability wrote (its tables, or the
//! audit log alone) and writes nothing; [`kpi`] holds the definitions.

pub mod kpi;

use std::sync::Arc;

use crate::cases::Cases;
use crate::db::Db;

/// The evaluation service: KPIs over a period from the case tables or from
/// the audit log.
pub struct Evaluator {
    db: Db,
    /// Step clocks of the steps still running (their deadlines).
    cases: Arc<Cases>,
}

impl Evaluator {
    pub fn new(db: Db, cases: Arc<Cases>) -> Self {
        Evaluator { db, cases }
    }
}
