//! The `ldguard-server` command: `serve`, and token management on the
//! database directly (so the first admin token needs no running server).

use clap::{Args, Parser, Subcommand};
use ldguard_server::store::{Store, DEFAULT_DATABASE};
use ldguard_server::tokens::{self, Role};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(name = "ldguard-server", version, about = "The ldguard control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, the library's policy endpoint and event ingestion.
    Serve(Box<ServeArgs>),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Store synthetic events through the ingest path (for benchmarks).
    #[command(hide = true)]
    BenchLoad {
        /// How many events.
        #[arg(long)]
        events: u64,
        /// Spread over this many days before now.
        #[arg(long, default_value_t = 30)]
        days: u64,
        #[command(flatten)]
        database: Database,
    },
}

/// Where the database is. A PostgreSQL URL with a password belongs in the
/// environment or a file, not on the command line (other users see argv).
#[derive(Args)]
struct Database {
    /// `sqlite:PATH` or `postgres://USER@HOST/DB`.
    #[arg(long, env = "LDGUARD_DATABASE", default_value = DEFAULT_DATABASE)]
    database: String,
    /// A file holding the database URL (wins over --database).
    #[arg(long, value_name = "FILE")]
    database_file: Option<PathBuf>,
}

impl Database {
    fn url(&self) -> Result<String, String> {
        match &self.database_file {
            Some(f) => std::fs::read_to_string(f)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("--database-file {}: {e}", f.display())),
            None => Ok(self.database.clone()),
        }
    }
}

#[derive(Args)]
struct ServeArgs {
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    #[command(flatten)]
    database: Database,
    /// Largest event batch accepted, in bytes.
    #[arg(long, default_value_t = 8 << 20)]
    max_batch_bytes: usize,
    /// Delete events older than this many days (0 keeps them all).
    #[arg(long, default_value_t = 30)]
    retention_days: u64,
    #[command(flatten)]
    forward: ldguard_server::forward::ForwardArgs,
    /// Log format on standard error.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it (the only time it is shown).
    Create {
        #[arg(long, value_enum)]
        role: Role,
        /// Agent tokens: the image name globs it may fetch policies and
        /// post events for (default: every image).
        #[arg(long, num_args = 1..)]
        images: Vec<String>,
        /// A name to recognise it by in `token list`.
        #[arg(long, default_value = "")]
        name: String,
        #[command(flatten)]
        database: Database,
    },
    /// List tokens (never their secrets).
    List {
        #[command(flatten)]
        database: Database,
    },
    /// Revoke a token by id; it stops working within 5 seconds.
    Revoke {
        id: i64,
        #[command(flatten)]
        database: Database,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json_logs = matches!(&cli.command, Command::Serve(a) if a.log_format == "json");
    let filter = tracing_subscriber::EnvFilter::try_from_env("LDGUARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json_logs {
        logs.json().init();
    } else {
        logs.init();
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ldguard-server: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ldguard-server: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Serve(a) => {
            ldguard_server::serve(ldguard_server::ServeOptions {
                listen: a.listen,
                database: a.database.url()?,
                max_batch_bytes: a.max_batch_bytes,
                retention: (a.retention_days > 0)
                    .then(|| Duration::from_secs(a.retention_days * 86_400)),
                forward: a.forward.sinks()?,
            })
            .await
        }
        Command::Token(TokenCommand::Create {
            role,
            images,
            name,
            database,
        }) => {
            let store = Store::open(&database.url()?).await?;
            let (id, secret) = tokens::create(&store, &name, role, &images).await?;
            eprintln!(
                "created {} token {id}; it is shown only now:",
                role.as_str()
            );
            println!("{secret}");
            Ok(())
        }
        Command::BenchLoad {
            events,
            days,
            database,
        } => {
            let store = Store::open(&database.url()?).await?;
            let started = std::time::Instant::now();
            ldguard_server::bench::load(&store, events, days)
                .await
                .map_err(|e| e.to_string())?;
            let secs = started.elapsed().as_secs_f64();
            println!(
                "loaded {events} events in {secs:.1} s ({:.0} events/s)",
                events as f64 / secs
            );
            Ok(())
        }
        Command::Token(TokenCommand::List { database }) => {
            let store = Store::open(&database.url()?).await?;
            for t in tokens::list(&store).await.map_err(|e| e.to_string())? {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    t.id,
                    t.role.as_str(),
                    if t.revoked { "revoked" } else { "live" },
                    t.name,
                    t.images.join(",")
                );
            }
            Ok(())
        }
        Command::Token(TokenCommand::Revoke { id, database }) => {
            let store = Store::open(&database.url()?).await?;
            if tokens::revoke(&store, id)
                .await
                .map_err(|e| e.to_string())?
            {
                eprintln!("revoked token {id}");
                Ok(())
            } else {
                Err(format!(
                    "no live token {id}; `ldguard-server token list` shows them"
                ))
            }
        }
    }
}
