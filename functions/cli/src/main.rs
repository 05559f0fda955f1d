//! `homehook`: serve everything in one local process on the embedded store, and the admin
//! commands around it. Thin: parsing, start-up, then the core library does the work.

mod actions;
mod admin;
mod connect;
mod doctor;
mod init;
mod probe;
mod progress;
mod qr;
mod serve;
mod settings;
mod starter;
mod status;
mod table;
mod when;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

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
    /// Write a commented starter homehook.toml and a secrets file template for your vendors,
    /// with a new admin key.
    Init {
        /// Vendors to set up, comma-separated: netatmo, legrand, somfy_protect, myfox, homey
        /// [asked on a terminal when left out].
        #[arg(long, value_name = "VENDORS")]
        vendors: Option<String>,
        /// Where to write the config [default: --config, else ./homehook.toml]; the secrets
        /// file goes next to it.
        #[arg(long)]
        path: Option<PathBuf>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Serve connect, callback, action and status URLs on 127.0.0.1, and keep tokens fresh.
    Serve {
        /// Address to listen on [default: server.listen, 127.0.0.1:8080]
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Connect an account: prints the link to open (and a QR code) and waits until the
    /// connection works; password-grant connections connect at once.
    Connect {
        /// The connection, as named in homehook.toml.
        connection: String,
        /// Leave out the QR code of the link.
        #[arg(long)]
        no_qr: bool,
        /// Draw QR codes for a terminal with a light background.
        #[arg(long)]
        qr_light: bool,
        /// Give up after this many seconds [default and most: server.state_ttl_secs].
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
        /// Print one JSON object at the end (the link and progress go to standard error).
        #[arg(long)]
        json: bool,
    },
    /// Show each connection's health, token expiry and last renewal.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the URL of each action (or of one), with a QR code to scan with the phone.
    Actions {
        /// Only this action.
        name: Option<String>,
        /// Show a QR code of each URL.
        #[arg(long)]
        qr: bool,
        /// The action's key, to make ready-to-use `?key=` URLs (and QR codes) of the actions it
        /// opens. The codes then hold the secret.
        #[arg(long, env = "HOMEHOOK_ACTION_KEY", hide_env_values = true)]
        key: Option<String>,
        /// Draw QR codes for a terminal with a light background.
        #[arg(long)]
        qr_light: bool,
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
    /// Check the config, secrets, public URL, server, clock and each connection, and say what
    /// to fix. Exits 1 if a check fails.
    Doctor {
        /// Print JSON: a list of {check, status, detail, fix}.
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
    /// Print a shell completion script: `homehook completions bash > ~/.local/share/bash-completion/completions/homehook`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
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
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_log(&cli.command))),
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
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The server logs what it does; the other commands speak for themselves and log only
/// warnings.
fn default_log(command: &Command) -> &'static str {
    match command {
        Command::Serve { .. } => "info",
        _ => "warn",
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = cli.config.as_deref();
    let data_dir = cli.data_dir.as_deref();
    match cli.command {
        Command::Init {
            vendors,
            path,
            force,
            json,
        } => init::run(&init::Options {
            vendors: vendors.as_deref(),
            path: path
                .or(cli.config.clone())
                .unwrap_or_else(|| PathBuf::from("homehook.toml")),
            force,
            json,
        })?,
        Command::Serve { listen } => serve::run(config, data_dir, listen).await?,
        Command::Connect {
            connection,
            no_qr,
            qr_light,
            timeout,
            json,
        } => {
            connect::run(
                config,
                data_dir,
                &connect::Options {
                    connection: &connection,
                    no_qr,
                    light: qr_light,
                    timeout_secs: timeout,
                    json,
                },
            )
            .await?
        }
        Command::Status { json } => status::run(config, data_dir, json).await?,
        Command::Actions {
            name,
            qr,
            key,
            qr_light,
            json,
        } => actions::run(
            config,
            &actions::Options {
                name: name.as_deref(),
                qr,
                key: key.as_deref(),
                light: qr_light,
                json,
            },
        )?,
        Command::Discover { connection, json } => {
            admin::discover(config, data_dir, &connection, json).await?
        }
        Command::Doctor { json } => {
            if !doctor::run(config, data_dir, json).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Key {
            command: KeyCommand::New { json, actions, id },
        } => admin::key_new(json, actions.as_deref(), id.as_deref())?,
        Command::Pin {
            command: PinCommand::New { json },
        } => admin::pin_new(json)?,
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "homehook",
                &mut std::io::stdout(),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
