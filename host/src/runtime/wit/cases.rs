//! `yiwang:gov/cases` for plugins.

use std::sync::Arc;

use yiwang_registry::manifest::CaseOp;
use yiwang_wit::Denial;

use crate::cases::suggest::NewSuggestion;
use crate::cases::engine::Channel;
use crate::cases::warnings::WarningChain;
use crate::cases::{CaseDraft, Cases, Warning};
use crate::media::Media;
use crate::bus::GeoPoint;
use crate::runtime::bindings::yiwang::gov::cases::{CommandLevel, Host, RouteSuggestion};
use crate::runtime::bindings::yiwang::gov::types::{self as wit, Error};
use crate::runtime::Rated;
use crate::runtime::state::{Call, CallContext};

/// What `yiwang:gov/cases` reaches: the case service, and the media store
/// whose blobs a plugin names as evidence.
pub struct CasesView {
    pub cases: Arc<Cases>,
    pub media: Arc<Media>,
}

impl Call<'_, CasesView> {
    async fn check_case_op(&mut self, op: CaseOp, subject: &str) -> Result<(), Error> {
        self.ctx.authorize(self.ctx.grants().check_case_op(op, subject)).await
    }

    /// The chain of warning `id`, when the calling plugin raised it: the `warn`
    /// grant, then the chain's raiser. A warning of another plugin (or an
    /// imported CAP alert) is refused as `denied` and audited like any denial;
    /// an unknown id is `not-found`.
    async fn own_chain(&mut self, action: &str, id: &str) -> Result<WarningChain, Error> {
        let warn = self.ctx.grants().check_case_op(CaseOp::Warn, id);
        self.ctx.authorize(warn.map_err(|d| Denial { action: action.to_owned(), ..d })).await?;
        let found = self.view.cases.warning_chain(id).await;
        let chain = match found {
            Ok(Some(chain)) => chain,
            Ok(None) => return Err(Error::NotFound(format!("warning `{id}`"))),
            Err(e) => return Err(self.ctx.service_error(action, e)),
        };
        let principal = &self.ctx.plugin.principal;
        let decision = yiwang_wit::grants::check_warning_raiser(action, id, chain.root(), &chain.source, principal);
        self.ctx.authorize(decision).await?;
        Ok(chain)
    }
}

fn point(p: wit::GeoPoint) -> GeoPoint {
    GeoPoint { lat: p.lat, lon: p.lon }
}

fn channel(c: wit::SourceChannel) -> Channel {
    use wit::SourceChannel as C;
    match c {
        C::Hotline => Channel::Hotline,
        C::Snapshot => Channel::Snapshot,
        C::Patrol => Channel::Patrol,
        C::Department => Channel::Department,
        C::Warning => Channel::Warning,
        C::CapAlert => Channel::CapAlert,
    }
}

/// Convert a WIT warning for storage; also returns a representative location
/// (the first circle's centre or the first polygon point).
pub(crate) fn warning_from_wit(w: &wit::Warning) -> (Warning, Option<GeoPoint>) {
    use wit::{AreaShape, Certainty as C, Severity as S, Urgency as U, WarningCategory as K};
    let category = match w.category {
        K::Geo => "geo",
        K::Met => "met",
        K::Safety => "safety",
        K::Security => "security",
        K::Rescue => "rescue",
        K::Fire => "fire",
        K::Health => "health",
        K::Env => "env",
        K::Transport => "transport",
        K::Infra => "infra",
        K::Cbrne => "cbrne",
        K::Other => "other",
    };
    let urgency = match w.urgency {
        U::Immediate => "Immediate",
        U::Expected => "Expected",
        U::Future => "Future",
        U::Past => "Past",
        U::Unknown => "Unknown",
    };
    let severity = match w.severity {
        S::Extreme => "Extreme",
        S::Severe => "Severe",
        S::Moderate => "Moderate",
        S::Minor => "Minor",
        S::Unknown => "Unknown",
    };
    let certainty = match w.certainty {
        C::Observed => "Observed",
        C::Likely => "Likely",
        C::Possible => "Possible",
        C::Unlikely => "Unlikely",
        C::Unknown => "Unknown",
    };
    let mut location = None;
    let shapes: Vec<serde_json::Value> = w
        .area
        .shapes
        .iter()
        .map(|s| match s {
            AreaShape::Circle(c) => {
                location.get_or_insert(point(c.center));
                serde_json::json!({ "circle": { "lat": c.center.lat, "lon": c.center.lon, "radius_km": c.radius_km } })
            }
            AreaShape::Polygon(points) => {
                if let Some(p) = points.first() {
                    location.get_or_insert(point(*p));
                }
                let ring: Vec<[f64; 2]> = points.iter().map(|p| [p.lat, p.lon]).collect();
                serde_json::json!({ "polygon": ring })
            }
        })
        .collect();
    let warning = Warning {
        category: category.to_owned(),
        event: w.event.clone(),
        urgency: urgency.to_owned(),
        severity: severity.to_owned(),
        certainty: certainty.to_owned(),
        area: serde_json::json!({ "description": w.area.description, "shapes": shapes }),
        headline: w.headline.clone(),
        description: w.description.clone(),
        instruction: w.instruction.clone(),
        parameters: w.parameters.clone(),
    };
    (warning, location)
}

