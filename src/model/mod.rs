//! The model room: value types every stage shares (export, incident, facts, findings, ledger
//! records, the retry token). No SDK types and no I/O; it imports nothing from the rooms above.

mod export;
mod facts;
mod finding;
mod incident;
mod ledger;
mod token;

pub use export::*;
pub use facts::*;
pub use finding::*;
pub use incident::*;
pub use ledger::*;
pub use token::*;
