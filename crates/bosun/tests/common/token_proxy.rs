//! A bearer-token front for a real registry, standing in for Docker Hub's
//! token service (none is packaged in Debian): requests without
//! `Authorization: Bearer <token>` get a 401 challenge naming `/token` as the
//! realm; `/token` hands out tokens (optionally only for basic credentials);
//! everything else is forwarded, one request per connection, to the registry.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use testkit::Cleanup;

pub struct TokenProxy {
    pub addr: String,
    /// The `scope` of every token request, in order.
    pub scopes: Arc<Mutex<Vec<String>>>,
}

/// Tokens name what they allow, as a real token service's claims would.
const PULL_TOKEN: &str = "bosun-test-pull";
const PUSH_TOKEN: &str = "bosun-test-push";

impl TokenProxy {
    /// Starts the proxy for `upstream`; with `basic`, `/token` wants that
    /// base64 `user:password`.
    pub fn start(upstream: &str, basic: Option<&str>, cleanup: &mut Cleanup) -> TokenProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (up, me, sc, st) = (
            upstream.to_string(),
            addr.clone(),
            scopes.clone(),
            stop.clone(),
        );
        let basic = basic.map(str::to_string);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (up, me, sc, basic) = (up.clone(), me.clone(), sc.clone(), basic.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &up, &me, &sc, basic.as_deref());
                });
            }
        });
        let wake = addr.clone();
        cleanup.defer("stop token proxy", move || {
            stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect(&wake);
        });
        TokenProxy { addr, scopes }
    }
}

fn serve(
    conn: TcpStream,
    upstream: &str,
    me: &str,
    scopes: &Mutex<Vec<String>>,
    basic: Option<&str>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        head.push(line.trim_end().to_string());
    }
    let request = head.first().cloned().unwrap_or_default();
    let header = |name: &str| {
        head.iter().skip(1).find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let mut conn = conn;
    let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
    if path.starts_with("/token") {
        let wanted = basic.map(|b| format!("Basic {b}"));
        if wanted.is_some() && header("authorization") != wanted {
            return respond(&mut conn, "401 Unauthorized", &[], "");
        }
        let scope = path
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("scope="))
            .unwrap_or("");
        let scope = scope
            .replace("%3A", ":")
            .replace("%2C", ",")
            .replace("%2F", "/");
        let token = if scope.ends_with("push") {
            PUSH_TOKEN
        } else {
            PULL_TOKEN
        };
        scopes.lock().unwrap().push(scope);
        let body = format!("{{\"token\":\"{token}\"}}");
        return respond(
            &mut conn,
            "200 OK",
            &["Content-Type: application/json"],
            &body,
        );
    }
    let reading = request.starts_with("GET") || request.starts_with("HEAD");
    let auth = header("authorization").unwrap_or_default();
    let allowed = auth == format!("Bearer {PUSH_TOKEN}")
        || (reading && auth == format!("Bearer {PULL_TOKEN}"));
    if !allowed {
        let repo = path
            .trim_start_matches("/v2/")
            .split("/manifests/")
            .next()
            .unwrap_or("");
        let repo = repo.split("/blobs/").next().unwrap_or("");
        let action = if reading { "pull" } else { "pull,push" };
        let challenge = format!(
            "WWW-Authenticate: Bearer realm=\"http://{me}/token\",service=\"bosun-test\",scope=\"repository:{repo}:{action}\""
        );
        return respond(&mut conn, "401 Unauthorized", &[&challenge], "");
    }
    let mut up = TcpStream::connect(upstream)?;
    let mut out = format!("{request}\r\n");
    for h in head.iter().skip(1) {
        let name = h.split(':').next().unwrap_or("").to_ascii_lowercase();
        if name != "connection" && name != "authorization" {
            out.push_str(&format!("{h}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    up.write_all(out.as_bytes())?;
    up.write_all(&body)?;
    std::io::copy(&mut up, &mut conn)?;
    conn.shutdown(std::net::Shutdown::Both)
}

fn respond(
    conn: &mut TcpStream,
    status: &str,
    headers: &[&str],
    body: &str,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        out.push_str(&format!("{h}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(body);
    conn.write_all(out.as_bytes())
}
