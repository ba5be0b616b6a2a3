//! Limits per client address and per device on the routes anyone may call
//! without an account, so that no one can try passwords, register residents
//! or file Open311 requests as fast as a script can: log-in attempts,
//! resident registrations and Open311 posts per client address, and Open311
//! posts per `device_id`. A request over a limit is answered `429` with
//! `Retry-After`, and recorded in the audit log (identical refusals once a
//! minute, counted). The client address is the TCP peer: behind a reverse
//! proxy every client shares the proxy's address.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{ApiError, AppState};

/// How many requests a minute, with a burst of the same size.
#[derive(Debug, Clone, Copy)]
pub struct ClientLimitSettings {
    pub logins_per_address: u32,
    pub registrations_per_address: u32,
    pub open311_posts_per_address: u32,
    pub open311_posts_per_device: u32,
}

impl Default for ClientLimitSettings {
    fn default() -> Self {
        ClientLimitSettings {
            logins_per_address: 30,
            registrations_per_address: 10,
            open311_posts_per_address: 60,
            open311_posts_per_device: 10,
        }
    }
}

/// The limiters, one keyed table each.
pub struct ClientLimits {
    logins: DefaultKeyedRateLimiter<IpAddr>,
    registrations: DefaultKeyedRateLimiter<IpAddr>,
    open311_posts: DefaultKeyedRateLimiter<IpAddr>,
    open311_devices: DefaultKeyedRateLimiter<String>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least one"))
}

/// Which limit a request is counted against.
#[derive(Debug, Clone, Copy)]
pub enum Limit {
    Login,
    Registration,
    Open311Post,
}

impl Limit {
    fn action(self) -> &'static str {
        match self {
            Limit::Login => "auth.login",
            Limit::Registration => "residents.register",
            Limit::Open311Post => "open311.post",
        }
    }
}

impl ClientLimits {
    pub fn new(s: ClientLimitSettings) -> Self {
        ClientLimits {
            logins: RateLimiter::keyed(per_minute(s.logins_per_address)),
            registrations: RateLimiter::keyed(per_minute(s.registrations_per_address)),
            open311_posts: RateLimiter::keyed(per_minute(s.open311_posts_per_address)),
            open311_devices: RateLimiter::keyed(per_minute(s.open311_posts_per_device)),
        }
    }

    /// Forget addresses and devices that are back to a full allowance.
    pub fn shrink(&self) {
        self.logins.retain_recent();
        self.registrations.retain_recent();
        self.open311_posts.retain_recent();
        self.open311_devices.retain_recent();
    }
}

fn refuse(wait: governor::NotUntil<governor::clock::QuantaInstant>, what: &str) -> ApiError {
    let secs = wait.wait_time_from(DefaultClock::default().now()).as_secs_f64().ceil() as u64;
    ApiError::TooManyRequests { message: format!("too many {what} from here; try again in {} s", secs.max(1)), retry_after_secs: secs.max(1) }
}

/// The client's address (the TCP peer), if the server knows it.
pub struct ClientAddress(pub Option<IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddress(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

/// Count one request against `limit` for the client (and, for Open311, its
/// device): `Err(429)` over the limit, recorded in the audit log.
pub async fn check(state: &AppState, address: Option<IpAddr>, limit: Limit, device: Option<&str>) -> Result<(), ApiError> {
    let l = &state.limits;
    let refused = match (limit, address) {
        (Limit::Login, Some(a)) => l.logins.check_key(&a).err().map(|w| refuse(w, "log-in attempts")),
        (Limit::Registration, Some(a)) => l.registrations.check_key(&a).err().map(|w| refuse(w, "registrations")),
        (Limit::Open311Post, Some(a)) => l.open311_posts.check_key(&a).err().map(|w| refuse(w, "requests")),
        (_, None) => None,
    };
    let refused = refused.or_else(|| match (limit, device) {
        (Limit::Open311Post, Some(d)) if !d.is_empty() => {
            l.open311_devices.check_key(&d.to_owned()).err().map(|w| refuse(w, "requests from this device"))
        }
        _ => None,
    });
    match refused {
        None => Ok(()),
        Some(e) => {
            let who = address.map_or_else(|| "anonymous".to_owned(), |a| format!("client:{a}"));
            state.services.audit.record_denial(&who, limit.action(), "rate limit", &e.to_string()).await;
            Err(e)
        }
    }
}
