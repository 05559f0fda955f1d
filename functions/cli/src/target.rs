//! Named targets: where a command runs when it is not this machine's embedded store. A target
//! is a deployed stack: its DynamoDB table (tokens, items, the published config), its Secrets
//! Manager secret, its base URL. Kept in `targets.toml` (`$HOMEHOOK_TARGETS`, else the
//! platform config directory), written by `homehook target add`.
//!
//! The CLI reaches a stack with its user's own AWS credentials (profiles, SSO, environment),
//! straight to the table and the secret, the way `sam` and `aws` do: IAM decides who may
//! administer, and the stack exposes no admin API beyond what a browser needs (`/connect`).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use homehook_aws::{DynamoStore, SecretsManagerSecrets};
use homehook_core::clock::SystemClock;
use serde::{Deserialize, Serialize};

/// One deployed stack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Target {
    /// The AWS region.
    pub(crate) region: String,
    /// The DynamoDB table.
    pub(crate) table: String,
    /// The Secrets Manager secret (name or ARN).
    pub(crate) secret: String,
    /// The stack's base URL (the `BaseUrl` output).
    pub(crate) url: url::Url,
    /// The CloudFormation stack, for `homehook logs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stack: Option<String>,
    /// The AWS profile to sign in with [default: the SDK's usual choice].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) profile: Option<String>,
    /// Another endpoint for every AWS service (an emulator such as moto).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) endpoint: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TargetsFile {
    #[serde(default)]
    targets: BTreeMap<String, Target>,
}

/// The targets file.
pub(crate) fn file() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("HOMEHOOK_TARGETS") {
        return Ok(PathBuf::from(path));
    }
    dirs::config_dir()
        .map(|d| d.join("homehook").join("targets.toml"))
        .context("no config directory: set HOMEHOOK_TARGETS to a file for the targets")
}

