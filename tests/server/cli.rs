//! The `tollgate` command against a SQLite file, as an operator runs it:
//! migrate, add, list, update, rotate a secret, disable, enable, delete;
//! and a wrong command line answers the usage with exit code 2.

use std::process::{Command, Output};

use crate::common::{
    quickstart::workspace_binary,
    store::{connect_sqlite_file, new_sqlite_file},
};
use tollgate::store::clients;

fn tollgate(url: &str, args: &[&str]) -> Output {
    Command::new(workspace_binary("tollgate"))
        .env("DATABASE_URL", url)
        .args(args)
        .output()
        .unwrap()
}

/// Runs a command that must succeed; its standard output.
fn ok(url: &str, args: &[&str]) -> String {
    let out = tollgate(url, args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn an_operator_manages_clients_from_the_command_line() {
    let url = new_sqlite_file();
    assert_eq!(ok(&url, &["migrate"]), "migrated\n");
    let secret = ok(
        &url,
        &[
            "clients",
            "add",
            "billing",
            "--scope",
            "invoices:read",
            "--client-credentials",
            "--resource",
            "https://api.example/invoices",
        ],
    );
    let secret = secret.trim();
    assert_eq!(secret.len(), 43, "a fresh secret, printed once: {secret:?}");
    assert_eq!(
        ok(
            &url,
            &["clients", "add", "spa", "--public", "--scope", "read"]
        ),
        "registered spa\n"
    );
    assert_eq!(
        ok(&url, &["clients", "list"]),
        "billing\tconfidential\tenabled\tregistered\tinvoices:read\nspa\tpublic\tenabled\tregistered\tread\n"
    );

    let db = connect_sqlite_file(&url).await;
    let now = std::time::SystemTime::now();
    let billing = clients::find(&db, "billing").await.unwrap().unwrap();
    assert!(billing.secret_matches(Some(secret), now));
    assert!(billing.allow_client_credentials);
    assert_eq!(billing.resources, ["https://api.example/invoices"]);

    ok(
        &url,
        &[
            "clients",
            "update",
            "billing",
            "--scope",
            "invoices:read invoices:write",
            "--access-ttl",
            "60",
        ],
    );
    let billing = clients::find(&db, "billing").await.unwrap().unwrap();
    assert_eq!(billing.scope, "invoices:read invoices:write");
    assert_eq!(billing.access_ttl, Some(std::time::Duration::from_secs(60)));
    // What the update did not name is kept.
    assert!(billing.allow_client_credentials);
    assert_eq!(billing.resources, ["https://api.example/invoices"]);

    let rotated = ok(
        &url,
        &["clients", "rotate-secret", "billing", "--overlap", "600"],
    );
    let rotated = rotated.trim();
    let billing = clients::find(&db, "billing").await.unwrap().unwrap();
    assert!(billing.secret_matches(Some(rotated), now));
    assert!(billing.secret_matches(Some(secret), now), "the overlap");
    assert!(!billing.secret_matches(Some(secret), now + std::time::Duration::from_secs(601)));

    assert_eq!(
        ok(&url, &["clients", "disable", "billing"]),
        "disabled billing; 0 sessions revoked\n"
    );
    assert!(
        clients::find(&db, "billing")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    ok(&url, &["clients", "enable", "billing"]);
    assert!(
        !clients::find(&db, "billing")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert_eq!(
        ok(&url, &["clients", "delete", "billing"]),
        "deleted billing\n"
    );
    assert!(clients::find(&db, "billing").await.unwrap().is_none());

    // Failures: an unknown client is exit 1, a wrong command line exit 2.
    let gone = tollgate(&url, &["clients", "delete", "billing"]);
    assert_eq!(gone.status.code(), Some(1));
    for wrong in [
        &["clients", "frobnicate"][..],
        &["clients", "add", "x"],
        &["clients", "add", "x", "--scope"],
    ] {
        let out = tollgate(&url, wrong);
        assert_eq!(out.status.code(), Some(2), "{wrong:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("usage: tollgate"));
    }
    // The command line is checked before any database is needed.
    let bare = |args: &[&str]| {
        Command::new(workspace_binary("tollgate"))
            .env_remove("DATABASE_URL")
            .args(args)
            .output()
            .unwrap()
    };
    let wrong = bare(&["clients", "add", "x", "--scope", "read", "--frobnicate"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("unknown setting --frobnicate"));
    let help = bare(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("usage: tollgate"));
    // A right command line without a database says so.
    let no_db = bare(&["clients", "list"]);
    assert_eq!(no_db.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&no_db.stderr).contains("DATABASE_URL is not set"));
}
