//! The flavors admin API (`/v2/flavors`, WebSocket `flavor_*`): named sets
//! of pools a queue asks for with its `_flavor` metadata. Flavors belong
//! to a project; reading them is open to the project, changing them is
//! admin only (Zaqar's policy).

use plugin_api::{
    management::{FlavorRecord, ManagementStore, NameListQuery, PoolRecord},
    types::{ROption, RString, RVec},
};
use serde_json::{json, Map, Value};

use super::{
    action::{AdminReply, Caller, PageQuery, Reply},
    body::parse_object,
    command::CatalogListArgs,
    errors::{ApiError, ApiResult},
    pools::{check_name, pools_of},
    render::next_href,
    validation::{page_limit, PageKind},
    Api,
};
use crate::pools::{is_reserved_project, Pools};

fn storage(error: plugin_api::PluginError) -> ApiError {
    ApiError::storage(error, "The flavor catalogue could not be read or changed.")
}

fn admin_only(caller: &Caller) -> ApiResult<()> {
    if caller.admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}

/// The project flavors are kept under; the catalog's reserved namespace is
/// no client's.
fn project(caller: &Caller) -> ApiResult<&str> {
    let project = caller.project.as_str();
    if is_reserved_project(project) {
        return Err(ApiError::Forbidden);
    }
    Ok(project)
}

/// Capabilities of the store drivers, as Zaqar's drivers declare theirs.
pub fn capabilities(driver: &str) -> Vec<&'static str> {
    match driver {
        "redis" => vec!["FIFO", "CLAIMS", "AOD", "HIGH_THROUGHPUT"],
        "embedded" | "postgresql" => vec!["FIFO", "CLAIMS", "DURABILITY", "AOD"],
        _ => vec!["FIFO", "CLAIMS"],
    }
}

fn names(list: &RVec<RString>) -> Vec<Value> {
    list.iter().map(|p| json!(p.as_str())).collect()
}

fn capabilities_of(record: &FlavorRecord) -> Value {
    serde_json::from_slice(&record.capabilities).unwrap_or_else(|_| json!([]))
}

/// `name, capabilities, pool_list, href` (a flavor GET).
fn flavor_document(record: &FlavorRecord) -> Value {
    json!({
        "name": record.name.as_str(),
        "capabilities": capabilities_of(record),
        "pool_list": names(&record.pool_list),
        "href": format!("/v2/flavors/{}", record.name),
    })
}

/// `name, href[, pool_list][, capabilities]` (a listing entry).
fn listed_document(record: &FlavorRecord, detailed: bool) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(record.name.as_str()));
    out.insert("href".into(), json!(format!("/v2/flavors/{}", record.name)));
    if !record.pool_list.is_empty() {
        out.insert("pool_list".into(), Value::Array(names(&record.pool_list)));
    }
    if detailed {
        out.insert("capabilities".into(), capabilities_of(record));
    }
    Value::Object(out)
}

async fn find(pools: &Pools, project: &str, name: &str) -> ApiResult<Option<FlavorRecord>> {
    pools
        .management()
        .flavor_get(project.into(), name.into())
        .await
        .map_err(storage)
        .map(ROption::into_option)
}

fn not_found(name: &str) -> ApiError {
    ApiError::NotFound(format!("Flavor {name} does not exist"))
}

/// `flavor_list`: a page of the project's flavors by name.
pub async fn list(api: &Api, caller: &Caller, args: &CatalogListArgs) -> ApiResult<Reply> {
    let pools = pools_of(api)?;
    let project = project(caller)?;
    let limit = page_limit(
        args.limit,
        api.limits.max_flavors_per_page,
        PageKind::Catalogue,
    )?;
    let records = pools
        .management()
        .flavor_list(
            project.into(),
            NameListQuery {
                marker: args.marker.clone().map(RString::from).into(),
                limit,
            },
        )
        .await
        .map_err(storage)?;
    // Zaqar's flavor links put the marker first.
    let mut page = PageQuery {
        pairs: Vec::new(),
        marker_first: true,
    };
    if let Some(limit) = args.limit {
        page.pairs.push(("limit", limit.to_string()));
    }
    if let Some(detailed) = args.detailed {
        page.pairs.push(("detailed", detailed.to_string()));
    }
    let links = match records.last() {
        Some(last) => {
            json!([{"rel": "next", "href": next_href("/v2/flavors", &page, &last.name)}])
        }
        None => json!([]),
    };
    let detailed = args.detailed == Some(true);
    let listed: Vec<Value> = records
        .iter()
        .map(|r| listed_document(r, detailed))
        .collect();
    Ok(Reply::Admin(AdminReply::document(
        200,
        json!({"links": links, "flavors": listed}),
    )))
}

