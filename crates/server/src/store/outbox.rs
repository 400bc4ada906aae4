//! Reading stored events in id order, for the forwarders (see `forward`).

use super::{col, stored_body, Store, STORED_COLUMNS};

/// One stored event as a forwarder reads it.
#[derive(Clone, Debug)]
pub struct StoredEvent {
    pub id: i64,
    pub received_us: i64,
    /// The event's JSON (see `stored_body`).
    pub body: String,
}

impl Store {
    /// Up to `limit` events with an id above `after`, in id order.
    pub async fn events_after(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT id, received_us, {STORED_COLUMNS} FROM events WHERE id > $1 ORDER BY id \
             LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredEvent {
                    id: col(r, "id")?,
                    received_us: col(r, "received_us")?,
                    body: stored_body(r)?,
                })
            })
            .collect()
    }

    /// The highest stored event id (0 when there is none).
    pub async fn last_event_id(&self) -> Result<i64, sqlx::Error> {
        let row = sqlx::query("SELECT COALESCE(MAX(id), 0) AS last FROM events")
            .fetch_one(&self.pool)
            .await?;
        col(&row, "last")
    }
}
