//! Records of an extension's entities through the API, on real databases the tests start:
//! PostgreSQL, MariaDB and SQLite.

#[test]
fn a_throwaway_mariadb_server_makes_databases_its_users_reach_and_survives_a_restart() {
    let server = xif_testkit::mariadb::Server::new();
    let url = server.database();
    let other = server.database();
    assert_ne!(url, other);
    server.sql_in(&url, "CREATE TABLE customer (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(50)); INSERT INTO customer (name) VALUES ('Ann')");
    assert_eq!(server.sql_in(&url, "SELECT id, name FROM customer"), "1\tAnn\n");

    // The user of the URL reaches its database over TCP with the URL's password, and no other.
    let user = url.trim_start_matches("mysql://").split(':').next().expect("a user").to_owned();
    let database = url.rsplit('/').next().expect("a database").to_owned();
    let client = |database: &str| {
        std::process::Command::new("mariadb")
            .args(["--no-defaults", "-h", "127.0.0.1", "-P", &server.port().to_string(), "-u", &user])
            .arg(format!("-p{}", xif_testkit::mariadb::PASSWORD))
            .args(["-N", "-B", "-D", database, "-e", "SELECT COUNT(*) FROM customer"])
            .output()
            .expect("mariadb runs")
    };
    let output = client(&database);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "1\n");
    let other_database = other.rsplit('/').next().expect("a database");
    assert!(!client(other_database).status.success(), "a user reached another test's database");

    server.stop();
    assert!(!client(&database).status.success(), "the stopped server answered");
    server.start();
    assert_eq!(server.sql_in(&url, "SELECT name FROM customer"), "Ann\n");
}
