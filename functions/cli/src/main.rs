//! `homehook`: serve everything in one local process on the embedded store, and the admin
//! commands around it. Thin: parsing, start-up, then the core library does the work.

mod admin;
mod serve;
mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Secret URLs for your smart home.
#[derive(Debug, Parser)]
#[command(name = "homehook", version, about)]
struct Cli {
    /// Config file [default: ./homehook.toml if it exists, else built-in defaults]
    #[arg(long, short, global = true, env = "HOMEHOOK_CONFIG")]
    config: Option<PathBuf>,
    /// Directory of the embedded store [default: server.data_dir, else ~/.local/share/homehook]
    #[arg(long, global = true, env = "HOMEHOOK_DATA_DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve connect, callback, action and status URLs on 127.0.0.1, and keep tokens fresh.
    Serve {
        /// Address to listen on [default: server.listen, 127.0.0.1:8080]
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Show each connection's health and token expiry.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the URL of each action.
    Actions {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List what a connection's actions can use (sites, homes, rooms, devices, flows...) with
    /// their ids, asked from the vendor.
    Discover {
        /// The connection, as named in homehook.toml.
        connection: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Keys for actions and the admin.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// PINs for sensitive actions (step-up).
    Pin {
        #[command(subcommand)]
        command: PinCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PinCommand {
    /// Hash a PIN read from standard input (so it stays out of shell history); prints the
    /// `pin_hash` line for the action.
    New {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Make a new random key; prints the key (once) and the hash to put in the config.
    New {
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Make a named key for these actions (comma-separated; `*` for all): prints a
        /// `[keys.<id>]` block instead of a bare hash.
        #[arg(long = "for", value_name = "ACTIONS")]
        actions: Option<String>,
        /// The named key's id, shown in logs [default: key-<first 8 hex digits of its hash>].
        #[arg(long, requires = "actions")]
        id: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HOMEHOOK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { listen } => {
                serve::run(cli.config.as_deref(), cli.data_dir.as_deref(), listen).await
            }
            Command::Status { json } => {
                admin::status(cli.config.as_deref(), cli.data_dir.as_deref(), json).await
            }
            Command::Actions { json } => admin::actions(cli.config.as_deref(), json),
            Command::Discover { connection, json } => {
                admin::discover(
                    cli.config.as_deref(),
                    cli.data_dir.as_deref(),
                    &connection,
                    json,
                )
                .await
            }
            Command::Key {
                command: KeyCommand::New { json, actions, id },
            } => admin::key_new(json, actions.as_deref(), id.as_deref()),
            Command::Pin {
                command: PinCommand::New { json },
            } => admin::pin_new(json),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
