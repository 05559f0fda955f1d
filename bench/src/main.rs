//! homehook's benchmarks, run by `infra/bench` (which builds the release binaries first and
//! installs the reference runtimes): one summary table against the targets, then the details,
//! printed and written to docs/benchmarks.md with the machine they ran on.
//!
//! # Layout
//!
//! - [`overhead`]: `POST /a/{action}` through `homehook serve` beside the direct vendor call.
//! - [`cold_start`] with [`runtime_api`], [`lambda_setup`] and [`aws_timer`]: each Lambda
//!   bootstrap started against a Runtime API emulator and moto (its calls timed, so moto's share
//!   is told apart), beside Python (boto3) and Node (AWS SDK v3).
//! - [`token_calls`]: token-endpoint calls per token lifetime (10 s to 3 h; steady, bursts,
//!   idle; one and two processes on one store) and a burst of 200 on an expired token.
//! - [`tick`]: the refresh tick over 1,000 and 10,000 connections.
//! - [`procs`], [`stats`], [`machine`], [`report`]: processes, percentiles, the machine, tables.

// A binary crate: `pub` marks what each module offers the others.
#![allow(unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;
use homehook_aws::DynamoStore;
use homehook_local::SqliteStore;

mod aws_timer;
mod cold_start;
mod lambda_setup;
mod latency;
mod live_check;
mod machine;
mod overhead;
mod procs;
mod report;
mod runtime_api;
mod stats;
mod tick;
mod token_calls;

use report::{mb, mib, ms, table};

/// Measure homehook: action overhead, cold starts, memory, sizes, token calls, refresh tick.
#[derive(Debug, Parser)]
struct Args {
    /// Where the release binaries are (homehook, actions, oauth-callback, token-refresh,
    /// fake-vendor).
    #[arg(long, env = "HOMEHOOK_BENCH_BIN_DIR")]
    bin_dir: PathBuf,
    /// Where `cargo lambda build --arm64` put the arm64 bootstraps (`<fn>/bootstrap`).
    #[arg(long)]
    lambda_dir: Option<PathBuf>,
    /// moto_server, for DynamoDB and Secrets Manager.
    #[arg(long, env = "HOMEHOOK_MOTO_SERVER")]
    moto: PathBuf,
    /// A Python with boto3, for the reference cold start.
    #[arg(long, env = "HOMEHOOK_BENCH_PYTHON")]
    python: Option<PathBuf>,
    /// A directory with node_modules holding @aws-sdk/client-dynamodb and
    /// @aws-sdk/client-secrets-manager, for the Node reference cold start.
    #[arg(long, env = "HOMEHOOK_BENCH_NODE_DIR")]
    node_dir: Option<PathBuf>,
    /// Fewer samples: a check that the bench works, not figures to publish.
    #[arg(long)]
    quick: bool,
    /// Where to write the report.
    #[arg(long, default_value = "docs/benchmarks.md")]
    out: PathBuf,
    /// Only the Lambda cold starts of the bootstraps in --bin-dir, printed (for before/after
    /// figures of a change; nothing is written).
    #[arg(long)]
    cold_starts_only: bool,
}

/// Sample sizes.
struct Sizes {
    starts: usize,
    requests: usize,
    load: usize,
    /// Token lifetimes per token-calls simulation.
    lifetimes: i64,
    /// Rounds of the burst on an expired token.
    burst_runs: usize,
    tick_connections: Vec<usize>,
}

fn reference(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("reference")
        .join(name)
}

fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

