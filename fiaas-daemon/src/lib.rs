//! fiaas-deploy-daemon as a library: the pieces the binary wires together, usable by other tools
//! that want to embed fiaas' deploy loop.

pub mod application;
pub mod controller;
pub mod deploy_error;
pub mod deployer;
pub mod fence;
pub mod health;
pub mod hook;
pub mod http;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod scheduler;
pub mod shards;
pub mod startup;
pub mod usage;
pub mod web;
