//! `zongzhi` (综治, comprehensive social governance): grid events, overdue visits to
//! vulnerable residents, the street's call-in of district departments
//! (街道吹哨、部门报到) and the weekly community safety report.
//!
//! An event handler (world `event-handler`). Every parameter named below in
//! `backticks` is a key of the `[config]` table of `plugin.toml`; what it
//! remembers lives in the data set `zongzhi-events` ([`record`] describes the
//! three kinds of record).
//!
//! # Grid events (`case.reported`)
//!
//! A case whose `category_code` is one of `categories` (邻里纠纷 020601, 安全隐患
//! 020602, 重点人员走访逾期 020603), from any channel (usually `patrol`, a grid
//! worker), gets:
//!
//! * a handling note (`note-<code>`, e.g. 网格员先行调解，24 小时内回访);
//! * a route suggestion: `route-<code>` = department/level (邻里纠纷 → zongzhi at
//!   community level, 安全隐患 → zongzhi at street level), score `route-score`;
//! * a message to the roles `notify-<code>` (grid-worker, leader) of the case's
//!   community, `role:<community>/<role>`; the community is the first 12 digits
//!   of the 14-digit grid code in `area` (the street the first 9);
//! * a `case` record (key = case id) with case, category, grid, community, street,
//!   week (ISO week in local time, e.g. `2026-W48`), time, status, escalated.
//!
//! A case the plugin opened itself for an overdue visit is remembered and routed
//! the same way, but not announced twice; without a position it takes its
//! community from the visit's, found by the case's key (`opened-<case>`).
//!
//! # Lifecycle
//!
//! For a remembered case, `case.dispatch` records the department and, when the
//! dispatcher accepted the plugin's own suggestion, the level it proposed (the
//! event does not carry the level; a `level` field in the event, should the host
//! add one, is believed first). `case.escalate` moves the level up as the host
//! does (none or community → street → district → city). `case.close` closes the
//! record, `case.reopen` opens it again, `case.void`/`reject`/`merge` withdraw
//! it; `case.call-in` by a dispatcher marks it escalated.
//!
//! # 街道吹哨 (call-in) escalation
//!
//! A remembered case handled at one of `call-in-levels` (street) that the street
//! cannot resolve is called in once: the signals (`call-in-signals`) are
//! `case.return` (handed back to the dispatcher), `case.fail-check` for the
//! `fail-checks-for-call-in`-th time (2), `case.overdue`, and
//! `case.request-extension`. The plugin then marks the record `escalated`,
//! suggests a route to the district department `call-in-<code>` (安全隐患 →
//! housing, 邻里纠纷 → police) at level `district` (score `call-in-score`) with a
//! reason that says 街道吹哨、部门报到 and which signal, adds the same as a note,
//! and publishes `zongzhi.call-in` `{case, reason, department, level, signal,
//! category, community, street, suggestion}`. A suggestion the host refuses
//! because an earlier one is still pending is logged; the rest still happens.
//!
//! # Overdue visits (`time.day`)
//!
//! The plugin pages through `vulnerable-residents` (`page-size`, at most
//! `max-pages`). A resident is overdue when
//! `last_visit + visit_every_days × 1 day < end of the day`. Fields: `name`,
//! `community` (12 digits; else the first 12 digits of `area`), `last_visit`
//! (milliseconds, or a date/local time such as `2026-11-01` as the data set's
//! schema has it), `visit_every_days` (whole days, 1-3660), optionally `lat`/`lon`
//! or `location {lat, lon}`. For each overdue period (the resident and the due
//! time) the plugin writes an `overdue-visit` record (key
//! `visit-<resident>-<due>`) *before* opening the case, then opens one case of
//! `visit-category` on `visit-channel` titled `重点人员走访逾期：<community> <张*>`
//! (the name masked, no address or other personal data in the description, the
//! position if known), records `overdue_case` (and an `opened-<case>` record pointing
//! back to the visit), and tells the community's `notify-020603` roles. At most `max-visit-cases-per-day` cases a day.
//!
//! # Weekly report (`time.week`)
//!
//! The plugin counts the week's records per community: cases per category, open /
//! closed / withdrawn, escalations, overdue visits with a case. It reads them from the
//! week's tallies ([`tally`]), which it keeps as it stores each record, by key: the
//! report costs what the week holds, not what the plugin has remembered in all (a
//! week from before the tallies is queried by `week`, paged, as it was). It publishes `zongzhi.weekly-summary` `{week, start, end,
//! communities: [{community, street, cases, by_category, open, closed,
//! withdrawn, escalated, overdue_visits}], city, truncated}`, sends each
//! community's leaders (`role:<community>/leader`) 本周社区平安报告 in a few
//! Chinese sentences, and the city's figures to `department:zongzhi`. A
//! `weekly-summary` record makes a repeated `time.week` harmless.
//!
//! # Bad input
//!
//! Malformed JSON, missing fields, a category code that is not 6 digits or an
//! unknown one of the 综治 family, an area that is not a 14-digit grid code,
//! `time.day`/`time.week` payloads whose values do not bound a local day or ISO
//! week (or that no `host:` service published), residents with missing fields or
//! bad values: each is skipped with a `warn` log line saying why. Nothing panics
//! and no case, note, suggestion or message is made from them. A record in
//! `zongzhi-events` that does not parse is treated as absent.

use yiwang_sdk::prelude::*;

pub mod calendar;
pub mod grid;
pub mod record;
pub mod settings;
pub mod summary;
pub mod tally;
pub mod visits;

use settings::Settings;

/// The plugin.
pub struct Zongzhi;

impl EventHandler for Zongzhi {
    fn init() -> Result<(), Error> {
        Settings::load().map(|_| ())
    }

    fn handle(event: Event) -> Result<(), Error> {
        let s = Settings::load()?;
        match event.topic.as_str() {
            "case.reported" => grid::on_reported(&s, &event),
            "time.day" | "time.week" if !event.source.starts_with("host:") => {
                warn!(
                    "skipped event {} on `{}`: published by `{}`, not by the host",
                    event.id, event.topic, event.source
                );
                Ok(())
            }
            "time.day" => visits::on_day(&s, &event),
            "time.week" => summary::on_week(&s, &event),
            topic => match topic.strip_prefix("case.") {
                Some(action) => grid::on_move(&s, &event, action),
                None => {
                    warn!(
                        "skipped event {} on `{topic}`: not a topic the plugin handles",
                        event.id
                    );
                    Ok(())
                }
            },
        }
    }
}

export_handler!(Zongzhi);

#[cfg(test)]
mod tests;
