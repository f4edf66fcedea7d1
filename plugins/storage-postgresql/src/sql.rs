//! Small helpers over a connection or transaction: cached prepared
//! statements, and the conversions between the contract's unsigned numbers
//! and PostgreSQL's signed columns.

use deadpool_postgres::GenericClient;
use tokio_postgres::{types::ToSql, Row};

pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Runs `sql` (prepared once per connection) and returns its rows.
pub(crate) async fn query<C: GenericClient + Sync>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.query(&statement, params).await
}

/// Runs `sql` and returns its first row, if any.
pub(crate) async fn query_opt<C: GenericClient + Sync>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, tokio_postgres::Error> {
    Ok(query(c, sql, params).await?.into_iter().next())
}

/// Runs `sql` and returns how many rows it changed.
pub(crate) async fn execute<C: GenericClient + Sync>(
    c: &C,
    sql: &str,
    params: Params<'_>,
) -> Result<u64, tokio_postgres::Error> {
    let statement = c.prepare_cached(sql).await?;
    c.execute(&statement, params).await
}

/// A millisecond instant or sequence number as a `bigint`.
pub(crate) fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A `bigint` column back as the contract's unsigned number.
pub(crate) fn unbig(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// A 32-bit unsigned value stored bit for bit in an `integer`.
pub(crate) fn int(v: u32) -> i32 {
    v as i32
}

/// An `integer` column back as the unsigned value it stores.
pub(crate) fn unint(v: i32) -> u32 {
    v as u32
}
