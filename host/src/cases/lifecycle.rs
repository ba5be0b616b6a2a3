//! The case lifecycle after the stages of GB/T 30428 (信息收集 → 案卷建立 →
//! 任务派遣 → 任务处理 → 处理反馈 → 核查结案): which actions each stage allows,
//! where they lead, and who may take them. Pure: the case engine stores the
//! result and records who, when and why.
//!
//! ```text
//! reported ─accept→ accepted ─register→ registered ─dispatch→ dispatched ─start→ in-progress
//!    └reject→ rejected  └void→ voided      ↑  ↑                 │ transfer ↺   │ transfer → dispatched
//!                                          │  └──────return─────┴──────────────┤
//!                                          │                                   dispose
//!                                          │                                   ↓
//!          closed ←close─ checked ←pass-check─ checking ←send-to-check─ disposed
//!            └──reopen──→ registered          └fail-check (返工)→ in-progress
//! ```
//!
//! Beside the stages, two conditions: *suspended* (挂账: the clock stops; only
//! resume, supervise and urge are allowed) and a pending *extension request*
//! (延期), approved or denied by a supervisor or leader. Supervising (督办) and
//! urging (催办) never move a case.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::identity::Role;

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Stage {
    /// 上报: a report taken in, not yet looked at.
    Reported,
    /// 受理: taken on by the command centre.
    Accepted,
    /// 不予受理: not a matter for the platform (terminal).
    Rejected,
    /// 立案: a case to be handled.
    Registered,
    /// 作废: registered in error or a duplicate (terminal).
    Voided,
    /// 派遣: sent to a department.
    Dispatched,
    /// 处置中: the department is working on it.
    InProgress,
    /// 处理反馈: the department reports it done.
    Disposed,
    /// 核查: a grid worker or the reporter is checking the result.
    Checking,
    /// 核查通过: waiting to be closed.
    Checked,
    /// 结案 (terminal until reopened).
    Closed,
}