fn read_all() -> Result<TargetsFile> {
    let path = file()?;
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("{}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TargetsFile::default()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The target named `name`.
pub(crate) fn load(name: &str) -> Result<Target> {
    let all = read_all()?;
    all.targets.get(name).cloned().ok_or_else(|| {
        let known: Vec<_> = all.targets.keys().cloned().collect();
        anyhow!(
            "no target \"{name}\" (known: {}): `homehook target add {name} --stack <stack>` adds it",
            if known.is_empty() {
                "none".into()
            } else {
                known.join(", ")
            }
        )
    })
}

/// Every target, by name.
pub(crate) fn list() -> Result<BTreeMap<String, Target>> {
    Ok(read_all()?.targets)
}

/// Saves `target` as `name` (replacing one of that name), written whole then renamed into
/// place so that a failure leaves the old file.
pub(crate) fn save(name: &str, target: Target) -> Result<PathBuf> {
    let mut all = read_all()?;
    all.targets.insert(name.to_string(), target);
    let path = file()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, toml::to_string(&all)?)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A stack's target from its outputs, as `sam list stack-outputs` prints them (JSON list of
/// `{OutputKey, OutputValue}`).
pub(crate) fn from_outputs(
    stack: &str,
    region: &str,
    profile: Option<&str>,
    outputs_json: &str,
) -> Result<Target> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Output {
        output_key: String,
        output_value: String,
    }
    let outputs: Vec<Output> = serde_json::from_str(outputs_json)
        .context("`sam list stack-outputs` did not print the expected JSON")?;
    let get = |key: &str| {
        outputs
            .iter()
            .find(|o| o.output_key == key)
            .map(|o| o.output_value.clone())
            .ok_or_else(|| {
                anyhow!("stack {stack} has no {key} output: is it a homehook stack, deployed with this version's template.yaml?")
            })
    };
    Ok(Target {
        region: region.to_string(),
        table: get("TableName")?,
        secret: get("SecretArn")?,
        url: get("BaseUrl")?
            .parse()
            .context("the stack's BaseUrl is not a URL")?,
        stack: Some(stack.to_string()),
        profile: profile.map(String::from),
        endpoint: None,
    })
}

/// Asks SAM for a deployed stack's outputs (the user's `sam`, their credentials).
pub(crate) fn stack_outputs(stack: &str, region: &str, profile: Option<&str>) -> Result<String> {
    let mut sam = Command::new("sam");
    sam.args([
        "list",
        "stack-outputs",
        "--stack-name",
        stack,
        "--output",
        "json",
        "--region",
        region,
    ]);
    if let Some(p) = profile {
        sam.args(["--profile", p]);
    }
    let out = sam.output().context(
        "cannot run `sam` (the AWS SAM CLI): install it, or give --table, --secret and --url",
    )?;
    if !out.status.success() {
        bail!(
            "`sam list stack-outputs --stack-name {stack}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The store and secrets of a target, reached with the user's AWS credentials.
pub(crate) async fn open(
    target: &Target,
) -> Result<(Arc<DynamoStore>, Arc<SecretsManagerSecrets>)> {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(target.region.clone()))
        .http_client(homehook_aws::https::client());
    if let Some(profile) = &target.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(endpoint) = &target.endpoint {
        loader = loader.endpoint_url(endpoint);
    }
    let sdk = loader.load().await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &target.table);
    let secrets = SecretsManagerSecrets::new(
        aws_sdk_secretsmanager::Client::new(&sdk),
        &target.secret,
        Arc::new(SystemClock),
    );
    Ok((Arc::new(store), Arc::new(secrets)))
}

/// What `homehook target add` was given.
pub(crate) struct NewTarget<'a> {
    pub(crate) name: &'a str,
    pub(crate) stack: Option<&'a str>,
    pub(crate) region: Option<&'a str>,
    pub(crate) profile: Option<&'a str>,
    pub(crate) table: Option<String>,
    pub(crate) secret: Option<String>,
    pub(crate) url: Option<String>,
    pub(crate) endpoint: Option<String>,
}

/// `homehook target add`.
pub(crate) fn add(new: NewTarget<'_>) -> Result<()> {
    if !new
        .name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || new.name.is_empty()
    {
        bail!("a target's name is letters, digits, - and _");
    }
    let region = new.region.unwrap_or("eu-west-1");
    let target = match (new.stack, new.table, new.secret, new.url) {
        (Some(stack), ..) => {
            let outputs = stack_outputs(stack, region, new.profile)?;
            from_outputs(stack, region, new.profile, &outputs)?
        }
        (None, Some(table), Some(secret), Some(url)) => Target {
            region: region.to_string(),
            table,
            secret,
            url: url
                .parse()
                .with_context(|| format!("--url {url} is not a URL"))?,
            stack: None,
            profile: new.profile.map(String::from),
            endpoint: None,
        },
        _ => bail!("give --stack <stack>, or --table, --secret and --url"),
    };
    let target = Target {
        endpoint: new.endpoint,
        ..target
    };
    let path = save(new.name, target.clone())?;
    println!(
        "target {} → {} (table {}), saved in {}",
        new.name,
        target.url,
        target.table,
        path.display()
    );
    println!(
        "Next: `homehook --target {} config push` publishes homehook.toml there.",
        new.name
    );
    Ok(())
}

/// `homehook target list`.
pub(crate) fn print_list() -> Result<()> {
    let all = list()?;
    if all.is_empty() {
        println!("no targets: `homehook target add <name> --stack <stack>` adds one");
        return Ok(());
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|(name, t)| {
            vec![
                name.clone(),
                t.url.to_string(),
                t.region.clone(),
                t.stack.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print!(
        "{}",
        crate::table::render(&["target", "url", "region", "stack"], &rows)
    );
    Ok(())
}

/// `homehook --target <name> secrets push`: the local secrets file into the stack's secret.
pub(crate) async fn push_secrets(
    ctx: crate::settings::Context<'_>,
    file: Option<&std::path::Path>,
) -> Result<()> {
    let Some(name) = ctx.target else {
        bail!("`homehook secrets push` fills a stack's secret: add --target <name>");
    };
    let path = match file {
        Some(f) => f.to_path_buf(),
        None => crate::settings::load_config(ctx.config_path)?
            .server
            .secrets_file
            .context("no secrets file: pass --file secrets.toml (or set server.secrets_file)")?,
    };
    // The same checks as `homehook serve` (owner-only mode, each entry's shape).
    let local = homehook_core::secrets::LocalSecrets::load(Some(&path))?;
    let entries = local.file_entries();
    if entries.is_empty() {
        bail!("{} has no entries", path.display());
    }
    let target = load(name)?;
    let (_, secrets) = open(&target).await?;
    let written = secrets
        .merge(entries)
        .await
        .with_context(|| format!("cannot write the secret {}", target.secret))?;
    println!(
        "wrote {} into the secret of {name}: {}",
        path.display(),
        written.join(", ")
    );
    println!("Warm functions read it within 5 minutes; new ones at once.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_read_from_the_stacks_outputs() {
        let json = r#"[
          {"OutputKey": "BaseUrl", "OutputValue": "https://abc.execute-api.eu-west-1.amazonaws.com", "Description": "x"},
          {"OutputKey": "TableName", "OutputValue": "homehook-Table-1X2Y"},
          {"OutputKey": "SecretArn", "OutputValue": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:ClientSecret-abc"}
        ]"#;
        let t = from_outputs("homehook", "eu-west-1", Some("home"), json).expect("target");
        assert_eq!(t.table, "homehook-Table-1X2Y");
        assert_eq!(
            t.url.as_str(),
            "https://abc.execute-api.eu-west-1.amazonaws.com/"
        );
        assert_eq!(t.profile.as_deref(), Some("home"));
        let missing = from_outputs("other", "eu-west-1", None, "[]").expect_err("not homehook");
        assert!(
            missing.to_string().contains("no TableName output"),
            "{missing}"
        );
    }
}
