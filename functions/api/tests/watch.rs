//! The api function under `cargo lambda watch` (cargo-lambda's local Lambda
//! runtime emulator) and `cargo lambda invoke` with an API Gateway v2 event
//! file, its environment pointing at moto: the real binary, its real init.
//!
//! Needs cargo-lambda (`pip install cargo-lambda`); without it this fails
//! saying so.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use octoscope::adapters::aws::dynamodb::create_table;
use octoscope_testkit::moto::{MotoServer, unique};
use serde_json::Value;

struct Watch(Child);

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cargo_lambda_present() {
    let ok = Command::new("cargo").args(["lambda", "--version"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "cargo-lambda is missing: install it with `pip install cargo-lambda` (CI does)");
}

#[tokio::test(flavor = "multi_thread")]
async fn cargo_lambda_invoke_gets_the_health_of_the_store_on_moto() {
    cargo_lambda_present();
    // GIVEN a table on moto and `cargo lambda watch` serving the api function with the gateway's auth
    let moto = MotoServer::shared();
    let sdk = octoscope::adapters::aws::config_loader()
        .endpoint_url(&moto.endpoint)
        .region(aws_config::Region::new(octoscope_testkit::moto::REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "moto"))
        .load()
        .await;
    let table = unique("octoscope");
    create_table(&aws_sdk_dynamodb::Client::new(&sdk), &table).await.unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut env: Vec<String> = moto.env().into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.extend([
        format!("OCTOSCOPE_TABLE={table}"),
        "OCTOSCOPE_API_AUTH=gateway".to_owned(),
        "RUST_LOG=info".to_owned(),
    ]);
    let mut watch = Command::new("cargo");
    watch
        .current_dir(&root)
        .args(["lambda", "watch", "--package", "api", "--invoke-address", "127.0.0.1", "--invoke-port", &port])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for e in &env {
        watch.args(["--env-var", e]);
    }
    let _watch = Watch(watch.spawn().unwrap());

    // WHEN the health event file is invoked (the first invoke waits for the build)
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/apigw-v2-get-health.json");
    let deadline = Instant::now() + Duration::from_secs(900);
    let answer = loop {
        let out = Command::new("cargo")
            .current_dir(&root)
            .args(["lambda", "invoke", "api", "--invoke-address", "127.0.0.1", "--invoke-port", &port, "--data-file"])
            .arg(&data)
            .output()
            .unwrap();
        if out.status.success() {
            break String::from_utf8(out.stdout).unwrap();
        }
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(Instant::now() < deadline, "cargo lambda invoke kept failing: {said}");
        tokio::time::sleep(Duration::from_secs(2)).await;
    };

    // THEN the function answered 200 with the store's health, read from DynamoDB on moto
    let response: Value = serde_json::from_str(answer.trim()).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(response["statusCode"], 200, "{response}");
    let body: Value = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"], "ok", "{body}");
}
