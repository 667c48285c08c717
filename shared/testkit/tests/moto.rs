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
