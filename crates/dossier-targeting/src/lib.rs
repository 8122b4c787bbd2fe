//! Targeting: what a request means in terms of the directory. Both rules
//! are shared by more than one worker, so they live in neither.
//!
//! * [`resolve`]: which company a target account means, and how people can
//!   be constrained to it (search and research workers).
//! * [`matching`]: which directory person a person record means, and their
//!   current company (enrichment and research workers).
//!
//! Both only ask a [`dossier_directory::ProviderSet`]; where the data comes
//! from is `dossier-directory`'s business.

#![forbid(unsafe_code)]

pub mod matching;
pub mod resolve;