/// `flavor_get`.
pub async fn get(api: &Api, caller: &Caller, name: &str) -> ApiResult<Reply> {
    let pools = pools_of(api)?;
    let project = project(caller)?;
    let record = find(pools, project, name)
        .await?
        .ok_or_else(|| not_found(name))?;
    Ok(Reply::Admin(AdminReply::document(
        200,
        flavor_document(&record),
    )))
}

/// The pool list of a flavor body: required, an array of strings.
fn pool_list(fields: &Map<String, Value>) -> ApiResult<Option<Vec<String>>> {
    for key in fields.keys() {
        if key != "pool_list" && key != "capabilities" {
            return Err(ApiError::body(format!(
                "Additional properties are not allowed ('{key}' was unexpected)"
            )));
        }
    }
    if let Some(capabilities) = fields.get("capabilities") {
        if !capabilities.is_object() {
            return Err(ApiError::body(format!(
                "{capabilities} is not of type 'object'"
            )));
        }
    }
    let Some(list) = fields.get("pool_list") else {
        return Ok(None);
    };
    let Some(items) = list.as_array() else {
        return Err(ApiError::body(format!("{list} is not of type 'array'")));
    };
    items
        .iter()
        .map(|item| {
            item.as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::body(format!("{item} is not of type 'string'")))
        })
        .collect::<ApiResult<Vec<String>>>()
        .map(Some)
}

/// The records of `names`; `Err(name)` for the first one not registered.
async fn pool_records(
    pools: &Pools,
    names: &[String],
) -> ApiResult<Result<Vec<PoolRecord>, String>> {
    let mut records = Vec::new();
    for name in names {
        match pools
            .management()
            .pool_get(name.as_str().into())
            .await
            .map_err(storage)?
        {
            ROption::RSome(record) => records.push(record),
            ROption::RNone => return Ok(Err(name.clone())),
        }
    }
    Ok(Ok(records))
}

/// Sets (or clears) the flavor of pools.
async fn set_flavor(
    pools: &Pools,
    records: Vec<PoolRecord>,
    flavor: Option<&str>,
) -> ApiResult<()> {
    for mut record in records {
        record.flavor = flavor.map(RString::from).into();
        pools.management().pool_put(record).await.map_err(storage)?;
    }
    Ok(())
}

/// The capabilities of a flavor: those of its first pool's store.
async fn capabilities_for(pools: &Pools, first: &PoolRecord) -> Vec<u8> {
    let driver = match pools.instance(first).await {
        Ok(pool) => pool.driver.clone(),
        Err(_) => crate::pools::uri::scheme(&first.uri)
            .map(|s| crate::pools::uri::driver_for_scheme(&s).to_string())
            .unwrap_or_default(),
    };
    serde_json::to_vec(&capabilities(&driver)).unwrap_or_default()
}

