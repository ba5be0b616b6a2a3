//! Logging into the host's log, tagged with the plugin's name.
//!
//! The macros [`info!`](crate::info) and friends format like `format!`. Logging is always
//! allowed; the host drops and counts lines beyond its rate limit.

pub use crate::__private::bindings::yiwang::gov::logging::Level;
use crate::sys;

/// Writes one line at `level`.
pub fn log(level: Level, message: &str) {
    sys::logging::log(level, message);
}

/// Writes one line at level `trace`.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Writes one line at level `debug`.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes one line at level `info`.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes one line at level `warn`.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes one line at level `error`.
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Logs a formatted line at level `trace`: `trace!("value {v}")`.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at level `debug`: `debug!("value {v}")`.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at level `info`: `info!("value {v}")`.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at level `warn`: `warn!("value {v}")`.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at level `error`: `error!("value {v}")`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)+))
    };
}