impl Stage {
    pub const ALL: [Stage; 11] = [
        Stage::Reported,
        Stage::Accepted,
        Stage::Rejected,
        Stage::Registered,
        Stage::Voided,
        Stage::Dispatched,
        Stage::InProgress,
        Stage::Disposed,
        Stage::Checking,
        Stage::Checked,
        Stage::Closed,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Reported => "reported",
            Stage::Accepted => "accepted",
            Stage::Rejected => "rejected",
            Stage::Registered => "registered",
            Stage::Voided => "voided",
            Stage::Dispatched => "dispatched",
            Stage::InProgress => "in-progress",
            Stage::Disposed => "disposed",
            Stage::Checking => "checking",
            Stage::Checked => "checked",
            Stage::Closed => "closed",
        }
    }

    pub fn parse(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the case is still open (not rejected, voided or closed).
    pub fn is_open(self) -> bool {
        !matches!(self, Stage::Rejected | Stage::Voided | Stage::Closed)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What can be done to a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Accept,
    Reject,
    Register,
    Void,
    Dispatch,
    Start,
    /// 转办: to another department.
    Transfer,
    /// 回退: back to the dispatcher, for a wrong assignment.
    Return,
    Dispose,
    SendToCheck,
    PassCheck,
    /// 返工.
    FailCheck,
    Close,
    /// 重办, after an unsatisfied rating or on a supervisor's order.
    Reopen,
    /// 挂账: stops the clock.
    Suspend,
    Resume,
    RequestExtension,
    ApproveExtension,
    DenyExtension,
    /// 督办.
    Supervise,
    /// 催办.
    Urge,
    /// 上报升级: hand the case to the next command level up.
    Escalate,
    /// 吹哨报到: call a department in to join the case.
    CallIn,
    /// 合并: a duplicate not yet dispatched joins another case, its reports
    /// with it, and is voided.
    Merge,
}

impl Action {
    pub const ALL: [Action; 24] = [
        Action::Accept,
        Action::Reject,
        Action::Register,
        Action::Void,
        Action::Dispatch,
        Action::Start,
        Action::Transfer,
        Action::Return,
        Action::Dispose,
        Action::SendToCheck,
        Action::PassCheck,
        Action::FailCheck,
        Action::Close,
        Action::Reopen,
        Action::Suspend,
        Action::Resume,
        Action::RequestExtension,
        Action::ApproveExtension,
        Action::DenyExtension,
        Action::Supervise,
        Action::Urge,
        Action::Escalate,
        Action::CallIn,
        Action::Merge,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Accept => "accept",
            Action::Reject => "reject",
            Action::Register => "register",
            Action::Void => "void",
            Action::Dispatch => "dispatch",
            Action::Start => "start",
            Action::Transfer => "transfer",
            Action::Return => "return",
            Action::Dispose => "dispose",
            Action::SendToCheck => "send-to-check",
            Action::PassCheck => "pass-check",
            Action::FailCheck => "fail-check",
            Action::Close => "close",
            Action::Reopen => "reopen",
            Action::Suspend => "suspend",
            Action::Resume => "resume",
            Action::RequestExtension => "request-extension",
            Action::ApproveExtension => "approve-extension",
            Action::DenyExtension => "deny-extension",
            Action::Supervise => "supervise",
            Action::Urge => "urge",
            Action::Escalate => "escalate",
            Action::CallIn => "call-in",
            Action::Merge => "merge",
        }
    }

    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The roles that may take this action (within the case's area; the engine
    /// checks the area and, for department work, the department). A check may
    /// also be taken by the case's own reporter, which the engine allows apart.
    pub fn roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            Action::Accept | Action::Reject | Action::Register | Action::Void | Action::Dispatch => &[Dispatcher],
            Action::Transfer | Action::SendToCheck | Action::Suspend | Action::Resume => &[Dispatcher],
            Action::Start | Action::Dispose | Action::Return | Action::RequestExtension => &[Handler],
            Action::PassCheck | Action::FailCheck => &[GridWorker],
            Action::Close => &[Dispatcher, Supervisor],
            Action::Reopen => &[Dispatcher, Supervisor],
            Action::ApproveExtension | Action::DenyExtension => &[Supervisor, Leader],
            Action::Supervise | Action::Urge => &[Supervisor, Leader],
            Action::Escalate => &[Dispatcher, Supervisor, Leader],
            Action::CallIn => &[Dispatcher, Leader],
            Action::Merge => &[Dispatcher],
        }
    }

    /// Whether the action asks for a reason (`why`) to be recorded.
    pub fn needs_reason(self) -> bool {
        matches!(
            self,
            Action::Reject
                | Action::Void
                | Action::Transfer
                | Action::Return
                | Action::FailCheck
                | Action::Reopen
                | Action::Suspend
                | Action::RequestExtension
                | Action::DenyExtension
                | Action::Escalate
                | Action::CallIn
                | Action::Merge
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A case's position: its stage and the two conditions beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub stage: Stage,
    pub suspended: bool,
    pub extension_pending: bool,
}

impl Position {
    pub fn new(stage: Stage) -> Self {
        Position { stage, suspended: false, extension_pending: false }
    }
}

/// An action the current position does not allow; `allowed` lists what it does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{action}` is not allowed while the case is {}; allowed: {}", describe(.from), list(.allowed))]
pub struct IllegalTransition {
    pub action: Action,
    pub from: Position,
    pub allowed: Vec<Action>,
}

fn describe(p: &Position) -> String {
    let mut s = p.stage.name().to_owned();
    if p.suspended {
        s.push_str(" (suspended)");
    }
    if p.extension_pending {
        s.push_str(" (extension requested)");
    }
    s
}

fn list(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "nothing".into();
    }
    actions.iter().map(|a| a.name()).collect::<Vec<_>>().join(", ")
}

/// Where `action` leads from `from`, or why it may not be taken.
pub fn apply(from: Position, action: Action) -> Result<Position, IllegalTransition> {
    next(from, action).ok_or_else(|| IllegalTransition { action, from, allowed: allowed(from) })
}

/// Every action `from` allows, in [`Action::ALL`] order.
pub fn allowed(from: Position) -> Vec<Action> {
    Action::ALL.into_iter().filter(|a| next(from, *a).is_some()).collect()
}

