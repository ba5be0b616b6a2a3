//! The plugin side of each capability: the WIT host traits, implemented on the
//! store data ([`PluginState`](super::state::PluginState)) with one file per
//! interface of `yiwang:gov`. Each checks the plugin's grants before it touches
//! anything, then calls the capability's service.

pub mod bus;
pub mod cases;
pub mod data;
pub mod identity;
pub mod messaging;

use std::sync::Arc;

use crate::audit::Audit;
use crate::clock::SharedClock;
use crate::services::Services;

/// What the plugin side of the host may reach, built once per runtime: one
/// narrow view per capability (each holding only what its interface's host
/// calls need), the clock and the audit log that every call's denials go to.
pub struct PluginHost {
    pub clock: SharedClock,
    pub audit: Arc<Audit>,
    pub identity: identity::IdentityView,
    pub bus: bus::BusView,
    pub data: data::DataView,
    pub cases: cases::CasesView,
    pub messaging: messaging::MessagingView,
}

impl PluginHost {
    pub fn new(services: &Services) -> Arc<Self> {
        Arc::new(PluginHost {
            clock: services.clock.clone(),
            audit: services.audit.clone(),
            identity: identity::IdentityView { identity: services.identity.clone() },
            bus: bus::BusView { bus: services.bus.clone(), clock: services.clock.clone() },
            data: data::DataView { data: services.data.clone() },
            cases: cases::CasesView { cases: services.cases.clone(), media: services.media.clone() },
            messaging: messaging::MessagingView {
                messaging: services.messaging.clone(),
                identity: services.identity.clone(),
            },
        })
    }
}

/// Link every `yiwang:gov` import: each capability's interface on its own
/// view ([`Call`](super::state::Call)), logging, config and the shared types on
/// the store data.
pub fn add_to_linker(linker: &mut wasmtime::component::Linker<super::state::PluginState>) -> anyhow::Result<()> {
    use super::bindings::yiwang::gov as g;
    use super::state::{Calls, PluginState};
    use wasmtime::component::HasSelf;
    g::types::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)?;
    g::logging::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)?;
    g::config::add_to_linker::<PluginState, HasSelf<PluginState>>(linker, |s| s)?;
    g::identity::add_to_linker::<PluginState, Calls<identity::IdentityView>>(linker, |s| s.view(|h| &h.identity))?;
    g::bus::add_to_linker::<PluginState, Calls<bus::BusView>>(linker, |s| s.view(|h| &h.bus))?;
    g::data::add_to_linker::<PluginState, Calls<data::DataView>>(linker, |s| s.view(|h| &h.data))?;
    g::cases::add_to_linker::<PluginState, Calls<cases::CasesView>>(linker, |s| s.view(|h| &h.cases))?;
    g::messaging::add_to_linker::<PluginState, Calls<messaging::MessagingView>>(linker, |s| s.view(|h| &h.messaging))?;
    Ok(())
}
