//! `portico-ctl`: a tenant's instances from the command line, through the portal's REST API
//! (`/api/v1`) with an API token. Everything it does goes through the same policy as the
//! portal; it only formats what the API answers.

mod client;
mod output;

use clap::{Parser, Subcommand, ValueEnum};
use client::{Client, Failure, Result};
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "portico-ctl",
    version,
    about = "Manage your organisation's instances through a Portico portal's API.",
    after_help = "Exit codes: 0 done; 1 the operation failed; 2 bad usage; 3 refused by the \
                  portal (token, role, plan or input: the message says which); 4 not found; \
                  5 portal unreachable; 6 --wait timed out; 7 any other error."
)]
struct Cli {
    /// Output: a table for people, or JSON for scripts.
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table, global = true)]
    output: Format,
    /// Where `login` keeps the portal's URL and token (default:
    /// $XDG_CONFIG_HOME/portico/credentials.json or ~/.config/portico/credentials.json).
    #[arg(long, env = "PORTICO_CREDENTIALS", global = true)]
    credentials: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Copy, Clone, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Store the portal's URL and an API token, or the provider's key (read from
    /// PORTICO_TOKEN, or asked for), in a file only you can read, after checking that they work.
    Login {
        /// The portal, e.g. https://portal.example.com
        #[arg(long)]
        url: String,
    },
    /// List or show instances.
    Instances {
        #[command(subcommand)]
        command: InstancesCommand,
    },
    /// Stop an instance.
    Stop(Target),
    /// Start a stopped instance.
    Start(Target),
    /// Restart an instance.
    Restart(Target),
    /// Change an instance's resources (unset ones stay as they are).
    Scale {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        replicas: Option<u32>,
        #[arg(long)]
        cpu_millicores: Option<u32>,
        #[arg(long)]
        memory_mib: Option<u32>,
        #[arg(long)]
        storage_gib: Option<u32>,
    },
    /// Change configuration parameters: NAME=VALUE, as many as needed.
    UpdateConfig {
        #[command(flatten)]
        target: Target,
        #[arg(required = true, value_name = "NAME=VALUE")]
        changes: Vec<String>,
    },
    /// Delete an instance; --confirm must repeat its name.
    Delete {
        #[command(flatten)]
        target: Target,
        #[arg(long)]
        confirm: String,
    },
    /// Operations.
    Ops {
        #[command(subcommand)]
        command: OpsCommand,
    },
    /// The provider's tenants (needs a provider key, ppk_…, stored with `login`).
    Tenants {
        #[command(subcommand)]
        command: TenantsCommand,
    },
    /// Read the audit log, newest first.
    Audit {
        /// Only lines about this instance (name or id).
        #[arg(long)]
        instance: Option<String>,
        #[arg(long)]
        operation: Option<String>,
        /// An email, or token:<name>.
        #[arg(long)]
        user: Option<String>,
        /// requested, denied, succeeded or failed.
        #[arg(long)]
        outcome: Option<String>,
        /// How many lines at most.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
}

#[derive(Subcommand)]
enum InstancesCommand {
    /// Every instance the token may see, by name.
    List {
        #[arg(long)]
        environment: Option<String>,
        #[arg(long)]
        status: Option<String>,
        /// Only names containing this.
        #[arg(long)]
        name: Option<String>,
    },
    /// One instance in full.
    Get { instance: String },
}

#[derive(Subcommand)]
enum TenantsCommand {
    /// Every tenant.
    List,
    /// One tenant.
    Get { tenant: String },
    /// Create a tenant on a plan.
    Create {
        /// Lowercase letters, digits and '-'.
        id: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        plan: String,
    },
    /// Give a tenant another name.
    Rename {
        tenant: String,
        #[arg(long)]
        name: String,
    },
    /// Move a tenant to another plan.
    SetPlan {
        tenant: String,
        #[arg(long)]
        plan: String,
    },
    /// Suspend a tenant: its people can look but change nothing.
    Suspend { tenant: String },
    /// Resume a suspended tenant.
    Resume { tenant: String },
}

#[derive(Subcommand)]
enum OpsCommand {
    /// Where an operation stands.
    Get {
        id: String,
        #[command(flatten)]
        wait: Wait,
    },
}

#[derive(clap::Args)]
struct Target {
    /// The instance: its name or its id.
    instance: String,
    #[command(flatten)]
    wait: Wait,
}

#[derive(clap::Args, Clone, Copy)]
struct Wait {
    /// Follow the operation to its end, showing progress; exit 1 if it fails.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up (exit 6) after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let cli = Cli::parse();
    let code = match run(&cli).await {
        Ok(()) => 0,
        Err(f) => {
            eprintln!("portico-ctl: {f}");
            f.exit_code()
        }
    };
    std::process::exit(code);
}

async fn run(cli: &Cli) -> Result<()> {
    let path = credentials_path(cli)?;
    if let Command::Login { url } = &cli.command {
        return login(&path, url).await;
    }
    let client = stored_client(&path)?;
    let out = Out { format: cli.output };
    match &cli.command {
        Command::Login { .. } => unreachable!("handled above"),
        Command::Instances { command } => match command {
            InstancesCommand::List {
                environment,
                status,
                name,
            } => {
                let mut items = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let mut query = vec![("limit", "200".to_owned())];
                    for (k, v) in [
                        ("environment", environment),
                        ("status", status),
                        ("name", name),
                    ] {
                        if let Some(v) = v {
                            query.push((k, v.clone()));
                        }
                    }
                    if let Some(c) = &cursor {
                        query.push(("cursor", c.clone()));
                    }
                    let page = client
                        .get(&format!("/api/v1/instances?{}", encode(&query)))
                        .await?;
                    items.extend(page["items"].as_array().cloned().unwrap_or_default());
                    match page["next_cursor"].as_str() {
                        Some(c) => cursor = Some(c.to_owned()),
                        None => break,
                    }
                }
                out.instances(&items);
            }
            InstancesCommand::Get { instance } => {
                let id = resolve(&client, instance).await?;
                out.instance(&client.get(&format!("/api/v1/instances/{id}")).await?);
            }
        },
        Command::Stop(t) => operate(&client, &out, t, json!({"operation": "stop"})).await?,
        Command::Start(t) => operate(&client, &out, t, json!({"operation": "start"})).await?,
        Command::Restart(t) => operate(&client, &out, t, json!({"operation": "restart"})).await?,
        Command::Scale {
            target,
            replicas,
            cpu_millicores,
            memory_mib,
            storage_gib,
        } => {
            let id = resolve(&client, &target.instance).await?;
            let current = client.get(&format!("/api/v1/instances/{id}")).await?;
            let mut resources = current["resources"].clone();
            for (k, v) in [
                ("replicas", replicas),
                ("cpu_millicores", cpu_millicores),
                ("memory_mib", memory_mib),
                ("storage_gib", storage_gib),
            ] {
                if let Some(v) = v {
                    resources[k] = json!(v);
                }
            }
            let body = json!({"operation": "scale", "resources": resources});
            operate(&client, &out, target, body).await?;
        }
        Command::UpdateConfig { target, changes } => {
            let mut map = serde_json::Map::new();
            for c in changes {
                let Some((k, v)) = c.split_once('=') else {
                    return Err(Failure::Refused(format!("{c}: expected NAME=VALUE")));
                };
                map.insert(k.trim().to_owned(), parse_value(v.trim()));
            }
            let body = json!({"operation": "update-config", "changes": map});
            operate(&client, &out, target, body).await?;
        }
        Command::Delete { target, confirm } => {
            let body = json!({"operation": "delete", "confirm_name": confirm});
            operate(&client, &out, target, body).await?;
        }
        Command::Ops { command } => match command {
            OpsCommand::Get { id, wait } => {
                let op = client.get(&format!("/api/v1/operations/{id}")).await?;
                let op = if wait.wait {
                    follow(&client, op, *wait, out.format).await?
                } else {
                    op
                };
                out.operation(&op);
                ended_well(&op)?;
            }
        },
        Command::Tenants { command } => {
            let (path, body) = match command {
                TenantsCommand::List => {
                    let list = client.get("/provider/v1/tenants").await?;
                    let items = list.as_array().cloned().unwrap_or_default();
                    out.json_or(&list, || output::tenants(&items));
                    return Ok(());
                }
                TenantsCommand::Get { tenant } => {
                    let t = client
                        .get(&format!("/provider/v1/tenants/{}", percent(tenant)))
                        .await?;
                    out.json_or(&t, || output::tenants(std::slice::from_ref(&t)));
                    return Ok(());
                }
                TenantsCommand::Create { id, name, plan } => {
                    let t = client
                        .post(
                            "/provider/v1/tenants",
                            json!({"id": id, "name": name, "plan": plan}),
                            None,
                        )
                        .await?;
                    out.json_or(&t, || output::tenants(std::slice::from_ref(&t)));
                    return Ok(());
                }
                TenantsCommand::Rename { tenant, name } => (tenant, json!({"name": name})),
                TenantsCommand::SetPlan { tenant, plan } => (tenant, json!({"plan": plan})),
                TenantsCommand::Suspend { tenant } => (tenant, json!({"suspended": true})),
                TenantsCommand::Resume { tenant } => (tenant, json!({"suspended": false})),
            };
            let t = client
                .patch(&format!("/provider/v1/tenants/{}", percent(path)), body)
                .await?;
            out.json_or(&t, || output::tenants(std::slice::from_ref(&t)));
        }
        Command::Audit {
            instance,
            operation,
            user,
            outcome,
            limit,
        } => {
            let mut query = Vec::new();
            if let Some(i) = instance {
                query.push(("instance_id", resolve(&client, i).await?));
            }
            for (k, v) in [
                ("operation", operation),
                ("user", user),
                ("outcome", outcome),
            ] {
                if let Some(v) = v {
                    query.push((k, v.clone()));
                }
            }
            let mut lines = Vec::new();
            let mut cursor: Option<String> = None;
            while lines.len() < *limit {
                let mut q = query.clone();
                if let Some(c) = &cursor {
                    q.push(("cursor", c.clone()));
                }
                let page = client.get(&format!("/api/v1/audit?{}", encode(&q))).await?;
                lines.extend(page["items"].as_array().cloned().unwrap_or_default());
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            lines.truncate(*limit);
            out.audit(&lines);
        }
    }
    Ok(())
}

/// Requests an operation on `t`, then follows it with `--wait`.
async fn operate(client: &Client, out: &Out, t: &Target, body: Value) -> Result<()> {
    let id = resolve(client, &t.instance).await?;
    // One key per invocation: a retry inside this run never queues a second operation.
    let key = format!("portico-ctl-{}", uuid_like());
    let op = client
        .post(
            &format!("/api/v1/instances/{id}/operations"),
            body,
            Some(&key),
        )
        .await?;
    let op = if t.wait.wait {
        follow(client, op, t.wait, out.format).await?
    } else {
        op
    };
    out.operation(&op);
    ended_well(&op)
}

fn ended_well(op: &Value) -> Result<()> {
    if op["state"] == "failed" {
        return Err(Failure::OperationFailed(format!(
            "{} {}: {}",
            op["operation"].as_str().unwrap_or("operation"),
            op["id"].as_str().unwrap_or(""),
            op["last_error"].as_str().unwrap_or("no reason given")
        )));
    }
    Ok(())
}

/// Polls the operation until it ends, printing each change of progress to stderr.
async fn follow(client: &Client, mut op: Value, wait: Wait, format: Format) -> Result<Value> {
    let deadline = Instant::now() + Duration::from_secs(wait.timeout);
    let id = op["id"].as_str().unwrap_or_default().to_owned();
    let mut last = String::new();
    let chatty = format == Format::Table || std::io::stderr().is_terminal();
    loop {
        let line = output::progress(&op);
        if chatty && line != last {
            eprintln!("{line}");
            last = line;
        }
        if op["finished"] == true {
            return Ok(op);
        }
        if Instant::now() >= deadline {
            return Err(Failure::TimedOut(format!(
                "operation {id} had not ended after {} s; `portico-ctl ops get {id} --wait` \
                 follows it again",
                wait.timeout
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        op = client.get(&format!("/api/v1/operations/{id}")).await?;
    }
}

/// An instance's id from its name or id.
async fn resolve(client: &Client, instance: &str) -> Result<String> {
    let page = client
        .get(&format!(
            "/api/v1/instances?{}",
            encode(&[("name", instance.to_owned()), ("limit", "200".into())])
        ))
        .await?;
    let items = page["items"].as_array().cloned().unwrap_or_default();
    if let Some(i) = items.iter().find(|i| i["name"] == instance) {
        return Ok(i["id"].as_str().unwrap_or_default().to_owned());
    }
    // Not a name: an id, which the API checks (another tenant's is not found).
    Ok(instance.to_owned())
}

/// A value as JSON: true/false and integers as themselves, anything else as text.
fn parse_value(v: &str) -> Value {
    match v {
        "true" => json!(true),
        "false" => json!(false),
        _ => v
            .parse::<i64>()
            .map(|n| json!(n))
            .unwrap_or_else(|_| json!(v)),
    }
}

fn encode(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", percent(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// 128 random bits as hex, for idempotency keys.
fn uuid_like() -> String {
    let mut bytes = [0u8; 16];
    // Without the system's randomness, a clock reading still tells one run from another.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

// ---- credentials ----

fn credentials_path(cli: &Cli) -> Result<PathBuf> {
    if let Some(p) = &cli.credentials {
        return Ok(p.clone());
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| {
            Failure::Other("neither XDG_CONFIG_HOME nor HOME is set; pass --credentials".into())
        })?;
    Ok(base.join("portico").join("credentials.json"))
}

async fn login(path: &PathBuf, url: &str) -> Result<()> {
    let url = url.trim().trim_end_matches('/');
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(Failure::Refused(format!(
            "{url}: the portal's URL starts with https:// (or http:// on a test machine)"
        )));
    }
    let token = match std::env::var("PORTICO_TOKEN") {
        Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => {
            eprint!("API token (ptk_…) or provider key (ppk_…): ");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Failure::Other(format!("reading the token: {e}")))?;
            line.trim().to_owned()
        }
    };
    // Proves the URL and the credential before anything is written.
    let probe = if token.starts_with("ptk_") {
        "/api/v1/instances?limit=1"
    } else if token.starts_with("ppk_") {
        "/provider/v1/tenants"
    } else {
        return Err(Failure::Refused(
            "an API token starts with ptk_ (create one in the portal under API tokens); a \
             provider key with ppk_"
                .into(),
        ));
    };
    Client::new(url, &token)?.get(probe).await?;
    write_private(path, &json!({"url": url, "token": token}))?;
    eprintln!("Logged in to {url}; credentials in {}", path.display());
    Ok(())
}

/// Writes `value` to `path`, readable and writable by this user only (the file holds a
/// secret), replacing any earlier file whole.
fn write_private(path: &PathBuf, value: &Value) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| Failure::Other(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(fail)?;
    }
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(
        serde_json::to_string_pretty(value)
            .unwrap_or_default()
            .as_bytes(),
    )
    .map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

fn stored_client(path: &PathBuf) -> Result<Client> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::Other(format!(
            "no credentials at {} ({e}); run `portico-ctl login --url <portal>` first",
            path.display()
        ))
    })?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::Other(format!("{}: {e}", path.display())))?;
    match (v["url"].as_str(), v["token"].as_str()) {
        (Some(url), Some(token)) => Client::new(url, token),
        _ => Err(Failure::Other(format!(
            "{} lacks url or token; run `portico-ctl login` again",
            path.display()
        ))),
    }
}

/// Prints answers as tables or JSON.
struct Out {
    format: Format,
}

impl Out {
    fn json_or(&self, v: &Value, table: impl FnOnce() -> String) {
        let text = match self.format {
            Format::Json => serde_json::to_string_pretty(v).unwrap_or_default(),
            Format::Table => table(),
        };
        println!("{text}");
    }

    fn instances(&self, items: &[Value]) {
        let v = Value::Array(items.to_vec());
        self.json_or(&v, || output::instances(items));
    }

    fn instance(&self, v: &Value) {
        self.json_or(v, || output::instance(v));
    }

    fn operation(&self, v: &Value) {
        self.json_or(v, || output::operation(v));
    }

    fn audit(&self, lines: &[Value]) {
        let v = Value::Array(lines.to_vec());
        self.json_or(&v, || output::audit(lines));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_keep_their_json_kinds() {
        assert_eq!(parse_value("true"), json!(true));
        assert_eq!(parse_value("200"), json!(200));
        assert_eq!(parse_value("debug"), json!("debug"));
        assert_eq!(parse_value("1.5"), json!("1.5"));
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode(&[("name", "a b&c".into()), ("limit", "2".into())]),
            "name=a%20b%26c&limit=2"
        );
    }

    #[test]
    fn credentials_are_private_to_the_user() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile_dir();
        let path = dir.join("nested").join("credentials.json");
        write_private(&path, &json!({"url": "http://x", "token": "ptk_y"})).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let _ = std::fs::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("portico-ctl-test-{}", uuid_like()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