fn next(from: Position, action: Action) -> Option<Position> {
    use Action as A;
    use Stage as S;
    let at = |stage| Some(Position { stage, ..from });
    let open = from.stage.is_open();
    // While suspended, the clock and the case stand still.
    if from.suspended {
        return match action {
            A::Resume => Some(Position { suspended: false, ..from }),
            A::Supervise | A::Urge => Some(from),
            _ => None,
        };
    }
    let working = matches!(from.stage, S::Dispatched | S::InProgress);
    match (from.stage, action) {
        (_, A::Supervise | A::Urge) if open && from.stage != S::Reported => Some(from),
        (S::Registered | S::Dispatched | S::InProgress, A::Escalate | A::CallIn) => Some(from),
        (S::Registered | S::Dispatched | S::InProgress, A::Suspend) => Some(Position { suspended: true, ..from }),
        (_, A::RequestExtension) if working && !from.extension_pending => {
            Some(Position { extension_pending: true, ..from })
        }
        (_, A::ApproveExtension | A::DenyExtension) if from.extension_pending => {
            Some(Position { extension_pending: false, ..from })
        }
        // A pending extension request is settled before the work moves on.
        (_, _) if from.extension_pending => None,
        (S::Reported | S::Accepted | S::Registered, A::Merge) => at(S::Voided),
        (S::Reported, A::Accept) => at(S::Accepted),
        (S::Reported, A::Reject) => at(S::Rejected),
        (S::Accepted, A::Register) => at(S::Registered),
        (S::Accepted, A::Void) => at(S::Voided),
        (S::Registered, A::Dispatch) => at(S::Dispatched),
        (S::Registered, A::Void) => at(S::Voided),
        (S::Dispatched, A::Start) => at(S::InProgress),
        (S::Dispatched | S::InProgress, A::Transfer) => at(S::Dispatched),
        (S::Dispatched | S::InProgress, A::Return) => at(S::Registered),
        (S::InProgress, A::Dispose) => at(S::Disposed),
        (S::Disposed, A::SendToCheck) => at(S::Checking),
        (S::Checking, A::PassCheck) => at(S::Checked),
        (S::Checking, A::FailCheck) => at(S::InProgress),
        (S::Checked, A::Close) => at(S::Closed),
        (S::Closed, A::Reopen) => at(S::Registered),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(actions: &[Action]) -> Position {
        actions.iter().fold(Position::new(Stage::Reported), |p, a| apply(p, *a).unwrap_or_else(|e| panic!("{e}")))
    }

    #[test]
    fn the_main_path_with_rework_and_reopen() {
        use Action::*;
        let p = run(&[
            Accept, Register, Dispatch, Transfer, Start, RequestExtension, ApproveExtension, Dispose, SendToCheck,
            FailCheck, Dispose, SendToCheck, PassCheck, Close,
        ]);
        assert_eq!(p, Position::new(Stage::Closed));
        let p = apply(p, Reopen).unwrap();
        assert_eq!(p.stage, Stage::Registered);
    }

    #[test]
    fn illegal_transitions_list_what_is_allowed() {
        use Action::*;
        let disposed = run(&[Accept, Register, Dispatch, Start, Dispose]);
        let e = apply(disposed, Close).unwrap_err();
        assert_eq!(e.allowed, [SendToCheck, Supervise, Urge]);
        assert_eq!(e.to_string(), "`close` is not allowed while the case is disposed; allowed: send-to-check, supervise, urge");
        let voided = run(&[Accept, Void]);
        let e = apply(voided, Dispatch).unwrap_err();
        assert!(e.allowed.is_empty());
        assert!(e.to_string().ends_with("allowed: nothing"), "{e}");
    }

    #[test]
    fn suspension_freezes_the_case_and_extensions_are_settled_first() {
        use Action::*;
        let working = run(&[Accept, Register, Dispatch, Start]);
        let suspended = apply(working, Suspend).unwrap();
        assert_eq!(allowed(suspended), [Resume, Supervise, Urge]);
        assert!(apply(suspended, Dispose).is_err());
        assert_eq!(apply(suspended, Resume).unwrap(), working);
        let pending = apply(working, RequestExtension).unwrap();
        assert!(apply(pending, RequestExtension).is_err());
        let e = apply(pending, Dispose).unwrap_err();
        assert!(e.to_string().contains("in-progress (extension requested)"), "{e}");
        assert_eq!(apply(pending, DenyExtension).unwrap(), working);
    }

    #[test]
    fn every_action_has_roles_and_names_round_trip() {
        for a in Action::ALL {
            assert!(!a.roles().is_empty(), "{a}");
            assert_eq!(Action::parse(a.name()), Some(a));
        }
        for s in Stage::ALL {
            assert_eq!(Stage::parse(s.name()), Some(s));
        }
        // Every stage but the terminal ones can be left somehow.
        for s in Stage::ALL {
            let can_leave = allowed(Position::new(s)).iter().any(|a| apply(Position::new(s), *a).unwrap().stage != s);
            assert_eq!(can_leave, !matches!(s, Stage::Rejected | Stage::Voided), "{s}");
        }
    }
}
