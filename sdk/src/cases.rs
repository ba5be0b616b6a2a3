//! Cases (案件): open them, annotate them, raise warnings.
//!
//! Each function needs its word in the `[grants] cases` list: `open`, `note`,
//! `evidence` or `warn`.

use crate::sys;
use crate::{CaseDraft, Error, Warning};

/// Opens a case; returns its id.
pub fn open_case(draft: &CaseDraft) -> Result<String, Error> {
    sys::cases::open_case(draft)
}

/// Adds a note to a case.
pub fn add_note(case_id: &str, text: &str) -> Result<(), Error> {
    sys::cases::add_note(case_id, text)
}

/// Attaches a blob, named by its sha256 digest, to a case as evidence.
pub fn add_evidence(case_id: &str, digest: &str) -> Result<(), Error> {
    sys::cases::add_evidence(case_id, digest)
}

/// Raises a warning outside a model run; returns its id.
pub fn raise_warning(warning: &Warning) -> Result<String, Error> {
    sys::cases::raise_warning(warning)
}