#[tokio::main]
async fn main() -> Result<()> {
    // Warnings only, to stderr: the bench's own logging must not weigh on what it measures
    // (and it keeps homehook_tests' log capture, meant for the test suite, off).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let n = if args.quick {
        Sizes {
            starts: 5,
            requests: 400,
            load: 1_000,
            lifetimes: 6,
            burst_runs: 5,
            tick_connections: vec![1_000],
        }
    } else {
        Sizes {
            starts: 20,
            requests: 4_000,
            load: 10_000,
            lifetimes: 60,
            burst_runs: 11,
            tick_connections: vec![1_000, 10_000],
        }
    };
    if args.cold_starts_only {
        return cold_starts_only(&args, n.starts).await;
    }
    let mut summary: Vec<Vec<String>> = Vec::new();
    let mut details = String::new();
    let row = |cells: [&str; 4]| cells.iter().map(|c| c.to_string()).collect::<Vec<_>>();

    // Action overhead.
    eprintln!("bench: action overhead through homehook serve");
    let o = overhead::measure(&args.bin_dir, n.requests, n.load).await?;
    let added = |c: &overhead::Compare, p: f64| c.via.percentile(p) - c.direct.percentile(p);
    summary.push(row([
        "action, valid token: added p50 / p99",
        &format!(
            "{} / {}",
            ms(added(&o.valid, 50.0)),
            ms(added(&o.valid, 99.0))
        ),
        &format!("direct p50 {}", ms(o.valid.direct.median())),
        "≤ 0.2 ms p50",
    ]));
    summary.push(row([
        "action, expired token (refresh on the path): added p50",
        &ms(added(&o.expired, 50.0)),
        &format!(
            "direct token call + call p50 {}",
            ms(o.expired.direct.median())
        ),
        "",
    ]));
    details.push_str("## Action overhead\n\n`POST /a/heating` through `homehook serve` (release build, SQLite store) to the fake vendor, beside the same vendor call made directly; sequential on one keep-alive connection, alternating rounds; throughput with 4 concurrent callers. The expired case uses 1-second tokens and comes 1.1 s after the last action, so every timed action renews first (direct: a password grant, then the call).\n\n");
    let mut rows = Vec::new();
    for (name, c, requests) in [
        ("valid token", &o.valid, n.requests),
        ("expired token", &o.expired, o.expired.via.len()),
    ] {
        rows.push(vec![
            name.to_string(),
            requests.to_string(),
            format!(
                "{} / {}",
                ms(c.direct.median()),
                ms(c.direct.percentile(99.0))
            ),
            format!("{} / {}", ms(c.via.median()), ms(c.via.percentile(99.0))),
            format!("{} / {}", ms(added(c, 50.0)), ms(added(c, 99.0))),
            format!("{:.2}×", c.via.median() / c.direct.median()),
            if c.via_rps > 0.0 {
                format!("{:.0} / {:.0}", c.direct_rps, c.via_rps)
            } else {
                "–".into()
            },
            c.token_calls.to_string(),
        ]);
    }
    details.push_str(&table(
        &[
            "token",
            "requests",
            "direct p50 / p99",
            "homehook p50 / p99",
            "added p50 / p99",
            "ratio p50",
            "req/s direct / homehook",
            "token calls",
        ],
        &rows,
    ));
    details.push_str(&format!(
        "\n`homehook serve` peak RSS: {} after start-up and connecting, {} after {} concurrent requests.\n\n",
        mib(o.serve_rss_start_kib as f64),
        mib(o.serve_rss_load_kib as f64),
        o.load_requests
    ));

    // Cold starts and memory.
    eprintln!("bench: cold starts");
    let world = lambda_setup::LambdaWorld::start(&args.moto, &args.bin_dir).await?;
    let subjects = cold_start_subjects(&world, &args)?;
    let mut rows = Vec::new();
    let mut actions_start: f64 = 0.0;
    let mut rust_worst_own: f64 = 0.0;
    let mut rust_worst_rss: f64 = 0.0;
    let mut refs = Vec::new();
    for s in &subjects {
        eprintln!("bench:   {}", s.name);
        let c = cold_start::measure(s, n.starts, Some(&world.aws)).await?;
        if s.name.contains("reference") {
            refs.push(format!(
                "{} {}",
                s.name.split(" (").next().unwrap_or(""),
                ms(c.millis.median())
            ));
        } else {
            if s.name == "actions" {
                actions_start = c.millis.median();
            }
            rust_worst_own = rust_worst_own.max(c.own_millis.median());
            rust_worst_rss = rust_worst_rss.max(c.rss_kib.median());
        }
        rows.push(vec![
            s.name.clone(),
            c.millis.len().to_string(),
            ms(c.millis.median()),
            ms(c.millis.percentile(90.0)),
            ms(c.millis.percentile(0.0)),
            c.aws_calls.to_string(),
            ms(c.aws_millis.median()),
            ms(c.own_millis.median()),
            mib(c.rss_kib.median()),
        ]);
    }
    summary.push(row([
        "cold start `actions`, exec → first answer (median)",
        &ms(actions_start),
        &refs.join(", "),
        "≤ 6 ms",
    ]));
    summary.push(row([
        "cold start without moto's time, slowest function (median)",
        &ms(rust_worst_own),
        "exec → first answer − the AWS calls' round trips",
        "≤ 6 ms",
    ]));
    details.push_str("## Cold start and memory\n\nFrom exec of the bootstrap to its first answer arriving at a Runtime API emulator on loopback (the bench's own), DynamoDB and Secrets Manager on moto behind a timing proxy (`bench/src/aws_timer.rs`): the AWS columns are the calls the start made and their round trips to moto, and *own* is exec → answer without them — what the bootstrap itself costs, since moto (a Python server) answers several times slower than DynamoDB. Every function reads the published config once at init (one GetItem). First events: `actions` `GET /healthz`, `oauth-callback` a callback with an unknown state (one more DynamoDB call), `token-refresh` the schedule (one index query). The references create a DynamoDB and a Secrets Manager client at init and answer the same `GET /healthz` event. The x86_64 release binaries run here, built in one `cargo build` with the CLI (so they also carry its bundled time-zone data, which a start never reads).\n\n");
    details.push_str(&table(
        &[
            "function",
            "starts",
            "exec → answer median",
            "p90",
            "min",
            "AWS calls",
            "AWS time median",
            "own median",
            "peak RSS (median)",
        ],
        &rows,
    ));

    eprintln!("bench: actions bootstrap under load");
    let load = cold_start::load(&subjects[0], n.load, |i| world.action_event(i)).await?;
    summary.push(row([
        "peak memory: cold start (worst) / after 10k actions",
        &format!("{} / {}", mib(rust_worst_rss), mib(load.rss_kib as f64)),
        &format!(
            "homehook serve after load {}",
            mib(o.serve_rss_load_kib as f64)
        ),
        "≤ 16 MiB",
    ]));
    details.push_str(&format!(
        "\nThe `actions` bootstrap answering {} `POST /a/heating` events one after another (each a DynamoDB read on moto and a vendor call): invocation median {}, p99 {}; peak RSS {} at the end.\n\n",
        load.millis.len(),
        ms(load.millis.median()),
        ms(load.millis.percentile(99.0)),
        mib(load.rss_kib as f64)
    ));

    // Sizes.
    let mut rows = Vec::new();
    let mut worst_arm = 0;
    for f in ["actions", "oauth-callback", "token-refresh"] {
        let x86 = file_size(&args.bin_dir.join(f));
        let arm = args
            .lambda_dir
            .as_ref()
            .and_then(|d| file_size(&d.join(f).join("bootstrap")));
        worst_arm = worst_arm.max(arm.unwrap_or(0));
        rows.push(vec![
            f.to_string(),
            x86.map_or("–".into(), mb),
            arm.map_or("not built".into(), mb),
        ]);
    }
    rows.push(vec![
        "homehook (CLI)".into(),
        file_size(&args.bin_dir.join("homehook")).map_or("–".into(), mb),
        "–".into(),
    ]);
    summary.push(row([
        "arm64 bootstrap, largest",
        &if worst_arm > 0 {
            mb(worst_arm)
        } else {
            "not built".into()
        },
        "",
        "≤ 5 MB",
    ]));
    details.push_str("## Sizes\n\nRelease builds (`[profile.release]` in Cargo.toml); arm64 by `cargo lambda build --release --arm64`.\n\n");
    details.push_str(&table(&["binary", "x86_64", "arm64"], &rows));

    // Token calls.
    eprintln!("bench: token calls per token lifetime");
    let section = token_calls::section(n.lifetimes, n.burst_runs).await?;
    summary.extend(section.summary);
    details.push_str(&section.details);

    // Refresh tick.
    eprintln!("bench: refresh tick");
    let mut rows = Vec::new();
    for &count in &n.tick_connections {
        let dir = tempfile::tempdir()?;
        let sqlite = Arc::new(SqliteStore::open_in(dir.path())?);
        let dynamo = DynamoStore::new(
            homehook_aws::local::dynamodb(&world.endpoint),
            format!("tick{count}"),
        );
        dynamo.create_table().await?;
        for t in [
            tick::measure("SQLite", sqlite, count).await?,
            tick::measure("DynamoDB (moto)", Arc::new(dynamo), count).await?,
        ] {
            if t.connections == *n.tick_connections.last().unwrap_or(&0) && t.store == "SQLite" {
                summary.push(row([
                    &format!(
                        "refresh tick, {} connections, 10% due (SQLite)",
                        t.connections
                    ),
                    &format!(
                        "{} ({} records read)",
                        ms(t.tick.as_secs_f64() * 1e3),
                        t.index_records
                    ),
                    &format!("old read: {} records", t.scan_records),
                    "follows the due records",
                ]));
            }
            rows.push(vec![
                t.store.to_string(),
                t.connections.to_string(),
                t.due.to_string(),
                ms(t.tick.as_secs_f64() * 1e3),
                format!("{} query → {} records", t.index_queries, t.index_records),
                format!("{} / {}", t.reads, t.writes),
                format!(
                    "{} ({} records)",
                    ms(t.index_read.as_secs_f64() * 1e3),
                    t.due
                ),
                format!(
                    "{} ({} records)",
                    ms(t.scan_read.as_secs_f64() * 1e3),
                    t.scan_records
                ),
            ]);
        }
    }
    details.push_str("\n## Refresh tick\n\nOne tick over N stored connections of which every tenth is due, renewing against the fake vendor. The tick reads the due records through the stores' index on `due_at` (SQLite: a partial index; DynamoDB: the sparse global secondary index `due`); the last column is what the tick before the index read (every record) on the same data.\n\n");
    details.push_str(&table(
        &[
            "store",
            "connections",
            "due",
            "tick",
            "index reads",
            "record reads / writes",
            "index read alone",
            "old read: every record",
        ],
        &rows,
    ));

    // Following the published config.
    eprintln!("bench: following the published config");
    let dir = tempfile::tempdir()?;
    let sqlite: Arc<dyn homehook_core::store::Store> = Arc::new(SqliteStore::open_in(dir.path())?);
    let dynamo = DynamoStore::new(homehook_aws::local::dynamodb(&world.endpoint), "published");
    dynamo.create_table().await?;
    let reads = if args.quick { 20 } else { 200 };
    let live = live_check::measure(
        vec![("SQLite", sqlite), ("DynamoDB (moto)", Arc::new(dynamo))],
        reads,
    )
    .await?;
    summary.push(row([
        "config lookup per request, following the published config",
        &format!("{:.0} ns", live.following_ns),
        &format!("fixed config: {:.0} ns", live.fixed_ns),
        "no slower than fixed",
    ]));
    details.push_str(&format!(
        "\n## Following the published config\n\nEvery request and tick asks the process for its current app (`Live::app()`); a process following the published config (`homehook serve`, the Lambda functions) also looks at the stored version when its last look is {} s old, on the request that finds it due. Lookups: median of 25 rounds of 200,000 calls, alternating. Reads: the one store call of a due look, {} times.\n\n",
        homehook_core::live::CHECK_EVERY_SECS,
        reads
    ));
    let mut rows = vec![
        vec![
            "`app()`, fixed config".to_string(),
            format!("{:.0} ns", live.fixed_ns),
        ],
        vec![
            "`app()`, following".to_string(),
            format!("{:.0} ns", live.following_ns),
        ],
    ];
    for (name, samples) in &live.reads {
        rows.push(vec![
            format!("a due look's read, {name}"),
            format!(
                "{} p50 / {} p99",
                ms(samples.median()),
                ms(samples.percentile(99.0))
            ),
        ]);
    }
    details.push_str(&table(&["what", "cost"], &rows));
    details.push_str(&format!(
        "\nSo a busy instance adds one such read every {} s (on DynamoDB one strongly consistent GetItem of one small item, 1 read unit), and a request that finds the look due waits for it once; a revoked key is refused by every instance within {} s.\n",
        homehook_core::live::CHECK_EVERY_SECS,
        homehook_core::live::CHECK_EVERY_SECS
    ));

    // The report.
    let machine: Vec<Vec<String>> = machine::describe()
        .into_iter()
        .map(|(k, v)| vec![k, v])
        .collect();
    let changes = std::fs::read_to_string(reference("../changes.md")).unwrap_or_default();
    let doc = format!(
        "# Benchmarks\n\nWritten by `infra/bench`{}; the machines are shared and noisy, so figures are medians and high percentiles of many runs, and ratios to a reference measured in the same run.\n\n{}\n## Summary\n\n{}\n{}\n{}",
        if args.quick {
            " --quick (few samples: a check, not figures to quote)"
        } else {
            ""
        },
        table(&["machine", ""], &machine),
        table(&["measure", "homehook", "beside it", "target"], &summary),
        details,
        changes,
    );
    println!("{doc}");
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, doc).with_context(|| format!("write {}", args.out.display()))?;
    eprintln!("bench: written to {}", args.out.display());
    Ok(())
}

