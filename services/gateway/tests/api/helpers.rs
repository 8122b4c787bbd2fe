//! The stack and request helpers are the shared test stack's.

pub(crate) use dossier_stack::*;
