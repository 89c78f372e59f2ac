//! fiaas-deploy-daemon as a library: the pieces the binary wires together, usable by other tools
//! that want to embed fiaas' deploy loop.

pub mod health;
pub mod hook;
pub mod logging;
pub mod metrics;
pub mod usage;
pub mod web;
