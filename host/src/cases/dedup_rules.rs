//! The deduplication rules as data: table `dedup_rules` holds one row per
//! category family (a code prefix: radius, window, threshold) and the fallback
//! (family `''`). The deduplication index loads them when it is built; an
//! operator replaces them with `PUT /api/dedup/rules`, which checks them
//! ([`DedupRules::new`]), stores them in one transaction and hands them to the
//! live index of this node.
//!
//! What is not in the table stays as [`dedup`](super::dedup) sets it: the
//! score's weights, and [`FAMILY_DIGITS`] for a code no family row matches.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::Cases;
use super::dedup::{DedupConfig, DedupRules, FamilyRule, RulesError, Weights};
use crate::db::Db;
use crate::error::ServiceError;

/// Digits of a code that make its family when no family row matches: case
/// codes are 2 type + 2 major + 2 minor digits, so type and major class.
pub const FAMILY_DIGITS: u8 = 4;

/// The deduplication rules as stored, e.g.
/// `{"fallback": {"radius_m": 200, "window_ms": 259200000, "threshold": 0.6},
///   "families": {"0101": {"radius_m": 100, "window_ms": 2592000000, "threshold": 0.6}}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleTable {
    /// The rule of a code no family matches; its family is then the code's
    /// first 4 digits (type and major class).
    pub fallback: FamilyRule,
    /// Rules by family, a code prefix of 1–16 digits (`0101` 公用设施 部件,
    /// `0204` 突发事件 …); the longest matching prefix wins.
    pub families: BTreeMap<String, FamilyRule>}

impl RuleTable {
    /// The checked rules; an error names the field (`families.0101.threshold`).
    pub fn rules(&self) -> Result<DedupRules, RulesError> {
        DedupRules::new(&DedupConfig {
            family_digits: FAMILY_DIGITS,
            weights: Weights::default(),
            fallback: self.fallback,
            families: self.families.clone()})
    }
}

/// The stored deduplication rules.
pub(crate) async fn rule_table(db: &Db) -> Result<RuleTable, ServiceError> {
    let rows = sqlx::query("SELECT family, radius_m, window_ms, threshold FROM dedup_rules ORDER BY family")
        .fetch_all(db.pool())
        .await?;
    // Without a fallback row (the table edited by hand), the built-in one.
    let mut table = RuleTable { fallback: DedupConfig::default().fallback, families: BTreeMap::new() };
    for r in &rows {
        let family: String = r.try_get(0)?;
        let rule = FamilyRule { radius_m: r.try_get(1)?, window_ms: r.try_get(2)?, threshold: r.try_get(3)? };
        if family.is_empty() {
            table.fallback = rule;
        } else {
            table.families.insert(family, rule);
        }
    }
    Ok(table)
}

/// The stored rules, checked, for the deduplication index.
pub(crate) async fn load_rules(db: &Db) -> Result<DedupRules, ServiceError> {
    rule_table(db)
        .await?
        .rules()
        .map_err(|e| ServiceError::Storage(anyhow::anyhow!("table `dedup_rules` holds invalid rules: {e}")))
}

impl Cases {
    /// The stored deduplication rules.
    pub async fn dedup_rule_table(&self) -> Result<RuleTable, ServiceError> {
        rule_table(&self.db).await
    }

    /// Replace the rules: checked, stored in one transaction, then applied to
    /// the open cases of this node's index. Returns them as stored.
    pub async fn set_dedup_rules(&self, table: &RuleTable) -> Result<RuleTable, ServiceError> {
        let rules = table.rules().map_err(|e| ServiceError::Invalid(e.to_string()))?;
        // One writer at a time, so the index ends with the rules stored last.
        let _writing = self.dedup_rules_writer.lock().await;
        let mut tx = self.db.begin_write().await?;
        sqlx::query("DELETE FROM dedup_rules").execute(&mut *tx).await?;
        let rows = std::iter::once(("", &table.fallback)).chain(table.families.iter().map(|(f, r)| (f.as_str(), r)));
        for (family, rule) in rows {
            sqlx::query("INSERT INTO dedup_rules (family, radius_m, window_ms, threshold) VALUES ($1, $2, $3, $4)")
                .bind(family)
                .bind(rule.radius_m)
                .bind(rule.window_ms)
                .bind(rule.threshold)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.dedup_index().await?.write().set_rules(rules);
        self.dedup_rule_table().await
    }
}
