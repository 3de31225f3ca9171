//! What the server serves to browsers, over real HTTP: the client library always, the call
//! page and the token endpoint only where they belong (the browsers themselves are in
//! `tests/browser/`).

use jrtc::{Call, Server};
use serde_json::{Value, json};

/// A production server: a secret of its own, no development mode.
fn production() -> jrtc::ServerBuilder {
    Server::builder().secret(b"the web tests' production secret, 32 bytes+".to_vec())
}

async fn get(url: &str) -> (u16, String, String) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, response.text().await.unwrap())
}

async fn dev_token(base: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{base}/dev/token"))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn a_development_server_serves_the_page_the_client_and_tokens() {
    let server = Server::builder().development().start().await.unwrap();
    let base = server.http_url();
    let page = reqwest::get(format!("{base}/")).await.unwrap();
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    let (status, kind, body) = get(&format!("{base}/")).await;
    assert_eq!((status, kind.as_str()), (200, "text/html; charset=utf-8"));
    assert!(body.contains("<script type=\"module\" src=\"/app.js\">"));
    for (path, want) in [
        ("/jrtc.js", "text/javascript"),
        ("/jrtc.d.ts", "application/typescript"),
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
    ] {
        let (status, kind, body) = get(&format!("{base}{path}")).await;
        assert_eq!(status, 200, "{path}");
        assert!(kind.starts_with(want), "{path}: {kind}");
        assert!(!body.is_empty());
    }
    let (_, _, js) = get(&format!("{base}/jrtc.js")).await;
    assert!(js.contains("export class Call"));

    assert_eq!(get(&format!("{base}/dev/token")).await.0, 200);
    // A token for a made-up user named after the display name; it logs in.
    let (status, answer) = dev_token(&base, json!({"name": "Ada Lovelace"})).await;
    assert_eq!(status, 200, "{answer}");
    let user = answer["user_id"].as_str().unwrap().to_owned();
    assert!(user.starts_with("ada-lovelace-"), "{user}");
    let call = Call::connect(&server.url(), answer["token"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(call.user_id().as_str(), user);
    call.close().await;
    // The same user again (a page refreshing its token).
    let (status, again) = dev_token(&base, json!({"name": "Ada", "user_id": user})).await;
    assert_eq!(
        (status, again["user_id"].as_str()),
        (200, Some(user.as_str()))
    );

    // Bad requests are refused, with the reason.
    for body in [
        json!({"name": "x", "user_id": "../etc"}),
        json!({"name": "x".repeat(200)}),
        json!({"name": "x", "grants": "all"}),
        json!([1, 2]),
    ] {
        let (status, answer) = dev_token(&base, body.clone()).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some("invalid_param")),
            "{body}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_production_server_serves_the_client_but_no_tokens_and_the_page_only_when_asked() {
    let server = production().start().await.unwrap();
    let base = server.http_url();
    assert_eq!(get(&format!("{base}/")).await.0, 404);
    assert_eq!(get(&format!("{base}/app.js")).await.0, 404);
    assert_eq!(get(&format!("{base}/jrtc.js")).await.0, 200);
    let (status, answer) = dev_token(&base, json!({"name": "Mallory"})).await;
    assert_eq!((status, answer["code"].as_str()), (404, Some("not_found")));
    assert_eq!(get(&format!("{base}/dev/token")).await.0, 404);
    server.shutdown().await;

    let server = production().call_page(true).start().await.unwrap();
    let base = server.http_url();
    assert_eq!(get(&format!("{base}/")).await.0, 200);
    assert_eq!(dev_token(&base, json!({"name": "Mallory"})).await.0, 404);
    server.shutdown().await;

    // And a development server may turn its page off.
    let server = Server::builder()
        .development()
        .call_page(false)
        .start()
        .await
        .unwrap();
    assert_eq!(get(&format!("{}/", server.http_url())).await.0, 404);
    server.shutdown().await;
}

/// The response to a preflight of another origin's page for `path`, sending JSON with `method`.
async fn preflight(base: &str, path: &str, method: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{base}{path}"))
        .header("origin", "http://127.0.0.1:9")
        .header("access-control-request-method", method)
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

/// Pages of other origins load the client library from any server, and on a development server
/// get tokens from `/dev/token` (its preflight answered); a production server answers nothing
/// of the kind, and the call page's own files stay same-origin.
#[tokio::test]
async fn other_origins_load_the_client_and_a_development_servers_tokens() {
    let server = Server::builder().development().start().await.unwrap();
    let base = server.http_url();
    for path in ["/jrtc.js", "/jrtc.d.ts"] {
        let response = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(
            header(&response, "access-control-allow-origin").as_deref(),
            Some("*"),
            "{path}"
        );
        assert_eq!(
            header(&response, "cross-origin-resource-policy").as_deref(),
            Some("cross-origin")
        );
    }
    for path in ["/", "/app.js", "/style.css"] {
        let response = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(
            header(&response, "access-control-allow-origin"),
            None,
            "{path}"
        );
    }
    let response = preflight(&base, "/dev/token", "POST").await;
    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert!(
        header(&response, "access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );
    assert_eq!(
        header(&response, "access-control-allow-headers").as_deref(),
        Some("content-type")
    );
    let response = reqwest::Client::new()
        .post(format!("{base}/dev/token"))
        .header("origin", "http://127.0.0.1:9")
        .header("content-type", "application/json")
        .body(json!({"name": "Ada"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    server.shutdown().await;

    let server = production().call_page(true).start().await.unwrap();
    let base = server.http_url();
    let response = preflight(&base, "/dev/token", "POST").await;
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    // The API is for backends, not pages: no preflight is answered.
    let response = preflight(&base, "/api/rooms", "POST").await;
    assert_eq!(header(&response, "access-control-allow-origin"), None);
    let response = reqwest::get(format!("{base}/jrtc.js")).await.unwrap();
    assert_eq!(
        header(&response, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    server.shutdown().await;
}
