//! The `Plugin` trait and the glue that exports it as a component.

use std::marker::PhantomData;

use crate::__private::bindings::exports::yiwang::gov::{handler, lifecycle, model};
use crate::{Error, Event, Warning};

/// A Yiwang plugin. Implement the methods the plugin needs and export the type with
/// [`export_plugin!`](crate::export_plugin).
///
/// The methods are associated functions: the host may create and drop instances at any
/// time, so state that must outlive one call belongs in the data foundation
/// ([`data::put`](crate::data::put)), not in the plugin.
///
/// An `Err` is a handled failure: the host logs it and keeps the instance. A panic traps
/// the instance, which is then thrown away.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a Yiwang plugin",
    label = "`export_plugin!` needs a type that implements `yiwang_sdk::Plugin`",
    note = "add `impl yiwang_sdk::Plugin for {Self} {{}}` and override `handle` and/or `evaluate`"
)]
pub trait Plugin: 'static {
    /// Called once on each new instance before any event; an error refuses the load.
    fn init() -> Result<(), Error> {
        Ok(())
    }

    /// Handle one event from a subscribed topic (world `event-handler`).
    ///
    /// The default ignores the event.
    fn handle(event: Event) -> Result<(), Error> {
        let _ = event;
        Ok(())
    }

    /// Evaluate one event and return the warnings it raises (world `warning-model`).
    ///
    /// The default raises none.
    fn evaluate(event: Event) -> Result<Vec<Warning>, Error> {
        let _ = event;
        Ok(Vec::new())
    }
}

/// A plugin of world `event-handler`: it reacts to events. Export it with
/// [`export_handler!`](crate::export_handler).
///
/// ```
/// use yiwang_sdk::prelude::*;
///
/// struct Notes;
/// impl EventHandler for Notes {
///     fn handle(event: Event) -> Result<(), Error> {
///         info!("seen {}", event.id);
///         Ok(())
///     }
/// }
/// export_handler!(Notes);
/// ```
pub trait EventHandler: 'static {
    /// Called once on each new instance before any event; an error refuses the load.
    fn init() -> Result<(), Error> {
        Ok(())
    }

    /// Handle one event from a subscribed topic. The default ignores it.
    fn handle(event: Event) -> Result<(), Error> {
        let _ = event;
        Ok(())
    }
}

/// A plugin of world `warning-model`: it turns events into warnings. Export it
/// with [`export_model!`](crate::export_model).
///
/// ```
/// use yiwang_sdk::prelude::*;
///
/// struct Quiet;
/// impl WarningModel for Quiet {
///     fn evaluate(_event: Event) -> Result<Vec<Warning>, Error> {
///         Ok(vec![])
///     }
/// }
/// export_model!(Quiet);
/// ```
pub trait WarningModel: 'static {
    /// Called once on each new instance before any event; an error refuses the load.
    fn init() -> Result<(), Error> {
        Ok(())
    }

    /// Evaluate one event and return the warnings it raises. The default raises none.
    fn evaluate(event: Event) -> Result<Vec<Warning>, Error> {
        let _ = event;
        Ok(Vec::new())
    }
}

/// An [`EventHandler`] seen as a [`Plugin`] (what [`export_handler!`](crate::export_handler) exports).
pub struct AsHandler<H>(PhantomData<H>);

impl<H: EventHandler> Plugin for AsHandler<H> {
    fn init() -> Result<(), Error> {
        H::init()
    }

    fn handle(event: Event) -> Result<(), Error> {
        H::handle(event)
    }
}

/// A [`WarningModel`] seen as a [`Plugin`] (what [`export_model!`](crate::export_model) exports).
pub struct AsModel<M>(PhantomData<M>);

impl<M: WarningModel> Plugin for AsModel<M> {
    fn init() -> Result<(), Error> {
        M::init()
    }

    fn evaluate(event: Event) -> Result<Vec<Warning>, Error> {
        M::evaluate(event)
    }
}

/// Exports an [`EventHandler`] (world `event-handler`).
#[macro_export]
macro_rules! export_handler {
    ($handler:ty $(,)?) => {
        $crate::export_plugin!($crate::AsHandler<$handler>);
    };
}

/// Exports a [`WarningModel`] (world `warning-model`).
#[macro_export]
macro_rules! export_model {
    ($model:ty $(,)?) => {
        $crate::export_plugin!($crate::AsModel<$model>);
    };
}

/// Bridges a [`Plugin`] to the three generated `Guest` traits.
#[doc(hidden)]
pub struct Adapter<P>(PhantomData<P>);

impl<P: Plugin> lifecycle::Guest for Adapter<P> {
    fn init() -> Result<(), Error> {
        P::init()
    }
}

impl<P: Plugin> handler::Guest for Adapter<P> {
    fn handle(event: Event) -> Result<(), Error> {
        P::handle(event)
    }
}

impl<P: Plugin> model::Guest for Adapter<P> {
    fn evaluate(event: Event) -> Result<Vec<Warning>, Error> {
        P::evaluate(event)
    }
}

/// Fails to compile, with the message of [`Plugin`]'s diagnostic, when `P` is no plugin.
#[doc(hidden)]
pub const fn assert_plugin<P: Plugin>() {}

/// Exports a [`Plugin`] as the component's `lifecycle`, `handler` and `model`.
///
/// Use it once per plugin crate, at the crate's top level:
///
/// ```
/// use yiwang_sdk::prelude::*;
///
/// struct Quiet;
/// impl Plugin for Quiet {}
///
/// export_plugin!(Quiet);
/// ```
///
/// Compiled natively (for unit tests) it only checks that the type is a plugin: there
/// is no component to export to.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty $(,)?) => {
        const _: () = $crate::__private::assert_plugin::<$plugin>();

        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        const _: () = {
            type __YiwangExport = $crate::__private::Adapter<$plugin>;
            $crate::__private::bindings::__export_department_plugin!(
                __YiwangExport with_types_in $crate::__private::bindings
            );
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Defaults;
    impl Plugin for Defaults {}

    fn event() -> Event {
        Event {
            id: "e1".into(),
            topic: "test.in".into(),
            source: "user:1".into(),
            time: 0,
            location: None,
            payload: "{}".into(),
        }
    }

    #[test]
    fn defaults_accept_and_raise_nothing() {
        assert_eq!(<Adapter<Defaults> as lifecycle::Guest>::init(), Ok(()));
        assert_eq!(
            <Adapter<Defaults> as handler::Guest>::handle(event()),
            Ok(())
        );
        assert_eq!(
            <Adapter<Defaults> as model::Guest>::evaluate(event()),
            Ok(Vec::new())
        );
    }
}
