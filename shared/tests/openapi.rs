//! The API contract: `shared/docs/openapi.json` is the document the code
//! generates, so the dashboard's types (generated from that file) and any
//! client see what the server does.

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

#[test]
fn the_committed_document_is_the_generated_one() {
    // GIVEN the document the Router's handlers and views describe
    let generated = octoscope::api::openapi_json();
    if std::env::var_os("OCTOSCOPE_UPDATE_OPENAPI").is_some() {
        std::fs::write(COMMITTED, generated).expect("write shared/docs/openapi.json");
        return;
    }
    // WHEN the committed copy is read THEN it is the same, byte for byte, and
    // so is the copy the servers were built with (which /api/openapi.json serves)
    let committed = std::fs::read_to_string(COMMITTED).expect("read shared/docs/openapi.json");
    assert!(
        committed == generated && octoscope::api::openapi::SERVED == generated,
        "shared/docs/openapi.json is not the document the code generates. Regenerate it with \
         `make openapi` (OCTOSCOPE_UPDATE_OPENAPI=1 cargo test -p octoscope-core --test openapi), \
         then the dashboard's types with `cd frontend && npm run generate:types`, and commit both."
    );
}

#[test]
fn the_document_is_openapi_3_1_with_the_contract_of_every_operation() {
    let doc: serde_json::Value = serde_json::from_str(octoscope::api::openapi_json()).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "Octoscope API");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            // GIVEN any operation THEN its success and its errors are described
            assert!(responses.keys().any(|s| s.starts_with('2')), "{method} {path}");
            assert!(responses.contains_key("401") && responses.contains_key("500"), "{method} {path}");
            // AND a write says what a server without tokens refuses
            if path != "/webhook" && matches!(method.as_str(), "post" | "put" | "delete") {
                assert!(responses.contains_key("403") && responses.contains_key("415"), "{method} {path}");
            }
            if path != "/webhook" {
                assert!(op.get("security").is_none(), "{path} takes the document's bearer security");
            }
        }
    }
    // AND the webhook needs no bearer token
    assert_eq!(doc["paths"]["/webhook"]["post"]["security"], serde_json::json!([]));
}
