//! `ldguard-server`: the control plane. Policies with immutable numbered
//! versions, assignments that say which version applies to which images and
//! in which mode, the endpoint the library fetches its policy from, and
//! the store of the events the library posts.
//!
//! The policy, events and learn crates do the thinking; this crate adds
//! storage (`store`, SQLite or PostgreSQL through sqlx) and HTTP (`api`, axum).

pub mod api;
pub mod bench;
pub mod console;
pub mod forward;
pub mod images;
pub mod metrics;
pub mod store;
pub mod tokens;

use api::AppState;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How `serve` runs.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub database: String,
    pub max_batch_bytes: usize,
    /// Events older than this are deleted (checked hourly); `None` keeps all.
    pub retention: Option<Duration>,
    /// Receivers every stored event is forwarded to.
    pub forward: Vec<forward::SinkConfig>,
}

/// Runs until SIGINT or SIGTERM; requests in flight (an event batch being
/// stored) finish before it returns.
pub async fn serve(opts: ServeOptions) -> Result<(), String> {
    let store = store::Store::open(&opts.database).await?;
    let state = Arc::new(AppState {
        store,
        auth: tokens::Authenticator::default(),
        metrics: metrics::Metrics::default(),
        max_batch_bytes: opts.max_batch_bytes,
    });
    if let Some(age) = opts.retention {
        tokio::spawn(retention(state.store.clone(), age));
    }
    let forwarding =
        forward::Forwarding::start(&state.store, opts.forward.clone(), &state.metrics.forward)?;
    let counted = state.clone();
    let app = console::attach(api::router(state.clone()), state).layer(
        axum::middleware::map_response(move |response: axum::response::Response| {
            let counted = counted.clone();
            async move {
                counted.metrics.count_status(response.status().as_u16());
                response
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!(address = %local, database = %store::redact(&opts.database), "listening");
    // Tests and scripts wait for this line to learn the port.
    println!("listening on http://{local}");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    // After the last request: a batch stored while shutting down is still
    // in the database, and the next start forwards it.
    forwarding.stop(Duration::from_secs(40)).await;
    tracing::info!("stopped; every accepted request was answered");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Deletes expired events (and their batch keys) every hour.
async fn retention(store: store::Store, age: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let cutoff = store::now_us() - age.as_micros() as i64;
        let mut statements = vec![
            "DELETE FROM events WHERE time_us < $1",
            "DELETE FROM batches WHERE received_us < $1",
            "DELETE FROM event_rollup WHERE start_us < $1",
        ];
        // Free-text blocks none of whose events is left ($1 unused; see
        // `store::TEXT_BLOCK_EVENTS`).
        statements.push(match store.backend {
            store::Backend::Postgres => {
                "DELETE FROM event_text WHERE $1 = $1 AND NOT EXISTS (SELECT 1 FROM events \
                 WHERE events.id BETWEEN event_text.first_id AND event_text.last_id)"
            }
            store::Backend::Sqlite => {
                "DELETE FROM events_fts WHERE $1 = $1 AND rowid + 255 < \
                 COALESCE((SELECT MIN(id) FROM events), rowid + 256)"
            }
        });
        for sql in statements {
            match sqlx::query(sql).bind(cutoff).execute(&store.pool).await {
                Ok(done) if done.rows_affected() > 0 => {
                    tracing::info!(rows = done.rows_affected(), "retention: {sql}")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention: {sql}"),
            }
        }
    }
}
