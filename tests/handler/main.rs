//! Integration tests: the real adapters and handler against the patched moto emulator.
//! `make test` installs the emulator into .venv; each test binary starts its own server on a
//! free loopback port, and the server exits when this process does.

mod cli;
mod demo;
mod enforce;
mod event_rules;
mod faults;
mod first_day;
mod helpers;
mod key_policy;
mod layering;
mod ledger;
mod org_mode;
mod org_templates;
mod organization;
mod outcomes;
mod readme;
mod reliability;
mod runtime;
mod scenarios;
mod security;
mod template;
mod worlds;