/// Check a warning's area: valid coordinates, positive radii, closed rings.
pub(crate) fn validate_area(w: &wit::Warning) -> Result<(), String> {
    if w.area.shapes.is_empty() {
        return Err("a warning's area needs at least one circle or polygon".into());
    }
    for s in &w.area.shapes {
        match s {
            wit::AreaShape::Circle(c) => {
                point(c.center).validate()?;
                if !(c.radius_km.is_finite() && c.radius_km > 0.0) {
                    return Err(format!("circle radius {} km must be positive", c.radius_km));
                }
            }
            wit::AreaShape::Polygon(ps) => {
                if ps.len() < 4 || ps.first().map(|p| (p.lat, p.lon)) != ps.last().map(|p| (p.lat, p.lon)) {
                    return Err("a polygon needs at least 4 points and must be closed".into());
                }
                for p in ps {
                    point(*p).validate()?;
                }
            }
        }
    }
    Ok(())
}

impl Host for Call<'_, CasesView> {
    async fn open_case(&mut self, draft: wit::CaseDraft) -> Result<String, Error> {
        self.check_case_op(CaseOp::Open, &draft.category_code).await?;
        self.ctx.rate_limit(Rated::Cases, "cases.open-case", &draft.category_code).await?;
        let draft = CaseDraft {
            category_code: draft.category_code,
            title: draft.title,
            description: draft.description,
            location: draft.location.map(point),
            channel: channel(draft.channel),
            evidence: draft.evidence,
        };
        let principal = self.ctx.plugin.principal.clone();
        let result = self.view.cases.open(&draft, &principal).await;
        match result {
            Ok(id) => {
                self.ctx.audit_ok("cases.open-case", &id).await;
                Ok(id)
            }
            Err(e) => Err(self.ctx.service_error("cases.open-case", e)),
        }
    }

    async fn add_note(&mut self, case_id: String, text: String) -> Result<(), Error> {
        self.check_case_op(CaseOp::Note, &case_id).await?;
        let principal = self.ctx.plugin.principal.clone();
        let r = self.view.cases.add_note(&case_id, &principal, "note", &text).await;
        r.map_err(|e| self.ctx.service_error("cases.add-note", e))
    }

    async fn add_evidence(&mut self, case_id: String, digest: String) -> Result<(), Error> {
        self.check_case_op(CaseOp::Evidence, &case_id).await?;
        // Evidence is one thing whoever adds it: a link to a stored media blob
        // (`case_evidence`), as over HTTP.
        let principal = self.ctx.plugin.principal.clone();
        let r = self.view.media.add_evidence(&case_id, &digest, &principal, "").await;
        r.map(|_| ()).map_err(|e| self.ctx.service_error("cases.add-evidence", e.into()))
    }

    async fn raise_warning(&mut self, warning: wit::Warning) -> Result<String, Error> {
        self.check_case_op(CaseOp::Warn, &warning.event).await?;
        store_warning(self.ctx, self.view, &warning).await
    }

    async fn update_warning(&mut self, id: String, warning: wit::Warning) -> Result<String, Error> {
        const ACTION: &str = "cases.update-warning";
        let chain = self.own_chain(ACTION, &id).await?;
        self.ctx.rate_limit(Rated::Warnings, ACTION, &id).await?;
        validate_area(&warning).map_err(Error::Invalid)?;
        let (w, location) = warning_from_wit(&warning);
        let principal = self.ctx.plugin.principal.clone();
        let r = self.view.cases.update_warning(&chain, &principal, &w, location).await;
        r.map_err(|e| self.ctx.service_error(ACTION, e))
    }

    async fn cancel_warning(&mut self, id: String, reason: String) -> Result<String, Error> {
        const ACTION: &str = "cases.cancel-warning";
        let chain = self.own_chain(ACTION, &id).await?;
        self.ctx.rate_limit(Rated::Warnings, ACTION, &id).await?;
        let principal = self.ctx.plugin.principal.clone();
        let r = self.view.cases.cancel_warning(&chain, &principal, &reason).await;
        match r {
            Ok(cancel) => {
                self.ctx.audit_ok(ACTION, chain.root()).await;
                Ok(cancel)
            }
            Err(e) => Err(self.ctx.service_error(ACTION, e)),
        }
    }

    async fn suggest_route(&mut self, case_id: String, suggestion: RouteSuggestion) -> Result<String, Error> {
        self.check_case_op(CaseOp::Route, &case_id).await?;
        let level = match suggestion.level {
            CommandLevel::Community => "community",
            CommandLevel::Street => "street",
            CommandLevel::District => "district",
            CommandLevel::City => "city",
        };
        let new = NewSuggestion {
            department: suggestion.department,
            level: level.to_owned(),
            score: suggestion.score,
            reason: suggestion.reason,
        };
        let plugin = self.ctx.plugin.manifest.name.clone();
        let result = self.view.cases.suggest_route(&case_id, &plugin, &new).await;
        match result {
            Ok(stored) => {
                self.ctx.audit_ok("cases.suggest-route", &case_id).await;
                Ok(stored.id)
            }
            Err(e) => Err(self.ctx.service_error("cases.suggest-route", e)),
        }
    }
}

/// Validate, store and publish one warning from the plugin of `ctx`: what
/// `raise-warning` does, and what the runtime does with a model's outcome.
pub(crate) async fn store_warning(ctx: &mut CallContext, view: &CasesView, warning: &wit::Warning) -> Result<String, Error> {
    ctx.rate_limit(Rated::Warnings, "cases.raise-warning", &warning.event).await?;
    validate_area(warning).map_err(Error::Invalid)?;
    let (w, location) = warning_from_wit(warning);
    let principal = ctx.plugin.principal.clone();
    let r = view.cases.raise_warning(&principal, &w, location).await;
    r.map_err(|e| ctx.service_error("cases.raise-warning", e))
}
