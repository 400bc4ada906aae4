//! The process's policy [`Source`] and what start-up takes from it, below
//! both `state` (start-up) and `refresh` (the refresher thread), so that
//! start-up never leans on the refresher: it reads the shared cache and
//! records what it delivered here, and the refresher, when it runs, takes
//! the same `Source` from here.

use crate::events::emit;
use crate::process::config::{self, Settings};
use ldguard_policy::{compile_str_for_program, RuleTable};
use ldguard_source::{Location, Source, SourceConfig};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::time::Duration;

/// The process's source; leaked, replaced (never freed) in a forked child.
static SOURCE: AtomicPtr<Source> = AtomicPtr::new(std::ptr::null_mut());
/// The start-up read found no fresh cache entry: this process may fetch.
static FETCH_LIKELY: AtomicBool = AtomicBool::new(false);

/// Whether the start-up read found no fresh shared cache entry, so that
/// this process may be the one to fetch.
pub fn fetch_likely() -> bool {
    FETCH_LIKELY.load(Ordering::Relaxed)
}

/// The source made so far, if any.
pub fn current() -> Option<&'static Source> {
    // SAFETY: SOURCE holds null or a leaked, never-freed Source.
    unsafe { SOURCE.load(Ordering::Acquire).as_ref() }
}

/// Replaces the source (in a forked child: see `refresh`); the old one is
/// leaked, as another thread may still hold it.
pub fn replace(source: Source) {
    SOURCE.store(Box::into_raw(Box::new(source)), Ordering::Release);
}

/// The policy to use at start-up from the shared cache, for an HTTP policy
/// location (never fetched on a hooked path: the cache entry is used fresh
/// or stale, as the server's latest word, newer than anything baked into the
/// image): an error when there is no usable cache entry, with the reason.
pub fn cached_policy(
    settings: &Settings,
    url: &str,
    program: &[u8],
) -> Result<(RuleTable, String), String> {
    let source = for_settings(settings)?;
    let found = source
        .read_cache(|text| compile_str_for_program(text, url, program).map_err(|d| d.to_string()));
    let fresh = matches!(&found, Ok(Some(update)) if update.fresh);
    FETCH_LIKELY.store(!fresh && source.shared_cache().is_some(), Ordering::Relaxed);
    match found {
        Ok(Some(update)) => {
            let age = if update.fresh {
                "fresh"
            } else {
                "stale, refreshing"
            };
            Ok((update.value, format!("{url} (cached, {age})")))
        }
        Ok(None) => Err(format!(
            "{url}: no cached copy yet; fetching it in the background"
        )),
        Err(e) => Err(format!("{e}; fetching it again in the background")),
    }
}

/// The start-up read of a policy file found `text`: the refresher reports
/// only a change from it.
pub fn started_with(settings: &Settings, text: String) {
    if let Ok(source) = for_settings(settings) {
        source.already_delivered(text);
    }
}

/// As [`started_with`], for a start-up that took a compiled table of the
/// policy instead of its text: the table records the text's SHA-256.
pub fn started_with_sha256(settings: &Settings, sha256_hex: String) {
    if let Ok(source) = for_settings(settings) {
        source.already_delivered_sha256(sha256_hex);
    }
}

/// The process's [`Source`], made on first use from the settings.
pub fn for_settings(settings: &Settings) -> Result<&'static Source, String> {
    if let Some(s) = current() {
        return Ok(s);
    }
    let location = settings.policy.ok_or("no policy location configured")?;
    let location = Location::parse(location).map_err(|e| e.to_string())?;
    let mut config = SourceConfig::new(location);
    config.set_refresh(Duration::from_secs(
        settings.refresh_seconds.unwrap_or(30).max(1),
    ));
    config.cache_dir = Some(PathBuf::from(
        settings
            .cache_dir
            .unwrap_or(ldguard_source::DEFAULT_CACHE_DIR),
    ));
    config.ca_file = settings.ca_file.map(PathBuf::from);
    let (token, note) = config::token(settings);
    if let Some(note) = note {
        emit::status(&note);
    }
    config.token = token;
    let fresh = Box::into_raw(Box::new(Source::new(config)));
    match SOURCE.compare_exchange(
        std::ptr::null_mut(),
        fresh,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        // SAFETY: just published; never freed.
        Ok(_) => Ok(unsafe { &*fresh }),
        Err(existing) => {
            // SAFETY: `fresh` was never shared; `existing` is leaked like ours.
            unsafe {
                drop(Box::from_raw(fresh));
                Ok(&*existing)
            }
        }
    }
}
