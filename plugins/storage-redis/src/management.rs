//! [`RedisManagementStore`]: pools and flavors under keys of our own
//! (`zaqar-rs.pools`, `zaqar-rs.pool.<name>`, `zaqar-rs.flavors.<project>`,
//! `zaqar-rs.flavor.<project>.<name>`). Zaqar's Redis management layout is
//! not used: Zaqar 23 cannot create pools with it and keys flavors by name
//! alone, while the contract scopes flavors by project.

use plugin_api::{
    management::{FlavorRecord, ManagementStore, NameListQuery, PoolRecord},
    types::{ROption, RString, RVec},
    PluginError, PluginResult,
};
use redis::Value;

use crate::{
    codec::{array, bytes, int, string},
    connection::Conn,
};

/// The redis management store.
#[derive(Debug, Clone)]
pub struct RedisManagementStore {
    conn: Conn,
}

impl RedisManagementStore {
    pub(crate) fn new(conn: Conn) -> Self {
        Self { conn }
    }

    fn key(&self, name: &str) -> String {
        format!("{}zaqar-rs.{name}", self.conn.prefix())
    }

    async fn names(&self, index: &str, query: &NameListQuery) -> PluginResult<Vec<String>> {
        let from = match &query.marker {
            ROption::RSome(m) => format!("({m}"),
            ROption::RNone => "-".to_owned(),
        };
        self.conn
            .command(
                redis::cmd("ZRANGEBYLEX")
                    .arg(index)
                    .arg(from)
                    .arg("+")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(query.limit),
            )
            .await
    }

    /// Replaces a record hash and adds its name to the index, atomically;
    /// true if the record did not exist.
    async fn put(
        &self,
        index: &str,
        name: &str,
        key: &str,
        fields: &[(&str, Vec<u8>)],
    ) -> PluginResult<bool> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("EXISTS")
            .arg(key)
            .cmd("DEL")
            .arg(key)
            .ignore()
            .cmd("HSET")
            .arg(key)
            .arg(fields)
            .ignore()
            .cmd("ZADD")
            .arg(index)
            .arg(0)
            .arg(name)
            .ignore();
        let (existed,): (i64,) = self.conn.command_pipe(&pipe).await?;
        Ok(existed == 0)
    }

    async fn pool_at(&self, name: &str) -> PluginResult<ROption<PoolRecord>> {
        let v: Value = self
            .conn
            .command(
                redis::cmd("HMGET")
                    .arg(self.key(&format!("pool.{name}")))
                    .arg(&["u", "w", "f", "o"]),
            )
            .await?;
        let f = array(&v)?;
        if f.len() != 4 || f[0] == Value::Nil {
            return Ok(ROption::RNone);
        }
        let flavor = string(&f[2])?;
        Ok(ROption::RSome(PoolRecord {
            name: name.into(),
            uri: string(&f[0])?.into(),
            weight: int(&f[1])? as u32,
            flavor: if f[2] == Value::Nil {
                ROption::RNone
            } else {
                ROption::RSome(flavor.into())
            },
            options: bytes(&f[3])?.to_vec().into(),
        }))
    }

    async fn flavor_at(&self, project: &str, name: &str) -> PluginResult<ROption<FlavorRecord>> {
        let v: Value = self
            .conn
            .command(
                redis::cmd("HMGET")
                    .arg(self.key(&format!("flavor.{project}.{name}")))
                    .arg(&["pools", "c"]),
            )
            .await?;
        let f = array(&v)?;
        if f.len() != 2 || f[0] == Value::Nil {
            return Ok(ROption::RNone);
        }
        let pools: Vec<String> = serde_json::from_slice(bytes(&f[0])?)
            .map_err(|e| PluginError::internal(format!("redis store: flavor pool list: {e}")))?;
        Ok(ROption::RSome(FlavorRecord {
            project: project.into(),
            name: name.into(),
            pool_list: pools.into_iter().map(RString::from).collect(),
            capabilities: bytes(&f[1])?.to_vec().into(),
        }))
    }
}

impl ManagementStore for RedisManagementStore {
    async fn pool_put(&self, pool: PoolRecord) -> PluginResult<bool> {
        let mut fields = vec![
            ("u", pool.uri.as_bytes().to_vec()),
            ("w", pool.weight.to_string().into_bytes()),
            ("o", pool.options.to_vec()),
        ];
        if let ROption::RSome(f) = &pool.flavor {
            fields.push(("f", f.as_bytes().to_vec()));
        }
        let key = self.key(&format!("pool.{}", pool.name));
        self.put(&self.key("pools"), &pool.name, &key, &fields)
            .await
    }

    async fn pool_get(&self, name: RString) -> PluginResult<ROption<PoolRecord>> {
        self.pool_at(&name).await
    }

    async fn pool_list(&self, query: NameListQuery) -> PluginResult<RVec<PoolRecord>> {
        let mut out = RVec::new();
        for name in self.names(&self.key("pools"), &query).await? {
            if let ROption::RSome(p) = self.pool_at(&name).await? {
                out.push(p);
            }
        }
        Ok(out)
    }

    async fn pool_delete(&self, name: RString) -> PluginResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(self.key(&format!("pool.{name}")))
            .ignore()
            .cmd("ZREM")
            .arg(self.key("pools"))
            .arg(name.as_str())
            .ignore();
        self.conn.command_pipe::<()>(&pipe).await
    }

    async fn flavor_put(&self, flavor: FlavorRecord) -> PluginResult<bool> {
        let pools: Vec<&str> = flavor.pool_list.iter().map(|p| p.as_str()).collect();
        let fields = vec![
            (
                "pools",
                serde_json::to_vec(&pools).expect("names serialize"),
            ),
            ("c", flavor.capabilities.to_vec()),
        ];
        let key = self.key(&format!("flavor.{}.{}", flavor.project, flavor.name));
        let index = self.key(&format!("flavors.{}", flavor.project));
        self.put(&index, &flavor.name, &key, &fields).await
    }

    async fn flavor_get(
        &self,
        project: RString,
        name: RString,
    ) -> PluginResult<ROption<FlavorRecord>> {
        self.flavor_at(&project, &name).await
    }

    async fn flavor_list(
        &self,
        project: RString,
        query: NameListQuery,
    ) -> PluginResult<RVec<FlavorRecord>> {
        let mut out = RVec::new();
        for name in self
            .names(&self.key(&format!("flavors.{project}")), &query)
            .await?
        {
            if let ROption::RSome(f) = self.flavor_at(&project, &name).await? {
                out.push(f);
            }
        }
        Ok(out)
    }

    async fn flavor_delete(&self, project: RString, name: RString) -> PluginResult<()> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("DEL")
            .arg(self.key(&format!("flavor.{project}.{name}")))
            .ignore()
            .cmd("ZREM")
            .arg(self.key(&format!("flavors.{project}")))
            .arg(name.as_str())
            .ignore();
        self.conn.command_pipe::<()>(&pipe).await
    }

    async fn is_alive(&self) -> PluginResult<bool> {
        Ok(self.conn.ping().await.is_ok())
    }
}
