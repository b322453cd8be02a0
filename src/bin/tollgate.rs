//! `tollgate`: the operator's tool against the store at `DATABASE_URL`.
//!
//! ```text
//! tollgate migrate
//! tollgate clients list
//! tollgate clients add <id> --scope "<scopes>" [--public] [settings]
//! tollgate clients update <id> [settings]
//! tollgate clients rotate-secret <id> [--overlap <seconds>]
//! tollgate clients disable <id>
//! tollgate clients enable <id>
//! tollgate clients delete <id>
//!
//! settings: --name <text> --scope "<scopes>" --resource <uri> (repeatable;
//!   replaces the list) --client-credentials --password-grant
//!   --introspection --dpop (each with a --no-… form) --access-ttl <s>
//!   --refresh-idle-ttl <s> --session-ttl <s> --bound-reuse-grace <s>
//! ```
//!
//! A new secret is printed once, on its own line; only its hash is kept.
//! Disabling and deleting revoke the client's sessions in the store; the
//! serving instances pick the revocations up through their sync.
//!
//! The arguments are a handful of fixed words and flags, read by hand:
//! a parser crate would add more to the build than it saves here.

use std::{process::ExitCode, time::Duration};

use tollgate::{
    RevocationCache,
    admin::ClientAdmin,
    sea_orm::Database,
    store::{self, clients::NewClient},
};

const USAGE: &str = "usage: tollgate migrate
       tollgate clients list
       tollgate clients add <id> --scope \"<scopes>\" [--public] [settings]
       tollgate clients update <id> [settings]
       tollgate clients rotate-secret <id> [--overlap <seconds>]
       tollgate clients disable|enable|delete <id>
settings: --name <text> --scope \"<scopes>\" --resource <uri>... --client-credentials
          --password-grant --introspection --dpop (and --no-…) --access-ttl <s>
          --refresh-idle-ttl <s> --session-ttl <s> --bound-reuse-grace <s>
DATABASE_URL names the database.";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(why)) => {
            eprintln!("tollgate: {why}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Failure::Failed(e)) => {
            eprintln!("tollgate: {e}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// The command failed (exit 1).
    Failed(BoxError),
}

impl<E: Into<BoxError>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::Failed(e.into())
    }
}

fn usage(why: impl Into<String>) -> Failure {
    Failure::Usage(why.into())
}

