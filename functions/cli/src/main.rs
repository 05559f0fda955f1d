//! `homehook`: serve everything in one local process on the embedded store, and the admin
//! commands around it. Thin: parsing, start-up, then the core library does the work.

mod actions;
mod admin;
mod config_cmd;
mod connect;
mod doctor;
mod http_server;
mod init;
mod key_cmd;
mod logs;
mod probe;
mod progress;
mod qr;
mod serve;
mod settings;
mod starter;
mod status;
mod table;
mod target;
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
    /// Run against a deployed stack (`homehook target add`) instead of this machine's store
    #[arg(long, short, global = true, env = "HOMEHOOK_TARGET")]
    target: Option<String>,
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
    /// The published config every running instance follows: push homehook.toml, pull it
    /// back, or see the difference.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The vendors' credentials of a deployed stack.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Deployed stacks the other commands can run against with `--target <name>`.
    Target {
        #[command(subcommand)]
        command: TargetCommand,
    },
    /// Follow the functions' logs of a target (through `sam logs`).
    Logs {
        /// Only this function: actions, oauth-callback or token-refresh [default: all].
        #[arg(long)]
        function: Option<String>,
        /// Print what is there and stop, instead of following.
        #[arg(long)]
        no_follow: bool,
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
enum ConfigCommand {
    /// Check homehook.toml and publish it: running instances follow it within seconds.
    Push {
        /// Replace the published config even if it changed since this file was pushed or
        /// pulled here (a key revoked meanwhile would come back).
        #[arg(long)]
        force: bool,
    },
    /// Write the published config into homehook.toml.
    Pull {
        /// Overwrite changes in the file that are not published.
        #[arg(long)]
        force: bool,
    },
    /// Show how homehook.toml differs from the published config. Exits 1 if it does.
    Diff,
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Copy the secrets file's entries (server.secrets_file, or --file) into the target's
    /// secret, keeping the entries it has that the file does not name. Prints names only.
    Push {
        /// The secrets file [default: server.secrets_file of the config].
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum TargetCommand {
    /// Add (or replace) a target: from a stack's outputs (`--stack`, through `sam`), or from
    /// `--table`, `--secret` and `--url`.
    Add {
        /// The target's name, for `--target`.
        name: String,
        /// The CloudFormation stack (what `sam deploy` named it).
        #[arg(long)]
        stack: Option<String>,
        /// The AWS region [default: AWS_REGION, else eu-west-1].
        #[arg(long, env = "AWS_REGION")]
        region: Option<String>,
        /// The AWS profile to sign in with.
        #[arg(long, env = "AWS_PROFILE")]
        profile: Option<String>,
        /// The stack's DynamoDB table (the TableName output).
        #[arg(long, conflicts_with = "stack", requires_all = ["secret", "url"])]
        table: Option<String>,
        /// The stack's secret (the SecretArn output).
        #[arg(long, conflicts_with = "stack")]
        secret: Option<String>,
        /// The stack's base URL (the BaseUrl output).
        #[arg(long, conflicts_with = "stack")]
        url: Option<String>,
        /// Another endpoint for every AWS call (an emulator).
        #[arg(long, hide = true)]
        endpoint: Option<String>,
    },
    /// List the targets.
    List,
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// List the keys of the published config: id, what each opens, expiry, last use.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: every instance refuses it within seconds.
    Revoke {
        /// The key's id (`homehook key list`); `admin` for the admin key.
        id: String,
    },
    /// Make a successor with the same actions; the old key works until the overlap ends.
    Rotate {
        /// The key's id (`homehook key list`); `admin` replaces the admin key at once.
        id: String,
        /// How long the old key keeps working, in seconds (0: revoked now).
        #[arg(long, default_value_t = 86_400)]
        overlap: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
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
        .fmt_fields(escaped_fields())
        // Colours only for a person at a terminal: a log file or journal gets plain text.
        .with_ansi(log_colours())
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

/// The log's fields as `name=value` (the message bare), every value with its control
/// characters escaped ([`homehook_core::sensitive::escape_controls`]): a caller's path segment
/// or a vendor's words holding a newline or a terminal escape can neither forge a log line nor
/// drive the terminal that shows the log. One formatter for every field of every event, so no
/// call site can forget it.
fn escaped_fields() -> impl for<'w> tracing_subscriber::fmt::FormatFields<'w> + 'static {
    use tracing_subscriber::field::MakeExt as _;
    tracing_subscriber::fmt::format::debug_fn(|writer, field, value| {
        let name = field.name();
        // As tracing-subscriber's own formatter: a `log` record's metadata is already in the
        // line's prefix, and a raw identifier is shown without its `r#`.
        if name.starts_with("log.") {
            return Ok(());
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        let text = format!("{value:?}");
        let text = homehook_core::sensitive::escape_controls(&text);
        if name == "message" {
            write!(writer, "{text}")
        } else {
            write!(writer, "{name}={text}")
        }
    })
    .delimited(" ")
}

/// ANSI colours when the log goes to a terminal and `NO_COLOR` (no-color.org) is not set.
fn log_colours() -> bool {
    use std::io::IsTerminal as _;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
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
    let ctx = settings::Context {
        config_path: cli.config.as_deref(),
        data_dir: cli.data_dir.as_deref(),
        target: cli.target.as_deref(),
    };
    let local_only = |what: &str| -> anyhow::Result<()> {
        match ctx.target {
            Some(t) => {
                anyhow::bail!("`homehook {what}` runs on this machine only (not with --target {t})")
            }
            None => Ok(()),
        }
    };
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
        Command::Serve { listen } => {
            local_only("serve")?;
            serve::run(ctx.config_path, ctx.data_dir, listen).await?
        }
        Command::Connect {
            connection,
            no_qr,
            qr_light,
            timeout,
            json,
        } => {
            connect::run(
                ctx,
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
        Command::Status { json } => status::run(ctx, json).await?,
        Command::Actions {
            name,
            qr,
            key,
            qr_light,
            json,
        } => {
            actions::run(
                ctx,
                &actions::Options {
                    name: name.as_deref(),
                    qr,
                    key: key.as_deref(),
                    light: qr_light,
                    json,
                },
            )
            .await?
        }
        Command::Discover { connection, json } => admin::discover(ctx, &connection, json).await?,
        Command::Doctor { json } => {
            if !doctor::run(ctx, json).await? {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Config { command } => match command {
            ConfigCommand::Push { force } => config_cmd::push(ctx, force).await?,
            ConfigCommand::Pull { force } => config_cmd::pull(ctx, force).await?,
            ConfigCommand::Diff => {
                if !config_cmd::diff(ctx).await? {
                    return Ok(ExitCode::FAILURE);
                }
            }
        },
        Command::Secrets {
            command: SecretsCommand::Push { file },
        } => target::push_secrets(ctx, file.as_deref()).await?,
        Command::Target { command } => match command {
            TargetCommand::Add {
                name,
                stack,
                region,
                profile,
                table,
                secret,
                url,
                endpoint,
            } => target::add(target::NewTarget {
                name: &name,
                stack: stack.as_deref(),
                region: region.as_deref(),
                profile: profile.as_deref(),
                table,
                secret,
                url,
                endpoint,
            })?,
            TargetCommand::List => target::print_list()?,
        },
        Command::Logs {
            function,
            no_follow,
        } => logs::follow(ctx, function.as_deref(), !no_follow)?,
        Command::Key { command } => match command {
            KeyCommand::New { json, actions, id } => {
                let names = actions.as_deref().map(key_cmd::action_list).transpose()?;
                let published = match &names {
                    Some(names) => key_cmd::published_store(ctx, names).await?,
                    None => None,
                };
                match (names, published) {
                    (Some(names), Some((store, place))) => {
                        key_cmd::new_published(
                            ctx,
                            &*store,
                            &place,
                            &names,
                            id.as_deref(),
                            None,
                            json,
                        )
                        .await?
                    }
                    _ => admin::key_new(json, actions.as_deref(), id.as_deref())?,
                }
            }
            KeyCommand::List { json } => key_cmd::list(ctx, json).await?,
            KeyCommand::Revoke { id } => key_cmd::revoke(ctx, &id).await?,
            KeyCommand::Rotate { id, overlap, json } => {
                key_cmd::rotate(ctx, &id, overlap, json).await?
            }
        },
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
