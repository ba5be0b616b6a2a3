//! The raw host imports, one module per WIT interface.
//!
//! Inside a component they are the generated WIT imports. Compiled natively there is
//! no host: the stubs below stand in with the same signatures, so that plugins build
//! and their unit tests run. A mock host for native tests replaces these stubs.

#[cfg(target_arch = "wasm32")]
pub(crate) use crate::__private::bindings::yiwang::gov::{
    bus, cases, config, data, identity, logging, messaging,
};

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native::{bus, cases, config, data, identity, logging, messaging};

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use crate::Error;

    fn no_host() -> Error {
        Error::Unavailable("no host: running natively".into())
    }

    pub(crate) mod identity {
        use super::no_host;
        use crate::Error;
        use crate::identity::{Department, Principal, User};

        pub(crate) fn whoami() -> Principal {
            Principal {
                id: "plugin:native".into(),
                department: String::new(),
                version: String::new(),
            }
        }

        pub(crate) fn get_department(_code: &str) -> Result<Department, Error> {
            Err(no_host())
        }

        pub(crate) fn users_with_role(_org_unit: &str, _role: &str) -> Result<Vec<User>, Error> {
            Err(no_host())
        }
    }

    pub(crate) mod bus {
        use super::no_host;
        use crate::{Error, GeoPoint};

        pub(crate) fn publish(
            _topic: &str,
            _payload: &str,
            _location: Option<GeoPoint>,
        ) -> Result<String, Error> {
            Err(no_host())
        }
    }

    pub(crate) mod data {
        use super::no_host;
        use crate::data::{FieldFilter, Reading, Record};
        use crate::{Error, Timestamp};

        pub(crate) fn get(_dataset: &str, _key: &str) -> Result<Option<Record>, Error> {
            Err(no_host())
        }

        pub(crate) fn query(
            _dataset: &str,
            _filters: &[FieldFilter],
            _offset: u32,
            _limit: u32,
        ) -> Result<Vec<Record>, Error> {
            Err(no_host())
        }

        pub(crate) fn put(_dataset: &str, _key: &str, _value: &str) -> Result<(), Error> {
            Err(no_host())
        }

        pub(crate) fn readings(
            _sensor: &str,
            _from: Timestamp,
            _to: Timestamp,
        ) -> Result<Vec<Reading>, Error> {
            Err(no_host())
        }
    }

    pub(crate) mod cases {
        use super::no_host;
        use crate::cases::RouteSuggestion;
        use crate::{CaseDraft, Error, Warning};

        pub(crate) fn open_case(_draft: &CaseDraft) -> Result<String, Error> {
            Err(no_host())
        }

        pub(crate) fn add_note(_case_id: &str, _text: &str) -> Result<(), Error> {
            Err(no_host())
        }

        pub(crate) fn add_evidence(_case_id: &str, _digest: &str) -> Result<(), Error> {
            Err(no_host())
        }

        pub(crate) fn raise_warning(_warning: &Warning) -> Result<String, Error> {
            Err(no_host())
        }

        pub(crate) fn suggest_route(
            _case_id: &str,
            _suggestion: &RouteSuggestion,
        ) -> Result<String, Error> {
            Err(no_host())
        }
    }

    pub(crate) mod messaging {
        use super::no_host;
        use crate::Error;
        use crate::messaging::Recipient;

        pub(crate) fn send(_to: &Recipient, _subject: &str, _body: &str) -> Result<String, Error> {
            Err(no_host())
        }
    }

    pub(crate) mod logging {
        pub(crate) use crate::__private::bindings::yiwang::gov::logging::Level;

        /// Natively, log lines go to standard error, where `cargo test` shows them for
        /// failing tests.
        pub(crate) fn log(level: Level, message: &str) {
            eprintln!("[{level:?}] {message}");
        }
    }

    pub(crate) mod config {
        pub(crate) fn get(_key: &str) -> Option<String> {
            None
        }

        pub(crate) fn all() -> Vec<(String, String)> {
            Vec::new()
        }
    }
}
