//! The raw host imports, one module per WIT interface.
//!
//! Inside a component they are the generated WIT imports. Compiled natively there is
//! no Yiwang host: the functions below stand in with the same signatures, so that
//! plugins build and their unit tests run. Each one asks the [`mock`](crate::mock) host
//! installed on the current thread; with none installed, the host services answer
//! [`Error::Unavailable`](crate::Error::Unavailable), log lines go to standard error and
//! the configuration is empty.

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
        use crate::mock;

        pub(crate) fn whoami() -> Principal {
            mock::whoami().unwrap_or_else(|| Principal {
                id: "plugin:native".into(),
                department: String::new(),
                version: String::new(),
            })
        }

        pub(crate) fn get_department(code: &str) -> Result<Department, Error> {
            mock::get_department(code).unwrap_or_else(|| Err(no_host()))
        }

        pub(crate) fn users_with_role(org_unit: &str, role: &str) -> Result<Vec<User>, Error> {
            mock::users_with_role(org_unit, role).unwrap_or_else(|| Err(no_host()))
        }
    }

    pub(crate) mod bus {
        use super::no_host;
        use crate::mock;
        use crate::{Error, GeoPoint};

        pub(crate) fn publish(
            topic: &str,
            payload: &str,
            location: Option<GeoPoint>,
        ) -> Result<String, Error> {
            mock::publish(topic, payload, location).unwrap_or_else(|| Err(no_host()))
        }
    }

    pub(crate) mod data {
        use super::no_host;
        use crate::data::{FieldFilter, Reading, Record};
        use crate::mock;
        use crate::{Error, Timestamp};

        pub(crate) fn get(dataset: &str, key: &str) -> Result<Option<Record>, Error> {
            mock::data_get(dataset, key).unwrap_or_else(|| Err(no_host()))
        }

        pub(crate) fn query(
            dataset: &str,
            filters: &[FieldFilter],
            offset: u32,
            limit: u32,
        ) -> Result<Vec<Record>, Error> {
            mock::data_query(dataset, filters, offset, limit).unwrap_or_else(|| Err(no_host()))
        }

        pub(crate) fn put(dataset: &str, key: &str, value: &str) -> Result<(), Error> {
            mock::data_put(dataset, key, value).unwrap_or_else(|| Err(no_host()))
        }

        pub(crate) fn readings(
            sensor: &str,
            from: Timestamp,
            to: Timestamp,
        ) -> Result<Vec<Reading>, Error> {
            mock::readings(sensor, from, to).unwrap_or_else(|| Err(no_host()))
        }
    }

    pub(crate) mod cases {
        use super::no_host;
        use crate::cases::RouteSuggestion;
        use crate::mock;
        use crate::{CaseDraft, Error, Warning};

        pub(crate) fn open_case(draft: &CaseDraft) -> Result<String, Error> {
            mock::open_case(draft).unwrap_or_else(|| Err(no_host()))
        }

        pub(crate) fn add_note(case_id: &str, text: &str) -> Result<(), Error> {
            mock::add_note(case_id, text).unwrap_or_else(|| Err(no_host()))
        }

        pub(crate) fn add_evidence(case_id: &str, digest: &str) -> Result<(), Error> {
            mock::add_evidence(case_id, digest).unwrap_or_else(|| Err(no_host()))
        }

        pub(crate) fn raise_warning(warning: &Warning) -> Result<String, Error> {
            mock::raise_warning(warning).unwrap_or_else(|| Err(no_host()))
        }

        pub(crate) fn update_warning(id: &str, warning: &Warning) -> Result<String, Error> {
            mock::update_warning(id, warning).unwrap_or_else(|| Err(no_host()))
        }

        pub(crate) fn cancel_warning(id: &str, reason: &str) -> Result<String, Error> {
            mock::cancel_warning(id, reason).unwrap_or_else(|| Err(no_host()))
        }

        pub(crate) fn suggest_route(
            case_id: &str,
            suggestion: &RouteSuggestion,
        ) -> Result<String, Error> {
            mock::suggest_route(case_id, suggestion).unwrap_or_else(|| Err(no_host()))
        }
    }

    pub(crate) mod messaging {
        use super::no_host;
        use crate::Error;
        use crate::messaging::Recipient;
        use crate::mock;

        pub(crate) fn send(to: &Recipient, subject: &str, body: &str) -> Result<String, Error> {
            mock::send(to, subject, body).unwrap_or_else(|| Err(no_host()))
        }
    }

    pub(crate) mod logging {
        pub(crate) use crate::__private::bindings::yiwang::gov::logging::Level;
        use crate::mock;

        /// Natively, log lines go to standard error, where `cargo test` shows them for
        /// failing tests; an installed mock host also records them.
        pub(crate) fn log(level: Level, message: &str) {
            mock::log(level, message);
            eprintln!("[{level:?}] {message}");
        }
    }

    pub(crate) mod config {
        use crate::mock;

        pub(crate) fn get(key: &str) -> Option<String> {
            mock::config_get(key).flatten()
        }

        pub(crate) fn all() -> Vec<(String, String)> {
            mock::config_all().unwrap_or_default()
        }
    }
}
