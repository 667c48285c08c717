use super::*;

#[test]
fn operation_names_come_from_the_document() {
    assert_eq!(operation_name("# c\nquery PullRequests($owner: String!) {"), "PullRequests");
    assert_eq!(operation_name("query RepoSnapshots($o0: String!) {"), "RepoSnapshots");
}

#[test]
fn graphql_rate_limits_are_told_from_other_errors() {
    assert!(graphql_rate_limited(br#"{"errors":[{"type":"RATE_LIMITED","message":"API rate limit exceeded"}]}"#));
    assert!(!graphql_rate_limited(br#"{"data":{"title":"RATE_LIMITED"}}"#));
    assert!(!graphql_rate_limited(br#"{"errors":[{"type":"NOT_FOUND","message":"x"}]}"#));
}

#[test]
fn error_messages_are_read_from_json_or_body() {
    assert_eq!(error_message(br#"{"message":"Bad credentials"}"#), "Bad credentials");
    assert_eq!(error_message(b"oops"), "oops");
}

#[test]
fn redirects_are_followed_only_on_the_api_s_own_host() {
    // GIVEN GitHub's REST base, and an Enterprise Server's under /api/v3
    let base: http::Uri = "https://api.github.com".parse().unwrap();
    let ghes: http::Uri = "http://ghe.example:8080/api/v3".parse().unwrap();
    // THEN the same scheme, host (any case) and port give the path and query to ask
    assert_eq!(
        same_origin(&base, "https://api.github.com/repositories/1/actions/runs?per_page=1"),
        Ok("/repositories/1/actions/runs?per_page=1".to_owned())
    );
    assert_eq!(same_origin(&base, "https://API.GitHub.com:443/repositories/1"), Ok("/repositories/1".to_owned()));
    assert_eq!(same_origin(&base, "/repositories/1/deployments"), Ok("/repositories/1/deployments".to_owned()));
    assert_eq!(
        same_origin(&ghes, "http://ghe.example:8080/api/v3/repositories/1"),
        Ok("/api/v3/repositories/1".to_owned())
    );
    // AND another host, port or scheme, credentials in the URL, a scheme-relative or unreadable one are refused
    for bad in [
        "https://evil.example/repositories/1",
        "https://api.github.com.evil.example/repositories/1",
        "https://api.github.com:8443/repositories/1",
        "http://api.github.com/repositories/1",
        "https://user@api.github.com/repositories/1",
        "//evil.example/repositories/1",
        "not a url",
    ] {
        assert!(same_origin(&base, bad).is_err(), "{bad} was followed");
    }
    assert!(same_origin(&ghes, "http://ghe.example/api/v3/repositories/1").is_err());
}

fn cached(body: &str) -> Cached {
    Cached { etag: http::HeaderValue::from_static("\"e\""), headers: HeaderMap::new(), body: body.as_bytes().to_vec() }
}

#[test]
fn the_etag_cache_keeps_the_newest_within_its_bounds() {
    // GIVEN a cache of 2 entries and 64 bytes
    let cache = EtagCache::new(2, 64);
    // WHEN three answers are kept
    cache.put("/a", cached("aaaa"));
    cache.put("/b", cached("bbbb"));
    cache.put("/c", cached("cccc"));
    // THEN the oldest went first
    assert!(cache.get("/a").is_none());
    assert_eq!(cache.get("/c").map(|c| c.body), Some(b"cccc".to_vec()));
    assert_eq!(cache.len(), 2);
    // AND a new answer for a kept URL replaces it rather than adding one
    cache.put("/c", cached("CCCC"));
    assert_eq!((cache.len(), cache.get("/c").map(|c| c.body)), (2, Some(b"CCCC".to_vec())));
    // AND bytes bound it too: a body over an eighth of the bytes is not kept, and the total stays within them
    cache.put("/big", cached(&"x".repeat(9)));
    assert!(cache.get("/big").is_none());
    let small = EtagCache::new(100, 64);
    for i in 0..20 {
        small.put(&format!("/{i}"), cached("12345678"));
    }
    assert_eq!(small.len(), 8, "64 bytes hold 8 bodies of 8");
}

#[test]
fn a_reading_token_asks_for_the_reads_permissions_only_and_never_above_the_installation_s() {
    let granted: std::collections::BTreeMap<String, String> = [
        ("metadata", "read"),
        ("pull_requests", "write"),
        ("contents", "write"),
        ("actions", "read"),
        ("repository_hooks", "read"),
        ("organization_hooks", "admin"),
        ("issues", "write"),
        ("administration", "write"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let asked = read_permissions(&granted).expect("some permissions");
    let asked: Vec<(&str, &str)> = asked.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Write and admin grants come down to what the reads need; a lower grant stays as it is;
    // what the reads do not use (issues, administration) and what is not granted (checks) are not asked.
    assert_eq!(
        asked,
        [
            ("actions", "read"),
            ("contents", "read"),
            ("metadata", "read"),
            ("organization_hooks", "write"),
            ("pull_requests", "read"),
            ("repository_hooks", "read"),
        ]
    );
    // An installation that lists nothing the reads use: no narrowing asked for.
    assert_eq!(read_permissions(&std::collections::BTreeMap::new()), None);
}
