//! The bodies of `citadel` subcommands: thin glue between arguments, library crates and stdout.

pub mod agent;
pub mod authz;
pub mod ca;
pub mod config;
pub mod proxy;
