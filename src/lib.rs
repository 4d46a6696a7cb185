//! ddb-export-remediator: diagnoses failed DynamoDB exports to S3 and remediates them safely.

pub mod arn;
pub mod aws;
pub mod config;
pub mod domain;
pub mod error;
pub mod handler;
pub mod intake;
pub mod metrics;
pub mod model;
pub mod policy;
pub mod ports;

#[cfg(test)]
mod fakes;

pub use config::Config;
pub use domain::App;
pub use error::Error;
