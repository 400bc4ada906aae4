//! The library's policy fetches, as this server process answered them: the
//! dashboard's "last policy fetch per image". Kept in memory (the store has
//! no table for them), so each server process knows the fetches it answered
//! since it started.

use crate::store::now_us;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// At most this many images are remembered; the oldest fetch goes first.
const MAX_IMAGES: usize = 10_000;

/// One image's latest fetch.
#[derive(Clone, Debug)]
pub struct Fetch {
    pub at_us: i64,
    /// 200 (a new document), 304 (unchanged) or 404 (no assignment applies).
    pub status: u16,
    /// `ASSIGNMENT POLICY@VERSION` as the answer named it.
    pub served: Option<String>,
}

#[derive(Default)]
pub struct PolicyFetches {
    by_image: Mutex<BTreeMap<String, Fetch>>,
}

impl PolicyFetches {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Fetch>> {
        self.by_image.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn note(&self, image: &str, fetch: Fetch) {
        let mut map = self.lock();
        if map.len() >= MAX_IMAGES && !map.contains_key(image) {
            let oldest = map
                .iter()
                .min_by_key(|(_, f)| f.at_us)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(image.to_string(), fetch);
    }

    pub fn all(&self) -> BTreeMap<String, Fetch> {
        self.lock().clone()
    }
}

/// Notes authenticated answers of `GET /api/v1/agent/policy` (refused
/// tokens are not noted: their image names are not to be trusted).
pub async fn observe(fetches: Arc<PolicyFetches>, req: Request, next: Next) -> Response {
    let image = (req.uri().path() == "/api/v1/agent/policy")
        .then(|| {
            req.uri().query().and_then(|q| {
                serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                    .ok()?
                    .into_iter()
                    .find(|(k, _)| k == "image")
                    .map(|(_, v)| v)
            })
        })
        .flatten();
    let response = next.run(req).await;
    if let Some(image) = image {
        let status = response.status().as_u16();
        if matches!(status, 200 | 304 | 404) {
            let served = response
                .headers()
                .get("x-ldguard-assignment")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            fetches.note(
                &image,
                Fetch {
                    at_us: now_us(),
                    status,
                    served,
                },
            );
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_image_is_forgotten_when_full() {
        let f = PolicyFetches::default();
        for i in 0..MAX_IMAGES {
            f.note(
                &format!("img{i}"),
                Fetch {
                    at_us: i as i64 + 10,
                    status: 200,
                    served: None,
                },
            );
        }
        f.note(
            "newest",
            Fetch {
                at_us: 1 << 40,
                status: 304,
                served: None,
            },
        );
        let all = f.all();
        assert_eq!(all.len(), MAX_IMAGES);
        assert!(!all.contains_key("img0"));
        assert!(all.contains_key("img1"));
        assert_eq!(all["newest"].status, 304);
    }
}
