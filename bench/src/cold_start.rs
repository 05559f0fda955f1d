//! Cold starts: exec a bootstrap with `AWS_LAMBDA_RUNTIME_API` pointing at a fresh
//! [`RuntimeApi`] that holds one event, and time until its answer arrives; the peak resident
//! set is read just before the process is killed. Also a long run of one process, for its
//! memory under load.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use axum::body::Bytes;

use crate::aws_timer::AwsTimer;
use crate::procs::Running;
use crate::runtime_api::RuntimeApi;
use crate::stats::Samples;

/// A function to start: a program, its arguments and environment, and the event it answers.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Its name in the report.
    pub name: String,
    /// The program (a bootstrap, or an interpreter).
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its whole environment (nothing is inherited but `PATH`).
    pub env: Vec<(String, String)>,
    /// The first event.
    pub event: Bytes,
    /// The `statusCode` each answer must carry (an API Gateway answer), if any: a run that
    /// measured refusals would measure the wrong thing.
    pub expect_status: Option<u16>,
}

/// What `n` cold starts measured.
#[derive(Debug)]
pub struct ColdStarts {
    /// Exec to first answer, in ms.
    pub millis: Samples,
    /// The AWS calls' round trips to moto within each start, in ms.
    pub aws_millis: Samples,
    /// Exec to first answer without the AWS calls' round trips: the bootstrap's own time, in ms.
    pub own_millis: Samples,
    /// AWS calls per start (the most any start made).
    pub aws_calls: usize,
    /// Peak resident set after the first answer, in KiB.
    pub rss_kib: Samples,
}

/// What a run of many invocations on one process measured.
#[derive(Debug)]
pub struct Load {
    /// Each invocation, from queueing the event to the answer, in ms.
    pub millis: Samples,
    /// Peak resident set after the run, in KiB.
    pub rss_kib: u64,
}

fn spawn(subject: &Subject, api: &RuntimeApi) -> Result<Running> {
    let child = Command::new(&subject.program)
        .args(&subject.args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(subject.env.iter().map(|(k, v)| (k, v)))
        .env("AWS_LAMBDA_RUNTIME_API", api.addr.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", subject.program.display()))?;
    Ok(Running { child })
}

async fn answer(
    answers: &mut tokio::sync::mpsc::UnboundedReceiver<crate::runtime_api::Answer>,
    subject: &Subject,
) -> Result<crate::runtime_api::Answer> {
    let name = &subject.name;
    let answer = tokio::time::timeout(Duration::from_secs(60), answers.recv())
        .await
        .with_context(|| format!("{name}: no answer within 60 s"))?
        .context("the runtime API stopped")?;
    if !answer.ok {
        bail!("{name} failed: {}", String::from_utf8_lossy(&answer.body));
    }
    if let Some(expected) = subject.expect_status {
        let body: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        if body["statusCode"] != expected {
            bail!(
                "{name} answered {}, not {expected}",
                String::from_utf8_lossy(&answer.body)
            );
        }
    }
    Ok(answer)
}

/// One cold start: exec to answer, the AWS calls within it, peak RSS in KiB.
async fn once(
    subject: &Subject,
    timer: Option<&AwsTimer>,
) -> Result<(Duration, crate::aws_timer::AwsCalls, u64)> {
    let (api, mut answers) = RuntimeApi::start().await?;
    api.push(subject.event.clone());
    if let Some(timer) = timer {
        timer.take();
    }
    let exec = Instant::now();
    let process = spawn(subject, &api)?;
    let answer = answer(&mut answers, subject).await?;
    let calls = timer.map(AwsTimer::take).unwrap_or_default();
    let rss = process.peak_rss_kib()?;
    Ok((answer.at.duration_since(exec), calls, rss))
}

/// `n` cold starts (after one that warms the page cache and is not counted); AWS calls timed by
/// `timer` when the subject's endpoint is its.
pub async fn measure(subject: &Subject, n: usize, timer: Option<&AwsTimer>) -> Result<ColdStarts> {
    once(subject, timer).await?;
    let mut times = Vec::with_capacity(n);
    let mut aws = Vec::with_capacity(n);
    let mut own = Vec::with_capacity(n);
    let mut calls = 0;
    let mut rss = Vec::with_capacity(n);
    for _ in 0..n {
        let (t, c, r) = once(subject, timer).await?;
        times.push(t);
        aws.push(c.time);
        own.push(t.saturating_sub(c.time));
        calls = calls.max(c.count);
        rss.push(r as f64);
    }
    Ok(ColdStarts {
        millis: Samples::millis(times),
        aws_millis: Samples::millis(aws),
        own_millis: Samples::millis(own),
        aws_calls: calls,
        rss_kib: Samples::from_values(rss),
    })
}

/// One process answering `n` events one after another (`event(i)` builds the i-th).
pub async fn load(subject: &Subject, n: usize, event: impl Fn(usize) -> Bytes) -> Result<Load> {
    let (api, mut answers) = RuntimeApi::start().await?;
    api.push(subject.event.clone());
    let process = spawn(subject, &api)?;
    answer(&mut answers, subject).await?;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let queued = Instant::now();
        api.push(event(i));
        let a = answer(&mut answers, subject).await?;
        times.push(a.at.duration_since(queued));
    }
    Ok(Load {
        millis: Samples::millis(times),
        rss_kib: process.peak_rss_kib()?,
    })
}
