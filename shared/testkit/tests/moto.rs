//! The moto harness itself: it starts, answers, and is gone when dropped.
use octoscope_testkit::moto::MotoServer;

#[test]
fn moto_server_starts_answers_and_stops_on_drop() {
    // GIVEN a private moto server
    let server = MotoServer::start().expect("moto starts (pip install 'moto[server]')");
    let addr = server.endpoint.trim_start_matches("http://").to_owned();
    // THEN it accepts connections
    assert!(std::net::TcpStream::connect(&addr).is_ok());
    // WHEN it is dropped THEN its port is closed
    drop(server);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(std::time::Instant::now() < deadline, "moto still listening on {addr} after drop");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// moto puts a deep copy of the table back when a transaction is cancelled,
/// stream and all, so a reader that followed `NextShardIterator` could be
/// handed one record forever, and a write made beside the transaction was
/// lost. The reader goes by position, and the launcher takes DynamoDB's
/// requests one at a time: beside cancelled transactions every write is
/// held, and the reading ends having handed over each of them once.
#[tokio::test(flavor = "multi_thread")]
async fn the_stream_reader_hands_over_each_record_once_beside_cancelled_transactions() {
    use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem};
    let s = |v: String| AttributeValue::S(v);
    // GIVEN a table with its stream, 300 items written 30 at a time, and
    // beside them 60 transactions whose condition fails
    let server = MotoServer::start().unwrap();
    let client = aws_sdk_dynamodb::Client::new(&server.sdk_config().await);
    let table = octoscope_testkit::moto::unique("stream");
    octoscope::adapters::aws::dynamodb::create_table(&client, &table).await.unwrap();
    let mut reader = octoscope_testkit::moto::StreamReader::of_table(&server.endpoint, &table).await.unwrap();
    // (read once before: a reader that keeps iterators holds one from here on)
    assert_eq!(reader.next_batch(50).await.unwrap()["Records"].as_array().map(Vec::len), Some(0));
    let mut writes = tokio::task::JoinSet::new();
    for n in 0..360 {
        let (client, table) = (client.clone(), table.clone());
        writes.spawn(async move {
            if n % 6 == 5 {
                let check = ConditionCheck::builder()
                    .table_name(&table)
                    .key("pk", s("ABSENT".into()))
                    .key("sk", s("_".into()))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .unwrap();
                let put = aws_sdk_dynamodb::types::Put::builder()
                    .table_name(&table)
                    .item("pk", s(format!("TX#{n:03}")))
                    .item("sk", s("_".into()))
                    .build()
                    .unwrap();
                let cancelled = client
                    .transact_write_items()
                    .transact_items(TransactWriteItem::builder().condition_check(check).build())
                    .transact_items(TransactWriteItem::builder().put(put).build())
                    .send()
                    .await;
                assert!(cancelled.is_err(), "the condition fails");
            } else {
                client
                    .put_item()
                    .table_name(&table)
                    .item("pk", s(format!("ITEM#{n:03}")))
                    .item("sk", s("_".into()))
                    .send()
                    .await
                    .unwrap();
            }
        });
        if writes.len() == 30 {
            writes.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = writes.join_next().await {
        done.unwrap();
    }
    // WHEN the stream is read in batches of 50 until a batch is empty (at most 20 batches)
    let mut read = Vec::new();
    for _ in 0..20 {
        let batch = reader.next_batch(50).await.unwrap();
        let records = batch["Records"].as_array().unwrap().clone();
        if records.is_empty() {
            break;
        }
        read.extend(records.iter().map(|r| r["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap().to_owned()));
    }
    // THEN every write is held, and the reading ended having handed over each once
    let scanned = client.scan().table_name(&table).send().await.unwrap();
    let mut held: Vec<String> = scanned.items().iter().map(|i| i["pk"].as_s().unwrap().clone()).collect();
    held.sort();
    let written: Vec<String> = (0..360).filter(|n| n % 6 != 5).map(|n| format!("ITEM#{n:03}")).collect();
    assert_eq!(held, written, "the table holds each acknowledged write");
    read.sort();
    assert_eq!(read, written, "the stream hands over each write once");
}
