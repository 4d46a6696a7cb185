//! The pipeline (ARCHITECTURE.md): intake → evidence → diagnosis → plan → act → report.
//! No SDK or Lambda types here: the domain talks to AWS only through `ports`.
//!
//! Rooms, each importing only the rooms below it (tests/handler/layering.rs keeps this):
//! `access`, `sse_rules`, `key_patch`, `command` (rules the pure stages share) ←
//! `diagnosis` ← `plan` ← `report` ← `evidence`, `act` (the I/O stages) ← `app`, `sweep`.

pub mod access;
mod act;
mod app;
pub mod command;
pub mod diagnosis;
pub mod evidence;
mod follow;
pub mod key_patch;
mod org_sweep;
pub mod outcome;
pub mod plan;
pub mod report;
mod site;
pub mod sse_rules;
mod started;
pub mod sweep;

pub use app::App;
