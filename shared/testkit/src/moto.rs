//! A local AWS for tests: a moto server (`pip install 'moto[server]'`) on a
//! free loopback port. It speaks the real AWS wire protocols (DynamoDB, S3,
//! SQS, ECS, SSM, EC2, Firehose), so the adapters are tested with the real SDK.
//!
//! The server is started through `sh`, which waits on its stdin: when the test
//! process ends (however it ends) the pipe closes and the server is killed, so
//! no moto outlives its tests. `MotoServer::shared()` is one server for a
//! whole test binary; `MotoServer::start()` a private one. Either way, name
//! tables, buckets and queues uniquely per test ([`unique`]).

use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running moto server.
pub struct MotoServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

/// The Python that starts moto's server with DynamoDB's requests taken one
/// at a time (`scripts/moto-server.py`: moto restores a deep copy of the table
/// when a transaction is cancelled, losing writes made beside it).
pub const LAUNCHER: &str = include_str!("../scripts/moto-server.py");

/// Fake credentials and region for the SDK; moto accepts any.
pub const REGION: &str = "us-east-1";

impl MotoServer {
    /// Start a private server (killed on drop). A moto server is one Python
    /// process, busy on one core at most (about 20 ms a DynamoDB request):
    /// long tests that libtest runs side by side each start their own rather
    /// than queue at the [`shared`](Self::shared) one.
    ///
    /// The server is moto's own, started by [`LAUNCHER`] (DynamoDB's requests
    /// one at a time) with `MOTO_PYTHON` (default `python3`): the Python
    /// that has `moto[server]` installed.
    pub fn start() -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let python = std::env::var("MOTO_PYTHON").unwrap_or_else(|_| "python3".to_owned());
        let moto = format!("{python} (moto[server])");
        // The server runs in the background while `sh` reads its stdin (the
        // pipe); at EOF (the test process is gone) `sh` kills it.
        let script = format!(
            "\"$MOTO_PYTHON\" -c \"$MOTO_LAUNCHER\" -H 127.0.0.1 -p {port} >/dev/null 2>&1 </dev/null & pid=$!; cat >/dev/null; kill $pid 2>/dev/null; wait $pid 2>/dev/null"
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("MOTO_PYTHON", &python)
            .env("MOTO_LAUNCHER", LAUNCHER)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start sh for {moto}: {e}"))?;
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut server = Self { child, endpoint };
        server.wait_ready(&moto)?;
        Ok(server)
    }

    /// One server for the whole test binary (never dropped; it ends with the process).
    pub fn shared() -> &'static MotoServer {
        static SHARED: OnceLock<MotoServer> = OnceLock::new();
        SHARED.get_or_init(|| MotoServer::start().expect("moto server"))
    }

    fn wait_ready(&mut self, moto: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let addr = self.endpoint.trim_start_matches("http://").to_owned();
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "{moto} exited ({status}) before listening: install moto with `pip install 'moto[server]'` \
                     for that Python, or point MOTO_PYTHON at a Python that has it"
                );
            }
            if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
                // moto's own health page: 200 once the app is loaded.
                let _ = s.write_all(b"GET /moto-api/ HTTP/1.0\r\nHost: localhost\r\n\r\n");
                let mut buf = [0u8; 12];
                if std::io::Read::read(&mut s, &mut buf).map(|n| n >= 12 && &buf[9..12] == b"200").unwrap_or(false) {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!("{moto} did not answer on {addr} within 60 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The SDK configuration for this server: its endpoint, [`REGION`], fake
    /// credentials, and the product's HTTPS client and retry settings.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        octoscope::adapters::aws::config_loader()
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_credential_types::Credentials::new("testing", "testing", None, None, "moto"))
            .load()
            .await
    }

    /// Environment for a process that should talk to this server (a spawned
    /// binary, `cargo lambda watch`): endpoint, region and fake credentials.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_REGION", REGION.to_owned()),
            ("AWS_DEFAULT_REGION", REGION.to_owned()),
            ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ]
    }
}

