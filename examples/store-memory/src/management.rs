//! The `memory` management store: Zaqar's pools and flavors (what the
//! admin API's `/v2/pools` and `/v2/flavors` keep) in two ordered maps,
//! gone when the process ends.

use std::{
    collections::BTreeMap,
    sync::{Mutex, MutexGuard},
};

use plugin_api::{
    management::{FlavorRecord, ManagementStore, NameListQuery, PoolRecord},
    types::{ROption, RString, RVec},
    PluginContext, PluginResult,
};

#[derive(Default)]
struct Records {
    pools: BTreeMap<RString, PoolRecord>,
    // (project, name): flavors belong to a project.
    flavors: BTreeMap<(RString, RString), FlavorRecord>,
}

/// The `memory` management store.
#[derive(Default)]
pub struct MemoryManagement(Mutex<Records>);

impl MemoryManagement {
    /// The constructor behind the `memory` entry point (no options).
    pub async fn open(context: PluginContext) -> PluginResult<Self> {
        let super::NoOptions {} = context.config()?;
        Ok(Self::default())
    }

    fn records(&self) -> MutexGuard<'_, Records> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The names after the query's marker, in order, at most its limit.
fn page<'a, T: Clone + 'a>(
    items: impl Iterator<Item = (&'a RString, &'a T)>,
    query: &NameListQuery,
) -> RVec<T> {
    items
        .filter(|(name, _)| {
            query
                .marker
                .as_ref()
                .into_option()
                .is_none_or(|m| *name > m)
        })
        .take(query.limit as usize)
        .map(|(_, item)| item.clone())
        .collect()
}

impl ManagementStore for MemoryManagement {
    async fn pool_put(&self, pool: PoolRecord) -> PluginResult<bool> {
        Ok(self
            .records()
            .pools
            .insert(pool.name.clone(), pool)
            .is_none())
    }

    async fn pool_get(&self, name: RString) -> PluginResult<ROption<PoolRecord>> {
        Ok(self.records().pools.get(&name).cloned().into())
    }

    async fn pool_list(&self, query: NameListQuery) -> PluginResult<RVec<PoolRecord>> {
        Ok(page(self.records().pools.iter(), &query))
    }

    async fn pool_delete(&self, name: RString) -> PluginResult<()> {
        self.records().pools.remove(&name);
        Ok(())
    }

    async fn flavor_put(&self, flavor: FlavorRecord) -> PluginResult<bool> {
        let key = (flavor.project.clone(), flavor.name.clone());
        Ok(self.records().flavors.insert(key, flavor).is_none())
    }

    async fn flavor_get(
        &self,
        project: RString,
        name: RString,
    ) -> PluginResult<ROption<FlavorRecord>> {
        Ok(self.records().flavors.get(&(project, name)).cloned().into())
    }

    async fn flavor_list(
        &self,
        project: RString,
        query: NameListQuery,
    ) -> PluginResult<RVec<FlavorRecord>> {
        let records = self.records();
        let of_project = records
            .flavors
            .iter()
            .filter(|((owner, _), _)| *owner == project)
            .map(|((_, name), flavor)| (name, flavor));
        Ok(page(of_project, &query))
    }

    async fn flavor_delete(&self, project: RString, name: RString) -> PluginResult<()> {
        self.records().flavors.remove(&(project, name));
        Ok(())
    }

    async fn is_alive(&self) -> PluginResult<bool> {
        Ok(true)
    }
}
