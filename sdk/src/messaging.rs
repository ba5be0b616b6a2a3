//! Messaging (消息): notifications to people.
//!
//! Each recipient must match the `[grants] message` list: `user:<id>`,
//! `role:<org-unit>/<role>`, `department:<code>` or `org-unit:<code>`.

pub use crate::__private::bindings::yiwang::gov::messaging::Recipient;
use crate::Error;
use crate::sys;

/// Sends a message; returns its id.
pub fn send(to: &Recipient, subject: &str, body: &str) -> Result<String, Error> {
    sys::messaging::send(to, subject, body)
}