impl MotoServer {
    /// A VPC (DNS hostnames on), a subnet in it and a security group, made
    /// through moto's EC2 Query API (plain form POSTs: the EC2 SDK is not a
    /// dependency). Returns (subnet id, security group id), for ECS tasks in
    /// `awsvpc` mode.
    pub async fn ec2_network(&self) -> anyhow::Result<(String, String)> {
        let vpc = self.ec2("CreateVpc", &[("CidrBlock", "10.0.0.0/16")]).await?;
        let vpc_id = xml_value(&vpc, "vpcId")?;
        self.ec2("ModifyVpcAttribute", &[("VpcId", &vpc_id), ("EnableDnsHostnames.Value", "true")]).await?;
        let subnet = self.ec2("CreateSubnet", &[("VpcId", &vpc_id), ("CidrBlock", "10.0.1.0/24")]).await?;
        let subnet_id = xml_value(&subnet, "subnetId")?;
        let name = unique("octoscope-sg");
        let sg = self
            .ec2(
                "CreateSecurityGroup",
                &[("VpcId", &vpc_id), ("GroupName", &name), ("GroupDescription", "octoscope test tasks")],
            )
            .await?;
        Ok((subnet_id, xml_value(&sg, "groupId")?))
    }

    /// One EC2 Query API call (`Action=...&Version=2016-11-15&...`); the
    /// response XML. moto routes on the credential scope and checks no signature.
    pub async fn ec2(&self, action: &str, params: &[(&str, &str)]) -> anyhow::Result<String> {
        let mut form: Vec<(&str, &str)> = vec![("Action", action), ("Version", "2016-11-15")];
        form.extend_from_slice(params);
        let body =
            form.iter().map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v))).collect::<Vec<_>>().join("&");
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/ec2/aws4_request, SignedHeaders=host, Signature=00"
        );
        let response = crate::http()
            .build()
            .expect("an HTTP client")
            .post(format!("{}/", self.endpoint))
            .header("Authorization", auth)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let body = response.text().await?;
        anyhow::ensure!(status.is_success(), "EC2 {action} answered {status}: {body}");
        Ok(body)
    }
}

/// An HTTP answer, as [`MotoServer::forward`] returns it.
pub struct Forwarded {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl MotoServer {
    /// Pass one request through to the server as is (for a test proxy that
    /// corrects a moto answer before the SDK reads it). `Host` and
    /// `Content-Length` are set anew.
    pub async fn forward(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        body: Vec<u8>,
    ) -> anyhow::Result<Forwarded> {
        let method = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut request = crate::http()
            .build()
            .expect("an HTTP client")
            .request(method, format!("{}{path_and_query}", self.endpoint));
        for (k, v) in headers {
            if !k.eq_ignore_ascii_case("host") && !k.eq_ignore_ascii_case("content-length") {
                request = request.header(k, v);
            }
        }
        let response = request.body(body).send().await?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter(|(k, _)| *k != "content-length" && *k != "transfer-encoding")
            .filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned())))
            .collect();
        Ok(Forwarded { status, headers, body: response.bytes().await?.to_vec() })
    }
}

