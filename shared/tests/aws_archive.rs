//! The batched raw archive against a local moto server: deliveries put
//! through a Firehose delivery stream (`FirehoseArchive`), read back from the
//! S3 objects it wrote (`BatchedS3Archive`), through the real SDKs.
#![cfg(all(feature = "firehose", feature = "s3"))]

use std::sync::Arc;

use aws_config::SdkConfig;
use chrono::{TimeDelta, Utc};
use octoscope::adapters::aws::firehose::FirehoseArchive;
use octoscope::adapters::aws::s3_batched::BatchedS3Archive;
use octoscope::domain::*;
use octoscope::ports::{ArchiveCursor, RawArchive};
use octoscope_testkit::moto::{MotoServer, archive_stream, unique};

const PREFIX: &str = "batched/";

async fn aws() -> SdkConfig {
    MotoServer::shared().sdk_config().await
}

fn s3(cfg: &SdkConfig) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(cfg).force_path_style(true).build())
}

fn delivery(n: u32, body: Vec<u8>) -> RawDelivery {
    RawDelivery {
        key: DeliveryKey {
            hook_id: HookId::parse("123456").unwrap(),
            delivery_id: DeliveryId::parse(&format!("0000{n:04}-aaaa-11ee-8000-000000000000")).unwrap(),
        },
        event: EventName::parse("pull_request").unwrap(),
        received_at: Utc::now(),
        content_type: Some("application/json".into()),
        body,
    }
}

/// A bucket, the stream into it, the archive over both, and the bucket's name.
async fn archive(cfg: &SdkConfig) -> (FirehoseArchive, String) {
    let bucket = unique("octoscope-archive");
    s3(cfg).create_bucket().bucket(&bucket).send().await.unwrap();
    let stream = archive_stream(cfg, &bucket, PREFIX).await.unwrap();
    let reader = Arc::new(BatchedS3Archive::new(s3(cfg), &bucket, PREFIX).with_list_page_size(2));
    (FirehoseArchive::new(aws_sdk_firehose::Client::new(cfg), stream).with_reader(reader), bucket)
}

async fn keys(cfg: &SdkConfig, bucket: &str) -> Vec<String> {
    let out = s3(cfg).list_objects_v2().bucket(bucket).send().await.unwrap();
    out.contents().iter().filter_map(|o| o.key().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scan_pages_through_batched_objects_in_order_and_resumes_at_its_cursor() {
    // GIVEN five deliveries put through the stream (moto: one object each)
    let cfg = aws().await;
    let (archive, bucket) = archive(&cfg).await;
    let put: Vec<RawDelivery> = (0..5).map(|n| delivery(n, format!(r#"{{"n":{n}}}"#).into_bytes())).collect();
    for d in &put {
        archive.put(d).await.unwrap();
    }
    assert_eq!(keys(&cfg, &bucket).await.len(), 5);

    // WHEN scanned two at a time, each page resuming at the last cursor
    let mut got = Vec::new();
    let mut after: Option<ArchiveCursor> = None;
    loop {
        let page = archive.scan(after.as_ref(), 2).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 2);
        after = page.last().map(|(c, _)| c.clone());
        got.extend(page.into_iter().map(|(_, d)| d));
    }

    // THEN every delivery comes back once, unchanged (moto's keys are in time order to the second)
    let mut ids: Vec<_> = got.iter().map(|d| d.key.delivery_id.to_string()).collect();
    ids.sort();
    let mut want: Vec<_> = put.iter().map(|d| d.key.delivery_id.to_string()).collect();
    want.sort();
    assert_eq!(ids, want);
    for d in &got {
        assert_eq!(Some(d), put.iter().find(|p| p.key == d.key));
    }

    // AND a scan from the next hour finds nothing, from this hour everything
    let reader = BatchedS3Archive::new(s3(&cfg), &bucket, PREFIX);
    let next_hour = reader.cursor_at(Utc::now() + TimeDelta::hours(1));
    assert!(reader.scan(Some(&next_hour), 10).await.unwrap().is_empty());
    let this_hour = reader.cursor_at(Utc::now() - TimeDelta::minutes(1));
    assert_eq!(reader.scan(Some(&this_hour), 10).await.unwrap().len(), 5);
    // AND a cursor from elsewhere is refused
    assert!(reader.scan(Some(&ArchiveCursor::new("raw/2026-12-02/x")), 10).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_over_the_record_limit_is_put_in_parts_and_read_back_whole_once() {
    // GIVEN a delivery whose body deflate cannot shrink below Firehose's record limit
    let cfg = aws().await;
    let (archive, bucket) = archive(&cfg).await;
    let mut rng = fastrand::Rng::with_seed(12);
    let big = delivery(1, (0..2_500_000).map(|_| rng.u8(..)).collect());
    let small = delivery(2, b"{}".to_vec());

    // WHEN it is put, and a small one after it
    archive.put(&big).await.unwrap();
    archive.put(&small).await.unwrap();

    // THEN its 4 parts went in one batch (moto: one object, the small one another),
    // and the scan returns each delivery once, whole
    assert_eq!(keys(&cfg, &bucket).await.len(), 2);
    let got: Vec<RawDelivery> = archive.scan(None, 10).await.unwrap().into_iter().map(|(_, d)| d).collect();
    assert_eq!(got.len(), 2, "{:?}", got.iter().map(|d| d.key.delivery_id.to_string()).collect::<Vec<_>>());
    assert!(got.contains(&big) && got.contains(&small));

    // AND paging one at a time gives the same two
    let first = archive.scan(None, 1).await.unwrap();
    let rest = archive.scan(Some(&first[0].0), 10).await.unwrap();
    assert_eq!(first.len() + rest.len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_that_does_not_exist_is_a_retryable_failure_and_a_write_only_archive_says_so() {
    let cfg = aws().await;
    let archive = FirehoseArchive::new(aws_sdk_firehose::Client::new(&cfg), unique("missing-stream"));
    let err = archive.put(&delivery(1, b"{}".to_vec())).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    let err = archive.scan(None, 1).await.unwrap_err();
    assert!(!err.is_retryable() && format!("{:#}", anyhow::Error::new(err)).contains("write-only"));
}