/// `flavor_create` (PUT): the listed pools join the flavor (201; a re-PUT
/// replaces it).
pub async fn create(
    api: &Api,
    caller: &Caller,
    name: &str,
    body: Option<&[u8]>,
) -> ApiResult<Reply> {
    let pools = pools_of(api)?;
    admin_only(caller)?;
    let project = project(caller)?;
    check_name(name, "flavor")?;
    let fields = parse_object(body)?;
    let Some(list) = pool_list(&fields)? else {
        return Err(ApiError::body("'pool_list' is a required property"));
    };
    let unable = |description: String| ApiError::Refused {
        status: 400,
        title: "Unable to create",
        description,
    };
    if list.is_empty() {
        return Err(unable("Bad Request".into()));
    }
    let records = pool_records(pools, &list).await?.map_err(|missing| {
        unable(format!(
            "Flavor {name} could not be created, error:Pool {missing} does not exist"
        ))
    })?;
    let capabilities = capabilities_for(pools, &records[0]).await;
    if let Some(previous) = find(pools, project, name).await? {
        let dropped = previous_only(pools, &previous, &list).await?;
        set_flavor(pools, dropped, None).await?;
    }
    set_flavor(pools, records, Some(name)).await?;
    pools
        .management()
        .flavor_put(FlavorRecord {
            project: project.into(),
            name: name.into(),
            pool_list: list.iter().map(|p| RString::from(p.as_str())).collect(),
            capabilities: capabilities.into(),
        })
        .await
        .map_err(storage)?;
    Ok(Reply::Admin(AdminReply::created(
        format!("/v2/flavors/{name}"),
        format!("Flavor {name} created."),
    )))
}

/// The pools of `previous` that `list` no longer names (they leave the
/// flavor).
async fn previous_only(
    pools: &Pools,
    previous: &FlavorRecord,
    list: &[String],
) -> ApiResult<Vec<PoolRecord>> {
    let gone: Vec<String> = previous
        .pool_list
        .iter()
        .map(|p| p.to_string())
        .filter(|p| !list.contains(p))
        .collect();
    let mut records = Vec::new();
    for name in gone {
        if let ROption::RSome(record) = pools
            .management()
            .pool_get(name.as_str().into())
            .await
            .map_err(storage)?
        {
            if record.flavor.as_ref().into_option().map(RString::as_str)
                == Some(previous.name.as_str())
            {
                records.push(record);
            }
        }
    }
    Ok(records)
}

/// `flavor_update` (PATCH): a new pool list; pools left out leave the flavor.
pub async fn update(
    api: &Api,
    caller: &Caller,
    name: &str,
    body: Option<&[u8]>,
) -> ApiResult<Reply> {
    let pools = pools_of(api)?;
    admin_only(caller)?;
    let project = project(caller)?;
    let fields = parse_object(body)?;
    let Some(list) = pool_list(&fields)? else {
        return Err(ApiError::body("`pool_list` needs to be specified"));
    };
    let mut record = find(pools, project, name)
        .await?
        .ok_or_else(|| not_found(name))?;
    let failed = |description: String| ApiError::Refused {
        status: 400,
        title: "updatefail",
        description,
    };
    if list.is_empty() {
        return Err(failed(format!(
            "Flavor {name} cant be updated, error:the pool list is empty"
        )));
    }
    let records = pool_records(pools, &list).await?.map_err(|missing| {
        failed(format!(
            "Flavor {name} cant be updated, error:Pool {missing} does not exist"
        ))
    })?;
    let dropped = previous_only(pools, &record, &list).await?;
    set_flavor(pools, dropped, None).await?;
    record.capabilities = capabilities_for(pools, &records[0]).await.into();
    set_flavor(pools, records, Some(name)).await?;
    record.pool_list = list.iter().map(|p| RString::from(p.as_str())).collect();
    pools
        .management()
        .flavor_put(record.clone())
        .await
        .map_err(storage)?;
    Ok(Reply::Admin(AdminReply::document(
        200,
        flavor_document(&record),
    )))
}

/// `flavor_delete`: its pools leave it; a missing flavor is fine.
pub async fn delete(api: &Api, caller: &Caller, name: &str) -> ApiResult<Reply> {
    let pools = pools_of(api)?;
    admin_only(caller)?;
    let project = project(caller)?;
    if let Some(record) = find(pools, project, name).await? {
        let members = previous_only(pools, &record, &[]).await?;
        set_flavor(pools, members, None).await?;
        pools
            .management()
            .flavor_delete(project.into(), name.into())
            .await
            .map_err(storage)?;
    }
    Ok(Reply::Done)
}