/// moto for ECS behind a small proxy on a free loopback port that corrects
/// one field type in its answers ([`ecs_container_numbers_as_strings`]):
/// without it the SDK refuses moto's RunTask and DescribeTasks answers.
/// Everything else passes through unchanged. Returns the proxy's endpoint.
pub async fn ecs_proxy() -> String {
    use axum::body::{Body, Bytes};
    use axum::http::{HeaderMap, Method, StatusCode, Uri};
    use axum::response::{IntoResponse, Response};

    async fn pass(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let headers: Vec<(String, String)> =
            headers.iter().filter_map(|(k, v)| Some((k.to_string(), v.to_str().ok()?.to_owned()))).collect();
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        match MotoServer::shared().forward(method.as_str(), path, &headers, body.to_vec()).await {
            Ok(f) => {
                let mut response = Response::builder().status(f.status);
                for (k, v) in &f.headers {
                    response = response.header(k, v);
                }
                response
                    .body(Body::from(ecs_container_numbers_as_strings(&f.body)))
                    .unwrap_or_else(|e| (StatusCode::BAD_GATEWAY, e.to_string()).into_response())
            }
            Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(
        async move { axum::serve(listener, axum::Router::new().fallback(pass)).await.expect("the ECS proxy") },
    );
    format!("http://{addr}")
}

/// An ECS cluster with a Fargate task definition whose one container is
/// `container`, on a fresh VPC network: the ECS client (through
/// [`ecs_proxy`]) and the launcher's settings for them.
pub async fn ecs_fargate(
    sdk: &aws_config::SdkConfig,
    container: &str,
) -> anyhow::Result<(aws_sdk_ecs::Client, octoscope::config::aws::EcsConfig)> {
    use aws_sdk_ecs::types::{Compatibility, ContainerDefinition, NetworkMode};
    let client =
        aws_sdk_ecs::Client::from_conf(aws_sdk_ecs::config::Builder::from(sdk).endpoint_url(ecs_proxy().await).build());
    let cluster = unique("octoscope");
    client.create_cluster().cluster_name(&cluster).send().await?;
    let family = unique(&format!("octoscope-{container}"));
    client
        .register_task_definition()
        .family(&family)
        .requires_compatibilities(Compatibility::Fargate)
        .network_mode(NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder().name(container).image("octoscope-batch-job:latest").memory(512).build(),
        )
        .send()
        .await?;
    let (subnet, sg) = MotoServer::shared().ec2_network().await?;
    let settings = octoscope::config::aws::EcsConfig {
        cluster,
        task_definition: family,
        container: container.into(),
        subnets: vec![subnet],
        security_groups: vec![sg],
        assign_public_ip: false,
    };
    Ok((client, settings))
}

/// A SecureString SSM parameter holding `value`, named uniquely under
/// `/octoscope/test/` after `what`; its name.
pub async fn secure_parameter(sdk: &aws_config::SdkConfig, what: &str, value: &str) -> anyhow::Result<String> {
    let name = format!("/octoscope/test/{}", unique(what));
    aws_sdk_ssm::Client::new(sdk)
        .put_parameter()
        .name(&name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await?;
    Ok(name)
}

/// A Firehose delivery stream (Direct PUT) writing to `bucket` under
/// `prefix`, as Terraform makes it (its S3 destination); its name. moto
/// writes each `PutRecord` at once as one object under
/// `<prefix>YYYY/MM/DD/HH/<stream>-<version>-<time>-<uuid>`, the key layout
/// Firehose uses, and does not check that the bucket exists until then.
pub async fn archive_stream(sdk: &aws_config::SdkConfig, bucket: &str, prefix: &str) -> anyhow::Result<String> {
    use aws_sdk_firehose::types::{CompressionFormat, DeliveryStreamType, ExtendedS3DestinationConfiguration};
    let name = unique("octoscope-archive");
    let destination = ExtendedS3DestinationConfiguration::builder()
        .role_arn("arn:aws:iam::123456789012:role/octoscope-archive-firehose")
        .bucket_arn(format!("arn:aws:s3:::{bucket}"))
        .prefix(prefix)
        .error_output_prefix("firehose-errors/")
        .compression_format(CompressionFormat::Uncompressed)
        .build()?;
    aws_sdk_firehose::Client::new(sdk)
        .create_delivery_stream()
        .delivery_stream_name(&name)
        .delivery_stream_type(DeliveryStreamType::DirectPut)
        .extended_s3_destination_configuration(destination)
        .send()
        .await?;
    Ok(name)
}

/// A reader of a table's DynamoDB stream on moto (DynamoDB Streams'
/// `DescribeStream`, `GetShardIterator`, `GetRecords`, over moto's JSON
/// protocol): each [`next_batch`](Self::next_batch) hands over the records
/// written since the last, in the shape of a Lambda `DynamoDbEvent`
/// (`{"Records": [...]}`), as the event source mapping would.
///
/// It reads each shard by position, with a new iterator for every read,
/// not by the `NextShardIterator` moto answers. moto (5.2) runs each
/// `TransactWriteItems` against a deep copy of the table, stream records
/// included, and puts that copy back when the transaction is cancelled (a
/// condition failed); a write that landed meanwhile from another request is
/// gone again, the shard object is replaced, and a record's sequence number
/// no longer says where it is. A reader that followed `NextShardIterator`
/// was once handed the same record 90 times a second until its test was
/// ended 15 minutes later (the product's concurrent, conditional writes make
/// such cancellations routine). On moto, record `n` of a shard is at
/// `StartingSequenceNumber + n`, whatever number it carries; an iterator
/// made for each read is made on the shard the table holds now.
pub struct StreamReader {
    http: reqwest::Client,
    endpoint: String,
    arn: String,
    /// Each shard read so far: its starting sequence number and the records read.
    shards: std::collections::BTreeMap<String, ShardPosition>,
}

/// Where a reader of a moto stream is in one shard ([`StreamReader`] says why
/// by position): the shard's starting sequence number and the records read.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardPosition {
    pub start: u128,
    pub read: u128,
}

impl ShardPosition {
    /// The position of a shard described by `DescribeStream` (its
    /// `SequenceNumberRange.StartingSequenceNumber`), nothing read.
    pub fn of(starting_sequence_number: &str) -> anyhow::Result<Self> {
        let start = starting_sequence_number
            .parse()
            .map_err(|e| anyhow::anyhow!("starting sequence number {starting_sequence_number:?}: {e}"))?;
        Ok(Self { start, read: 0 })
    }

    /// The sequence number to ask an `AT_SEQUENCE_NUMBER` iterator for: the first record not read.
    pub fn next(&self) -> String {
        (self.start + self.read).to_string()
    }
}

impl StreamReader {
    /// The stream of `table` (created with one), read from its beginning.
    pub async fn of_table(endpoint: &str, table: &str) -> anyhow::Result<Self> {
        let mut r = Self {
            http: crate::http().build().expect("an HTTP client"),
            endpoint: endpoint.to_owned(),
            arn: String::new(),
            shards: Default::default(),
        };
        let described = r.call("DynamoDB_20120810.DescribeTable", serde_json::json!({"TableName": table})).await?;
        r.arn = described["Table"]["LatestStreamArn"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("table {table} has no stream"))?
            .to_owned();
        Ok(r)
    }

    async fn call(&self, target: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
        StreamReader::post(&self.http, &self.endpoint, target, body).await
    }

    /// Up to `limit` records written since the last batch (every shard), as a `DynamoDbEvent`.
    pub async fn next_batch(&mut self, limit: usize) -> anyhow::Result<serde_json::Value> {
        let stream =
            self.call("DynamoDBStreams_20120810.DescribeStream", serde_json::json!({"StreamArn": self.arn})).await?;
        for shard in stream["StreamDescription"]["Shards"].as_array().into_iter().flatten() {
            let Some(id) = shard["ShardId"].as_str() else { continue };
            if !self.shards.contains_key(id) {
                let start = shard["SequenceNumberRange"]["StartingSequenceNumber"].as_str().unwrap_or_default();
                self.shards.insert(id.to_owned(), ShardPosition::of(start)?);
            }
        }
        let mut records = Vec::new();
        let shards: Vec<(String, ShardPosition)> = self.shards.iter().map(|(id, p)| (id.clone(), *p)).collect();
        for (id, position) in shards {
            let want = limit.saturating_sub(records.len());
            if want == 0 {
                break;
            }
            let it = self
                .call(
                    "DynamoDBStreams_20120810.GetShardIterator",
                    serde_json::json!({"StreamArn": self.arn, "ShardId": id, "ShardIteratorType": "AT_SEQUENCE_NUMBER",
                        "SequenceNumber": position.next()}),
                )
                .await?;
            let it = it["ShardIterator"].as_str().ok_or_else(|| anyhow::anyhow!("no shard iterator"))?;
            let body = serde_json::json!({"ShardIterator": it, "Limit": want});
            let page = self.call("DynamoDBStreams_20120810.GetRecords", body).await?;
            let page = page["Records"].as_array().cloned().unwrap_or_default();
            if let Some(p) = self.shards.get_mut(&id) {
                p.read += page.len() as u128;
            }
            for r in &page {
                // The fields a Lambda event record carries.
                let d = &r["dynamodb"];
                let mut change = serde_json::json!({
                    "Keys": d["Keys"], "SequenceNumber": d["SequenceNumber"], "SizeBytes": d["SizeBytes"].as_i64().unwrap_or(0),
                    "StreamViewType": d["StreamViewType"],
                });
                for image in ["NewImage", "OldImage"] {
                    if d.get(image).is_some() {
                        change[image] = d[image].clone();
                    }
                }
                let mut record = serde_json::json!({
                    "eventID": r["eventID"], "eventName": r["eventName"], "eventSource": "aws:dynamodb",
                    "eventVersion": "1.1", "awsRegion": REGION, "eventSourceARN": self.arn, "dynamodb": change,
                });
                if let Some(identity) = r.get("userIdentity") {
                    record["userIdentity"] = identity.clone();
                }
                records.push(record);
            }
        }
        Ok(serde_json::json!({ "Records": records }))
    }

    async fn post(
        http: &reqwest::Client,
        endpoint: &str,
        target: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/dynamodb/aws4_request, SignedHeaders=host, Signature=0"
        );
        let response = http
            .post(endpoint)
            .header("X-Amz-Target", target)
            .header("Content-Type", "application/x-amz-json-1.0")
            .header("Authorization", auth)
            .body(body.to_string())
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        anyhow::ensure!(status.is_success(), "{target}: {status} {text}");
        Ok(serde_json::from_str(&text)?)
    }
}

/// moto (5.2) answers ECS `RunTask` / `DescribeTasks` with each container's
/// `cpu` and `memory` as JSON numbers, copied from the task definition; in
/// the ECS API (and so in the Rust SDK, which refuses the answer) they are
/// strings. This turns them into strings, changing nothing else.
pub fn ecs_container_numbers_as_strings(body: &[u8]) -> Vec<u8> {
    let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(body) else { return body.to_vec() };
    let tasks = json.get_mut("tasks").and_then(|t| t.as_array_mut()).into_iter().flatten();
    for container in tasks.filter_map(|t| t.get_mut("containers")?.as_array_mut()).flatten() {
        for field in ["cpu", "memory", "memoryReservation"] {
            if let Some(v) = container.get_mut(field).filter(|v| v.is_number()) {
                *v = serde_json::Value::String(v.to_string());
            }
        }
    }
    serde_json::to_vec(&json).expect("JSON serialises")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of the first `<tag>...</tag>` in an XML answer.
fn xml_value(xml: &str, tag: &str) -> anyhow::Result<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open).ok_or_else(|| anyhow::anyhow!("no <{tag}> in {xml}"))? + open.len();
    let end = xml[start..].find('<').ok_or_else(|| anyhow::anyhow!("unterminated <{tag}> in {xml}"))?;
    Ok(xml[start..start + end].to_owned())
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        // Closing stdin makes the wrapper kill the server.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// A name no other test uses: `prefix-<8 hex>` (valid for tables, buckets, queues).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}
