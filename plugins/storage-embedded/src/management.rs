//! [`EmbeddedManagementStore`]: pools and flavors, in the same database as
//! the messages.

use std::sync::Arc;

use plugin_api::{
    management::{FlavorRecord, ManagementStore, NameListQuery, PoolRecord},
    types::{ROption, RString, RVec},
    PluginResult,
};

use crate::{
    codec::{FlavorValue, PoolValue},
    engine::Engine,
    schema,
};

/// The embedded management store.
pub struct EmbeddedManagementStore {
    engine: Arc<Engine>,
}

impl EmbeddedManagementStore {
    pub(crate) fn new(engine: Arc<Engine>) -> Self {
        Self { engine }
    }
}

impl std::fmt::Debug for EmbeddedManagementStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedManagementStore")
            .field("dir", &self.engine.dir())
            .finish()
    }
}

fn pool_record(name: &str, v: PoolValue) -> PoolRecord {
    PoolRecord {
        name: name.into(),
        uri: v.uri.into(),
        weight: v.weight,
        flavor: v.flavor.map(RString::from).into(),
        options: v.options.into(),
    }
}

fn flavor_record(project: &str, name: &str, v: FlavorValue) -> FlavorRecord {
    FlavorRecord {
        project: project.into(),
        name: name.into(),
        pool_list: v.pool_list.into_iter().map(RString::from).collect(),
        capabilities: v.capabilities.into(),
    }
}

impl ManagementStore for EmbeddedManagementStore {
    async fn pool_put(&self, pool: PoolRecord) -> PluginResult<bool> {
        self.engine
            .write(move |t| {
                let value = PoolValue {
                    uri: pool.uri.to_string(),
                    weight: pool.weight,
                    flavor: pool.flavor.as_ref().map(|f| f.to_string()).into_option(),
                    options: pool.options.to_vec(),
                };
                Ok(t.pools
                    .insert(pool.name.as_str(), value.encode().as_slice())?
                    .is_none())
            })
            .await
    }

    async fn pool_get(&self, name: RString) -> PluginResult<ROption<PoolRecord>> {
        self.engine
            .read(|txn| {
                let pools = txn.open_table(schema::POOLS)?;
                Ok(match pools.get(name.as_str())? {
                    Some(v) => ROption::RSome(pool_record(&name, PoolValue::decode(v.value())?)),
                    None => ROption::RNone,
                })
            })
            .await
    }

    async fn pool_list(&self, query: NameListQuery) -> PluginResult<RVec<PoolRecord>> {
        self.engine
            .read(|txn| {
                let pools = txn.open_table(schema::POOLS)?;
                let marker = query.marker.as_ref().map(|m| m.as_str()).unwrap_or("");
                let mut out = RVec::new();
                if query.limit == 0 {
                    return Ok(out);
                }
                for entry in pools.range(marker..)? {
                    let (k, v) = entry?;
                    let name = k.value();
                    if name == marker {
                        continue;
                    }
                    out.push(pool_record(name, PoolValue::decode(v.value())?));
                    if out.len() >= query.limit as usize {
                        break;
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn pool_delete(&self, name: RString) -> PluginResult<()> {
        self.engine
            .write(move |t| {
                t.pools.remove(name.as_str())?;
                Ok(())
            })
            .await
    }

    async fn flavor_put(&self, flavor: FlavorRecord) -> PluginResult<bool> {
        self.engine
            .write(move |t| {
                let value = FlavorValue {
                    pool_list: flavor.pool_list.iter().map(|p| p.to_string()).collect(),
                    capabilities: flavor.capabilities.to_vec(),
                };
                let key = (flavor.project.as_str(), flavor.name.as_str());
                Ok(t.flavors.insert(key, value.encode().as_slice())?.is_none())
            })
            .await
    }

    async fn flavor_get(
        &self,
        project: RString,
        name: RString,
    ) -> PluginResult<ROption<FlavorRecord>> {
        self.engine
            .read(|txn| {
                let flavors = txn.open_table(schema::FLAVORS)?;
                Ok(match flavors.get((project.as_str(), name.as_str()))? {
                    Some(v) => ROption::RSome(flavor_record(
                        &project,
                        &name,
                        FlavorValue::decode(v.value())?,
                    )),
                    None => ROption::RNone,
                })
            })
            .await
    }

    async fn flavor_list(
        &self,
        project: RString,
        query: NameListQuery,
    ) -> PluginResult<RVec<FlavorRecord>> {
        self.engine
            .read(|txn| {
                let flavors = txn.open_table(schema::FLAVORS)?;
                let marker = query.marker.as_ref().map(|m| m.as_str()).unwrap_or("");
                let mut out = RVec::new();
                if query.limit == 0 {
                    return Ok(out);
                }
                for entry in flavors.range((project.as_str(), marker)..)? {
                    let (k, v) = entry?;
                    let (p, name) = k.value();
                    if p != project.as_str() {
                        break;
                    }
                    if name == marker {
                        continue;
                    }
                    out.push(flavor_record(p, name, FlavorValue::decode(v.value())?));
                    if out.len() >= query.limit as usize {
                        break;
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn flavor_delete(&self, project: RString, name: RString) -> PluginResult<()> {
        self.engine
            .write(move |t| {
                t.flavors.remove((project.as_str(), name.as_str()))?;
                Ok(())
            })
            .await
    }

    async fn is_alive(&self) -> PluginResult<bool> {
        Ok(self.engine.is_alive())
    }
}