/// The three bootstraps in `--bin-dir`, then the Python and Node references when given.
fn cold_start_subjects(
    world: &lambda_setup::LambdaWorld,
    args: &Args,
) -> Result<Vec<cold_start::Subject>> {
    let mut subjects = vec![
        world.subject(
            "actions",
            args.bin_dir.join("actions"),
            &[],
            lambda_setup::EVENT_HEALTHZ,
            Some(200),
        ),
        world.subject(
            "oauth-callback",
            args.bin_dir.join("oauth-callback"),
            &[],
            lambda_setup::EVENT_CALLBACK,
            None,
        ),
        world.subject(
            "token-refresh",
            args.bin_dir.join("token-refresh"),
            &[],
            lambda_setup::EVENT_SCHEDULE,
            None,
        ),
    ];
    if let Some(python) = &args.python {
        let script = reference("python/bootstrap.py").display().to_string();
        subjects.push(world.subject(
            "Python 3 + boto3 (reference)",
            python.clone(),
            &[script],
            lambda_setup::EVENT_HEALTHZ,
            Some(200),
        ));
    }
    if let Some(dir) = &args.node_dir {
        // ES modules resolve packages from the script's own directory: run it from there.
        let script = dir.join("index.mjs");
        std::fs::copy(reference("node/index.mjs"), &script).context("copy the Node reference")?;
        subjects.push(world.subject(
            "Node + AWS SDK v3 (reference)",
            "node".into(),
            &[script.display().to_string()],
            lambda_setup::EVENT_HEALTHZ,
            Some(200),
        ));
    }
    Ok(subjects)
}

/// `--cold-starts-only`: the three bootstraps' cold starts, printed.
async fn cold_starts_only(args: &Args, starts: usize) -> Result<()> {
    let world = lambda_setup::LambdaWorld::start(&args.moto, &args.bin_dir).await?;
    let mut rows = Vec::new();
    for s in cold_start_subjects(&world, args)?.iter().take(3) {
        let c = cold_start::measure(s, starts, Some(&world.aws)).await?;
        rows.push(vec![
            s.name.clone(),
            c.millis.len().to_string(),
            ms(c.millis.median()),
            c.aws_calls.to_string(),
            ms(c.aws_millis.median()),
            ms(c.own_millis.median()),
            mib(c.rss_kib.median()),
        ]);
    }
    println!(
        "{}",
        table(
            &[
                "function",
                "starts",
                "exec → answer median",
                "AWS calls",
                "AWS time median",
                "own median",
                "peak RSS"
            ],
            &rows
        )
    );
    Ok(())
}
