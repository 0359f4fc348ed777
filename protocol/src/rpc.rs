//! `rpc.discover`: the OpenRPC description of this contract.

use crate::{Method, NoParams};

/// `rpc.discover`, the method name OpenRPC reserves for service discovery.
pub enum Discover {}

impl Method for Discover {
    const NAME: &'static str = "rpc.discover";
    const SUMMARY: &'static str = "Return the OpenRPC document describing every method";
    const MUTATING: bool = false;
    const FOR_AGENTS: bool = true;
    type Params = NoParams;
    type Output = serde_json::Value;
}
