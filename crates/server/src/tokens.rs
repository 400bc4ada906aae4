//! Bearer tokens: admin (everything), viewer (read the API), agent (fetch
//! the effective policy and post events for the images it is scoped to),
//! instrumenter (an `ldguard-layer serve` worker: claim instrumentation
//! jobs, report on them, read the policies they name — a stolen worker
//! token cannot switch a mode, change a policy or read events).
//!
//! A token is 32 random bytes shown once at creation; only its SHA-256 is
//! stored. A slow password hash buys nothing for 256-bit random secrets,
//! and the hash is looked up on every request.

use crate::images::ImageGlobs;
use crate::store::{col, now_us, Store};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Viewer,
    Agent,
    Instrumenter,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Viewer => "viewer",
            Role::Agent => "agent",
            Role::Instrumenter => "instrumenter",
        }
    }

    /// Agents and instrumenters are programs with one job each: the
    /// console is for people.
    pub fn may_use_console(self) -> bool {
        matches!(self, Role::Admin | Role::Viewer)
    }

    fn parse(text: &str) -> Option<Role> {
        match text {
            "admin" => Some(Role::Admin),
            "viewer" => Some(Role::Viewer),
            "agent" => Some(Role::Agent),
            "instrumenter" => Some(Role::Instrumenter),
            _ => None,
        }
    }
}

/// Who made a request.
#[derive(Clone, Debug)]
pub struct Caller {
    pub token_id: i64,
    pub role: Role,
    /// For agents: the images it may fetch policies and report events for.
    pub images: ImageGlobs,
}

/// A token as listed (never the secret).
#[derive(Clone, Debug, Serialize)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub images: Vec<String>,
    pub created_us: i64,
    pub revoked: bool,
}

pub fn hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.trim().as_bytes()))
}

/// Creates a token and returns its secret: the only time it exists in clear.
pub async fn create(
    store: &Store,
    name: &str,
    role: Role,
    images: &[String],
) -> Result<(i64, String), String> {
    if role != Role::Agent && !images.is_empty() {
        return Err(
            "--images scopes agent tokens only; admin, viewer and instrumenter tokens are not scoped to images".into(),
        );
    }
    ImageGlobs::parse(images)?;
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness for the token: {e}"))?;
    let secret = format!("ldg_{}", hex::encode(bytes));
    let images = serde_json::to_string(images).unwrap_or_else(|_| "[]".into());
    let row = sqlx::query(
        "INSERT INTO tokens (name, role, images, hash, created_us) VALUES ($1, $2, $3, $4, $5) \
         RETURNING id",
    )
    .bind(name)
    .bind(role.as_str())
    .bind(images)
    .bind(hash(&secret))
    .bind(now_us())
    .fetch_one(&store.pool)
    .await
    .map_err(|e| format!("storing the token: {e}"))?;
    let id = col(&row, "id").map_err(|e| e.to_string())?;
    Ok((id, secret))
}

pub async fn list(store: &Store) -> Result<Vec<TokenInfo>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, name, role, images, created_us, revoked_us FROM tokens ORDER BY id",
    )
    .fetch_all(&store.pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TokenInfo {
                id: col(r, "id")?,
                name: col(r, "name")?,
                role: Role::parse(&col::<String>(r, "role")?).unwrap_or(Role::Viewer),
                images: serde_json::from_str(&col::<String>(r, "images")?).unwrap_or_default(),
                created_us: col(r, "created_us")?,
                revoked: col::<Option<i64>>(r, "revoked_us")?.is_some(),
            })
        })
        .collect()
}

/// Revokes a token; `false` when there is no such live token.
pub async fn revoke(store: &Store, id: i64) -> Result<bool, sqlx::Error> {
    let done =
        sqlx::query("UPDATE tokens SET revoked_us = $1 WHERE id = $2 AND revoked_us IS NULL")
            .bind(now_us())
            .bind(id)
            .execute(&store.pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// How long a looked-up token is trusted without asking the database again:
/// the bound on how long a revoked token keeps working.
const CACHE_TTL: Duration = Duration::from_secs(5);

/// Looks tokens up, with a short-lived cache so event ingestion does not
/// query the token table on every batch.
#[derive(Default)]
pub struct Authenticator {
    cache: Mutex<HashMap<String, (Option<Caller>, Instant)>>,
}

impl Authenticator {
    pub async fn caller(&self, store: &Store, secret: &str) -> Result<Option<Caller>, sqlx::Error> {
        let key = hash(secret);
        if let Some((caller, at)) = self.lock().get(&key) {
            if at.elapsed() < CACHE_TTL {
                return Ok(caller.clone());
            }
        }
        let row = sqlx::query(
            "SELECT id, role, images FROM tokens WHERE hash = $1 AND revoked_us IS NULL",
        )
        .bind(&key)
        .fetch_optional(&store.pool)
        .await?;
        let caller = match row {
            None => None,
            Some(r) => {
                let images: Vec<String> =
                    serde_json::from_str(&col::<String>(&r, "images")?).unwrap_or_default();
                Role::parse(&col::<String>(&r, "role")?).map(|role| Caller {
                    token_id: col(&r, "id").unwrap_or_default(),
                    role,
                    images: ImageGlobs::parse(&images).unwrap_or_default(),
                })
            }
        };
        let mut cache = self.lock();
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key, (caller.clone(), Instant::now()));
        Ok(caller)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Option<Caller>, Instant)>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }
}
