//! The OpenAPI document at `/api/openapi.json`: fetched from a real server
//! process, validated as OpenAPI 3 by the `openapi-spec-validator` package
//! (PyPI, installed by scripts/setup), and compared with the routes the
//! router really serves under `/api`, method by method, so the document
//! cannot drift from the code.

mod common;

use common::{scratch, Server};
use ldguard_server::api::{router, AppState};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// The paths `ldguard_server::api::router` registers, read from the
/// router itself (its `Debug` lists every route's path).
fn router_paths(db: &str) -> BTreeSet<String> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime
        .block_on(ldguard_server::store::Store::open(db))
        .unwrap();
    let state = Arc::new(AppState {
        store,
        auth: Default::default(),
        metrics: Default::default(),
        max_batch_bytes: 1 << 20,
    });
    let text = format!("{:?}", router(state));
    let mut paths = BTreeSet::new();
    for piece in text.split("RouteId(").skip(1) {
        if let Some(rest) = piece.split_once("): \"").map(|(_, r)| r) {
            if let Some((path, _)) = rest.split_once('"') {
                paths.insert(path.to_string());
            }
        }
    }
    assert!(
        paths.contains("/healthz") && paths.len() > 10,
        "the router's Debug output no longer lists its paths (axum changed?): {paths:?}"
    );
    paths
}

/// A Python that has `openapi_spec_validator`: the checkout's .venv (made
/// by scripts/setup), else the one on PATH.
fn validator_python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    for python in [root.join(".venv/bin/python3"), PathBuf::from("python3")] {
        let ok = Command::new(&python)
            .args(["-c", "import openapi_spec_validator"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return python;
        }
    }
    panic!(
        "no python3 with openapi_spec_validator: run scripts/setup (it installs it into .venv/)"
    );
}

#[test]
fn the_openapi_document_is_valid_and_lists_every_api_route_and_method() {
    let dir = scratch("openapi");
    let db = format!("sqlite:{}/db/ldguard.db", dir.display());
    let server = Server::start(&dir, &db);
    let response = ureq::get(&format!("{}/api/openapi.json", server.url))
        .call()
        .expect("served without a token");
    assert_eq!(response.content_type(), "application/json");
    let text = response.into_string().unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );

    // Valid against the OpenAPI specification's schema.
    let file = dir.join("openapi.json");
    std::fs::write(&file, &text).unwrap();
    let out = Command::new(validator_python())
        .args([
            "-c",
            "import json, sys\nfrom openapi_spec_validator import validate\nvalidate(json.load(open(sys.argv[1])))\nprint('valid')",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let documented: BTreeMap<String, BTreeSet<String>> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, ops)| {
            let methods = ops
                .as_object()
                .unwrap()
                .keys()
                .filter(|m| METHODS.contains(&m.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect();
    let served: BTreeSet<String> = router_paths(&db)
        .into_iter()
        .filter(|p| p.starts_with("/api/"))
        .collect();
    let documented_paths: BTreeSet<String> = documented.keys().cloned().collect();
    assert_eq!(
        served, documented_paths,
        "routes served under /api and paths in the document differ"
    );

    // Each path's methods: what the server answers with anything but 405
    // (no token is sent, so nothing changes) is exactly what is documented.
    for (path, methods) in &documented {
        let concrete = path
            .split('/')
            .map(|s| if s.starts_with('{') { "1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let url = format!("{}{concrete}", server.url);
        let routed: BTreeSet<String> = METHODS
            .iter()
            .filter(|m| {
                let status = match ureq::request(&m.to_uppercase(), &url).call() {
                    Ok(r) => r.status(),
                    Err(ureq::Error::Status(code, _)) => code,
                    Err(e) => panic!("{m} {url}: {e}"),
                };
                status != 405
            })
            .map(|m| m.to_string())
            .collect();
        assert_eq!(&routed, methods, "methods of {path}");
        for m in methods {
            let op = &doc["paths"][path][m];
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{m} {path}"
            );
        }
    }
    // The documented types come from the handlers' own structs.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Assignment",
        "Patch",
        "Job",
        "NewJob",
        "VersionInfo",
        "ErrorBody",
    ] {
        assert!(schemas.contains_key(name), "schema {name}");
    }
    assert_eq!(
        doc["components"]["schemas"]["Assignment"]["properties"]["labels"]["type"],
        "object"
    );
}
