//! [`PostgresManagementStore`]: pools and flavors, in tables of the same
//! database as the messages.

use plugin_api::{
    management::{FlavorRecord, ManagementStore, NameListQuery, PoolRecord},
    types::{ROption, RString, RVec},
    PluginResult,
};
use tokio_postgres::Row;

use crate::{
    db::{with_client, Database, OpResult},
    sql::{execute, query, query_opt},
};

/// The postgresql management store.
pub struct PostgresManagementStore {
    db: Database,
}

impl PostgresManagementStore {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }
}

impl std::fmt::Debug for PostgresManagementStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresManagementStore")
            .field("uri", &self.db.uri)
            .finish()
    }
}

fn pool_record(r: &Row) -> PoolRecord {
    PoolRecord {
        name: r.get::<_, String>(0).into(),
        uri: r.get::<_, String>(1).into(),
        weight: r.get::<_, i32>(2) as u32,
        flavor: r.get::<_, Option<String>>(3).map(RString::from).into(),
        options: r.get::<_, Vec<u8>>(4).into(),
    }
}

fn flavor_record(r: &Row) -> FlavorRecord {
    FlavorRecord {
        project: r.get::<_, String>(0).into(),
        name: r.get::<_, String>(1).into(),
        pool_list: r
            .get::<_, Vec<String>>(2)
            .into_iter()
            .map(RString::from)
            .collect(),
        capabilities: r.get::<_, Vec<u8>>(3).into(),
    }
}

/// `xmax = 0` holds for a row this statement inserted (not updated).
const INSERTED: &str = "RETURNING (xmax = 0)";

impl ManagementStore for PostgresManagementStore {
    async fn pool_put(&self, pool: PoolRecord) -> PluginResult<bool> {
        let flavor: Option<&str> = pool.flavor.as_ref().map(|f| f.as_str()).into_option();
        with_client!(self.db, |c| async {
            let row = query_opt(
                &c,
                &format!(
                    "INSERT INTO zaqar_pools (name, uri, weight, flavor, options) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO UPDATE SET \
                     uri = EXCLUDED.uri, weight = EXCLUDED.weight, flavor = EXCLUDED.flavor, \
                     options = EXCLUDED.options {INSERTED}"
                ),
                &[
                    &pool.name.as_str(),
                    &pool.uri.as_str(),
                    &(pool.weight as i32),
                    &flavor,
                    &pool.options.as_slice(),
                ],
            )
            .await?;
            OpResult::Ok(row.is_some_and(|r| r.get::<_, bool>(0)))
        })
    }

    async fn pool_get(&self, name: RString) -> PluginResult<ROption<PoolRecord>> {
        with_client!(self.db, |c| async {
            let row = query_opt(
                &c,
                "SELECT name, uri, weight, flavor, options FROM zaqar_pools WHERE name = $1",
                &[&name.as_str()],
            )
            .await?;
            OpResult::Ok(row.as_ref().map(pool_record).into())
        })
    }

    async fn pool_list(&self, q: NameListQuery) -> PluginResult<RVec<PoolRecord>> {
        let marker = q.marker.as_ref().map_or("", |m| m.as_str());
        with_client!(self.db, |c| async {
            let rows = query(
                &c,
                "SELECT name, uri, weight, flavor, options FROM zaqar_pools \
                 WHERE name > $1 ORDER BY name LIMIT $2",
                &[&marker, &i64::from(q.limit)],
            )
            .await?;
            OpResult::Ok(rows.iter().map(pool_record).collect())
        })
    }

    async fn pool_delete(&self, name: RString) -> PluginResult<()> {
        with_client!(self.db, |c| async {
            execute(
                &c,
                "DELETE FROM zaqar_pools WHERE name = $1",
                &[&name.as_str()],
            )
            .await?;
            OpResult::Ok(())
        })
    }

    async fn flavor_put(&self, flavor: FlavorRecord) -> PluginResult<bool> {
        let pools: Vec<&str> = flavor.pool_list.iter().map(|p| p.as_str()).collect();
        with_client!(self.db, |c| async {
            let row = query_opt(
                &c,
                &format!(
                    "INSERT INTO zaqar_flavors (project, name, pool_list, capabilities) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (project, name) DO UPDATE SET \
                     pool_list = EXCLUDED.pool_list, capabilities = EXCLUDED.capabilities \
                     {INSERTED}"
                ),
                &[
                    &flavor.project.as_str(),
                    &flavor.name.as_str(),
                    &pools,
                    &flavor.capabilities.as_slice(),
                ],
            )
            .await?;
            OpResult::Ok(row.is_some_and(|r| r.get::<_, bool>(0)))
        })
    }

    async fn flavor_get(
        &self,
        project: RString,
        name: RString,
    ) -> PluginResult<ROption<FlavorRecord>> {
        with_client!(self.db, |c| async {
            let row = query_opt(
                &c,
                "SELECT project, name, pool_list, capabilities FROM zaqar_flavors \
                 WHERE project = $1 AND name = $2",
                &[&project.as_str(), &name.as_str()],
            )
            .await?;
            OpResult::Ok(row.as_ref().map(flavor_record).into())
        })
    }

    async fn flavor_list(
        &self,
        project: RString,
        q: NameListQuery,
    ) -> PluginResult<RVec<FlavorRecord>> {
        let marker = q.marker.as_ref().map_or("", |m| m.as_str());
        with_client!(self.db, |c| async {
            let rows = query(
                &c,
                "SELECT project, name, pool_list, capabilities FROM zaqar_flavors \
                 WHERE project = $1 AND name > $2 ORDER BY name LIMIT $3",
                &[&project.as_str(), &marker, &i64::from(q.limit)],
            )
            .await?;
            OpResult::Ok(rows.iter().map(flavor_record).collect())
        })
    }

    async fn flavor_delete(&self, project: RString, name: RString) -> PluginResult<()> {
        with_client!(self.db, |c| async {
            execute(
                &c,
                "DELETE FROM zaqar_flavors WHERE project = $1 AND name = $2",
                &[&project.as_str(), &name.as_str()],
            )
            .await?;
            OpResult::Ok(())
        })
    }

    async fn is_alive(&self) -> PluginResult<bool> {
        Ok(self.db.is_alive().await)
    }
}