/// What the command line asks for, checked before anything connects.
enum Command<'a> {
    Help,
    Migrate,
    List,
    Add(Box<NewClient>),
    Update(&'a str, &'a [&'a str]),
    RotateSecret(&'a str, Duration),
    Disable(&'a str),
    Enable(&'a str),
    Delete(&'a str),
}

fn parse<'a>(words: &'a [&'a str]) -> Result<Command<'a>, Failure> {
    Ok(match words {
        [] | ["help" | "--help" | "-h"] => Command::Help,
        ["migrate"] => Command::Migrate,
        ["clients", "list"] => Command::List,
        ["clients", "add", id, flags @ ..] => {
            let public = flags.contains(&"--public");
            let flags: Vec<&str> = flags.iter().copied().filter(|f| *f != "--public").collect();
            let mut new = if public {
                NewClient::public(*id, "")
            } else {
                NewClient::confidential(*id, "")
            };
            apply(&mut new, &flags)?;
            if new.scope.is_empty() {
                return Err(usage("a new client needs --scope"));
            }
            Command::Add(Box::new(new))
        }
        ["clients", "update", id, flags @ ..] => {
            // Checked now on a stand-in, applied to the stored client later.
            apply(&mut NewClient::public(*id, ""), flags)?;
            Command::Update(id, flags)
        }
        ["clients", "rotate-secret", id, rest @ ..] => Command::RotateSecret(
            id,
            match rest {
                [] => Duration::from_secs(86_400),
                ["--overlap", secs] => seconds(secs)?,
                _ => return Err(usage("rotate-secret takes only --overlap <seconds>")),
            },
        ),
        ["clients", "disable", id] => Command::Disable(id),
        ["clients", "enable", id] => Command::Enable(id),
        ["clients", "delete", id] => Command::Delete(id),
        _ => return Err(usage("unknown command")),
    })
}

async fn run(args: &[String]) -> Result<(), Failure> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    let command = parse(&words)?;
    if let Command::Help = command {
        println!("{USAGE}");
        return Ok(());
    }
    let url = std::env::var("DATABASE_URL").map_err(|_| usage("DATABASE_URL is not set"))?;
    let db = Database::connect(&url).await?;
    let admin = ClientAdmin::new(db.clone(), RevocationCache::default());
    let missing = |id: &str| Failure::from(format!("no client {id}"));
    match command {
        Command::Help => {}
        Command::Migrate => {
            store::migrate(&db).await?;
            println!("migrated");
        }
        Command::List => {
            for c in admin.list().await? {
                let kind = if c.is_confidential() {
                    "confidential"
                } else {
                    "public"
                };
                let state = if c.disabled { "disabled" } else { "enabled" };
                println!(
                    "{}\t{kind}\t{state}\t{}\t{}",
                    c.client_id,
                    c.registration.as_str(),
                    c.scope
                );
            }
        }
        Command::Add(new) => {
            let id = new.client_id.clone();
            match admin.register(*new).await? {
                Some(secret) => println!("{secret}"),
                None => println!("registered {id}"),
            }
        }
        Command::Update(id, flags) => {
            let mut settings = admin.find(id).await?.ok_or_else(|| missing(id))?.settings();
            apply(&mut settings, flags)?;
            admin.update(settings).await?;
            println!("updated {id}");
        }
        Command::RotateSecret(id, overlap) => match admin.rotate_secret(id, overlap).await? {
            Some(secret) => println!("{secret}"),
            None => return Err(format!("no confidential client {id}").into()),
        },
        Command::Disable(id) => {
            let sessions = admin.disable(id).await?.ok_or_else(|| missing(id))?;
            println!("disabled {id}; {sessions} sessions revoked");
        }
        Command::Enable(id) => {
            if !admin.enable(id).await? {
                return Err(missing(id));
            }
            println!("enabled {id}");
        }
        Command::Delete(id) => {
            if !admin.delete(id).await? {
                return Err(missing(id));
            }
            println!("deleted {id}");
        }
    }
    Ok(())
}

/// Applies the settings flags to `c`.
fn apply(c: &mut NewClient, flags: &[&str]) -> Result<(), Failure> {
    let mut resources: Option<Vec<String>> = None;
    let mut rest = flags.iter();
    while let Some(flag) = rest.next() {
        let mut value = || {
            rest.next()
                .map(|v| (*v).to_owned())
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match *flag {
            "--name" => c.name = value()?,
            "--scope" => c.scope = value()?,
            "--resource" => resources.get_or_insert_default().push(value()?),
            "--access-ttl" => c.access_ttl = Some(seconds(&value()?)?),
            "--refresh-idle-ttl" => c.refresh_idle_ttl = Some(seconds(&value()?)?),
            "--session-ttl" => c.session_ttl = Some(seconds(&value()?)?),
            "--bound-reuse-grace" => c.bound_reuse_grace = Some(seconds(&value()?)?),
            "--client-credentials" => c.allow_client_credentials = true,
            "--no-client-credentials" => c.allow_client_credentials = false,
            "--password-grant" => c.allow_password = true,
            "--no-password-grant" => c.allow_password = false,
            "--introspection" => c.allow_introspection = true,
            "--no-introspection" => c.allow_introspection = false,
            "--dpop" => c.dpop_bound_access_tokens = true,
            "--no-dpop" => c.dpop_bound_access_tokens = false,
            other => return Err(usage(format!("unknown setting {other}"))),
        }
    }
    if let Some(resources) = resources {
        c.resources = resources;
    }
    Ok(())
}

fn seconds(s: &str) -> Result<Duration, Failure> {
    s.parse()
        .map(Duration::from_secs)
        .map_err(|_| usage(format!("{s} is not a number of seconds")))
}
