//! The management store contract (`zaqar.storage.management`): the pools and
//! flavors that shard queues over message stores.

use abi_stable::{
    std_types::{ROption, RString, RVec},
    StableAbi,
};

use crate::macros::plugin_trait;

/// A pool: one message store that queues can be placed on.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct PoolRecord {
    /// The pool name (unique).
    pub name: RString,
    /// Where its message store lives.
    pub uri: RString,
    /// Its relative share of new queues.
    pub weight: u32,
    /// The flavor it belongs to, if any.
    pub flavor: ROption<RString>,
    /// Store options, a JSON object.
    pub options: RVec<u8>,
}

/// A flavor: a named set of pools a queue can ask for.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct FlavorRecord {
    /// The project that owns the flavor.
    pub project: RString,
    /// The flavor name (unique within the project).
    pub name: RString,
    /// The pools in the flavor.
    pub pool_list: RVec<RString>,
    /// The capabilities, a JSON array of names.
    pub capabilities: RVec<u8>,
}

/// A page of names.
#[repr(C)]
#[derive(StableAbi, Clone, Debug, PartialEq, Eq)]
pub struct NameListQuery {
    /// Only names strictly greater (byte order) than this.
    pub marker: ROption<RString>,
    /// At most this many, in ascending order.
    pub limit: u32,
}

plugin_trait! {
    /// A management store: implement this for a `zaqar.storage.management`
    /// plugin. Missing records are `RNone`, never errors; deletes of missing
    /// records succeed.
    native ManagementStore;
    abi ManagementStoreAbi, object ManagementStoreAbi_TO, boxed ManagementStoreBox, adapter ManagementStoreAdapter, wrap wrap_management_store;
    methods {
        /// Creates or replaces a pool. Returns true if it was created.
        fn pool_put(&self, pool: PoolRecord) -> bool;
        /// One pool.
        fn pool_get(&self, name: RString) -> ROption<PoolRecord>;
        /// Pools by name.
        fn pool_list(&self, query: NameListQuery) -> RVec<PoolRecord>;
        /// Deletes a pool.
        fn pool_delete(&self, name: RString) -> ();
        /// Creates or replaces a flavor. Returns true if it was created.
        fn flavor_put(&self, flavor: FlavorRecord) -> bool;
        /// One flavor of a project.
        fn flavor_get(&self, project: RString, name: RString) -> ROption<FlavorRecord>;
        /// A project's flavors by name.
        fn flavor_list(&self, project: RString, query: NameListQuery) -> RVec<FlavorRecord>;
        /// Deletes a flavor.
        fn flavor_delete(&self, project: RString, name: RString) -> ();
    }
    last {
        /// Whether the backend answers.
        fn is_alive(&self) -> bool;
    }
}
