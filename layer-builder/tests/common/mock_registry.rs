//! A minimal distribution-v2 registry that only accepts bearer tokens from
//! its own token endpoint (which wants Basic credentials), to test the
//! token flow that Debian's docker-registry cannot serve without an
//! external auth server. One request per connection.
#![allow(dead_code)]

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

#[derive(Default)]
pub struct State {
    /// repo → blob digests in it
    pub repos: HashMap<String, HashSet<String>>,
    pub blobs: HashMap<String, Vec<u8>>,
    /// (repo, reference) → (media type, bytes)
    pub manifests: HashMap<(String, String), (String, Vec<u8>)>,
    pub uploads: HashMap<String, String>,
    /// Digests received through uploads, in order.
    pub uploaded: Vec<String>,
    pub mounted: Vec<String>,
    pub token_scopes: Vec<String>,
    pub unauthorized: usize,
}

pub struct MockRegistry {
    pub host: String,
    pub anonymous: bool,
    pub state: Arc<Mutex<State>>,
}

const USER: &str = "alice";
const PASS: &str = "wonder land";

impl MockRegistry {
    pub fn start() -> MockRegistry {
        Self::start_with(false)
    }

    /// A registry that asks for no credentials at all.
    pub fn start_anonymous() -> MockRegistry {
        Self::start_with(true)
    }

    fn start_with(anonymous: bool) -> MockRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let (st, h) = (state.clone(), host.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (st, h) = (st.clone(), h.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &st, &h, anonymous);
                });
            }
        });
        MockRegistry {
            host,
            anonymous,
            state,
        }
    }

    pub fn auth_json(&self) -> serde_json::Value {
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"));
        serde_json::json!({"auths": {&self.host: {"auth": b64}}})
    }
}

struct Request {
    method: String,
    path: String,
    query: HashMap<String, String>,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

fn read_request(conn: &TcpStream) -> std::io::Result<Request> {
    let mut r = BufReader::new(conn);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let mut body = Vec::new();
    if let Some(n) = headers
        .get("content-length")
        .and_then(|v| v.parse::<usize>().ok())
    {
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    }
    let (path, q) = target.split_once('?').unwrap_or((&target, ""));
    let query = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), decode(v))
        })
        .collect();
    Ok(Request {
        method,
        path: path.to_string(),
        query,
        headers,
        body,
    })
}

fn respond(
    mut conn: &TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    head: bool,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    conn.write_all(out.as_bytes())?;
    if !head {
        conn.write_all(body)?;
    }
    conn.flush()
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn serve(
    conn: TcpStream,
    state: &Mutex<State>,
    host: &str,
    anonymous: bool,
) -> std::io::Result<()> {
    let req = read_request(&conn)?;
    let challenge = (
        "WWW-Authenticate",
        format!("Bearer realm=\"http://{host}/token\",service=\"mock\""),
    );
    let head = req.method == "HEAD";
    if req.path == "/token" {
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASS}"))
        );
        if req.headers.get("authorization") != Some(&want) {
            return respond(
                &conn,
                401,
                &[],
                b"{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"bad credentials\"}]}",
                false,
            );
        }
        let scope = req.query.get("scope").cloned().unwrap_or_default();
        state.lock().unwrap().token_scopes.push(scope.clone());
        let body =
            serde_json::to_vec(&serde_json::json!({"token": format!("tok {scope}")})).unwrap();
        return respond(
            &conn,
            200,
            &[("Content-Type", "application/json".into())],
            &body,
            false,
        );
    }
    let authorized = match req.headers.get("authorization") {
        None => anonymous,
        Some(a) => a.starts_with("Bearer tok "),
    };
    if !authorized {
        state.lock().unwrap().unauthorized += 1;
        return respond(
            &conn,
            401,
            &[challenge],
            b"{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"authentication required\"}]}",
            head,
        );
    }
    if req.path == "/v2/" {
        return respond(&conn, 200, &[], b"{}", head);
    }
    if let Some(id) = req.path.strip_prefix("/upload/") {
        let mut st = state.lock().unwrap();
        let repo = st.uploads.remove(id).unwrap_or_default();
        let digest = req.query.get("digest").cloned().unwrap_or_default();
        if sha(&req.body) != digest {
            return respond(
                &conn,
                400,
                &[],
                b"{\"errors\":[{\"code\":\"DIGEST_INVALID\",\"message\":\"digest mismatch\"}]}",
                false,
            );
        }
        st.uploaded.push(digest.clone());
        st.blobs.insert(digest.clone(), req.body);
        st.repos.entry(repo).or_default().insert(digest);
        return respond(&conn, 201, &[], b"", false);
    }
    let rest = req.path.strip_prefix("/v2/").unwrap_or("");
    let mut st = state.lock().unwrap();
    if let Some((repo, reference)) = rest.split_once("/manifests/") {
        let key = (repo.to_string(), reference.to_string());
        if req.method == "PUT" {
            let mt = req.headers.get("content-type").cloned().unwrap_or_default();
            let d = sha(&req.body);
            st.manifests.insert(
                (repo.to_string(), d.clone()),
                (mt.clone(), req.body.clone()),
            );
            st.manifests.insert(key, (mt, req.body));
            return respond(&conn, 201, &[("Docker-Content-Digest", d)], b"", false);
        }
        return match st.manifests.get(&key) {
            Some((mt, b)) => respond(&conn, 200, &[("Content-Type", mt.clone())], b, head),
            None => respond(
                &conn,
                404,
                &[],
                b"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\"}]}",
                head,
            ),
        };
    }
    if let Some((repo, digest)) = rest.split_once("/blobs/") {
        if digest == "uploads/" {
            if let (Some(m), Some(from)) = (req.query.get("mount"), req.query.get("from")) {
                if st.repos.get(from.as_str()).is_some_and(|s| s.contains(m)) {
                    st.mounted.push(m.clone());
                    st.repos
                        .entry(repo.to_string())
                        .or_default()
                        .insert(m.clone());
                    return respond(&conn, 201, &[], b"", false);
                }
            }
            let id = format!("{}", st.uploads.len() + st.uploaded.len() + 1000);
            st.uploads.insert(id.clone(), repo.to_string());
            return respond(
                &conn,
                202,
                &[("Location", format!("/upload/{id}"))],
                b"",
                false,
            );
        }
        let present = st.repos.get(repo).is_some_and(|s| s.contains(digest));
        return match (present, st.blobs.get(digest)) {
            (true, Some(b)) => respond(&conn, 200, &[], b, head),
            _ => respond(
                &conn,
                404,
                &[],
                b"{\"errors\":[{\"code\":\"BLOB_UNKNOWN\",\"message\":\"blob unknown\"}]}",
                head,
            ),
        };
    }
    respond(&conn, 404, &[], b"", head)
}
