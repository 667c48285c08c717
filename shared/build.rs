//! The OpenAPI document (feature `api`, shared/src/api/openapi.rs) describes
//! `Timestamp`, the domain's name for a UTC `DateTime`, as what it is on the
//! wire: an RFC 3339 date-time string.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    utoipa_config::Config::new().alias_for("Timestamp", "chrono::DateTime<chrono::Utc>").write_to_file();
}
