//! The schema: migrations, and on PostgreSQL whether the connection's role is bound by
//! row-level security.

use super::{Pool, Result, Store};
use sqlx::postgres::PgPool;

impl Store {
    /// Applies the migrations not yet applied. On PostgreSQL an up-to-date database is only read
    /// (which migrations it has, and their checksums), so the portal's own role, which may not
    /// create tables, can start against a database that the tables' owner migrated.
    pub async fn migrate(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(p) => sqlx::migrate!("./migrations/sqlite").run(p).await?,
            Pool::Postgres(p) => {
                let migrator = sqlx::migrate!("./migrations/postgres");
                if !pg_migrated(p, &migrator).await? {
                    migrator.run(p).await?;
                }
            }
        }
        Ok(())
    }

    /// On PostgreSQL, why this connection's role must not serve the portal: it could read
    /// around row-level security (a superuser, a BYPASSRLS role, or the tables' owner, or a
    /// member of one), or the tables do not have it enabled and forced. `None` on SQLite.
    pub async fn row_security_problem(&self) -> Result<Option<String>> {
        let Pool::Postgres(p) = &self.pool else {
            return Ok(None);
        };
        let (role, bypass, owns, forced): (String, bool, bool, bool) = sqlx::query_as(
            "WITH t AS (SELECT c.* FROM pg_class c WHERE c.oid IN ('tenant'::regclass, \
               'membership'::regclass, 'session'::regclass, 'instance'::regclass, \
               'operation'::regclass, 'audit_event'::regclass, 'invitation'::regclass, \
               'event'::regclass, 'event_sequence'::regclass)) \
             SELECT current_user::text, \
               EXISTS (SELECT 1 FROM pg_roles r WHERE (r.rolsuper OR r.rolbypassrls) \
                         AND pg_has_role(current_user, r.oid, 'MEMBER')), \
               EXISTS (SELECT 1 FROM t WHERE pg_has_role(current_user, t.relowner, 'MEMBER')), \
               (SELECT bool_and(t.relrowsecurity AND t.relforcerowsecurity) FROM t)",
        )
        .fetch_one(p)
        .await?;
        Ok(if bypass {
            Some(format!(
                "the database role {role:?} is a superuser or may bypass row-level security"
            ))
        } else if owns {
            Some(format!(
                "the database role {role:?} owns Portico's tables (or may act as their owner), \
                 so row-level security cannot hold it"
            ))
        } else if !forced {
            Some("row-level security is not enabled and forced on every tenant table".into())
        } else {
            None
        })
    }
}

/// Whether every migration is applied, unchanged. A missing bookkeeping table means a new
/// database; an applied migration whose checksum differs is refused, as sqlx itself would.
async fn pg_migrated(p: &PgPool, migrator: &sqlx::migrate::Migrator) -> Result<bool> {
    let applied: Vec<(i64, Vec<u8>)> =
        match sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations WHERE success")
            .fetch_all(p)
            .await
        {
            Ok(rows) => rows,
            Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("42P01") => {
                return Ok(false)
            }
            Err(e) => return Err(e.into()),
        };
    for m in migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
    {
        match applied.iter().find(|(v, _)| *v == m.version) {
            None => return Ok(false),
            Some((_, sum)) if sum.as_slice() != &*m.checksum => {
                return Err(sqlx::migrate::MigrateError::VersionMismatch(m.version).into())
            }
            Some(_) => {}
        }
    }
    Ok(true)
}
