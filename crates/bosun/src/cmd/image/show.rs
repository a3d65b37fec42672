//! `bosun images` / `image ls` (Docker's table) and `image inspect` (JSON).

use super::format::{self, Fields};
use super::human_size;
use image::{Image, ImageStore};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only show image ids.
    #[arg(short, long)]
    quiet: bool,
    /// Show full image ids.
    #[arg(long)]
    no_trunc: bool,
    /// Show repo digests.
    #[arg(long)]
    digests: bool,
    /// Format output: `json`, a template like '{{.Repository}}:{{.Tag}}', or 'table {{.ID}}\t{{.Size}}'.
    /// Fields: Repository, Tag, Digest, ID, CreatedSince, CreatedAt, Size.
    #[arg(long)]
    format: Option<String>,
    /// Only images whose repository matches this name.
    repository: Option<String>,
}

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  bosun image inspect busybox | jq '.[0].Config.Cmd'\n  bosun image inspect -f '{{.Id}}' busybox"
)]
pub struct InspectArgs {
    /// Print each image through a template like '{{.Id}}' or '{{.Config.Cmd}}', or `json`.
    #[arg(short, long)]
    format: Option<String>,
    /// Image names or ids.
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn list(store: &ImageStore, args: ListArgs) -> anyhow::Result<ExitCode> {
    let mut images = store.list()?;
    if let Some(repo) = &args.repository {
        images.retain(|i| &i.familiar().1 == repo || i.familiar().0 == *repo);
    }
    images.sort_by(|a, b| {
        b.record
            .added
            .cmp(&a.record.added)
            .then(a.name.cmp(&b.name))
    });
    let id = |i: &Image| {
        if args.no_trunc {
            i.id().to_string()
        } else {
            i.id().short().to_string()
        }
    };
    if args.quiet {
        let mut seen = std::collections::HashSet::new();
        for i in images.iter().filter(|i| seen.insert(i.id().clone())) {
            println!("{}", id(i));
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(fmt) = &args.format {
        let rows: Vec<Fields> = images.iter().map(|i| fields(i, &id(i))).collect();
        for line in format::render(fmt, &rows)? {
            println!("{line}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = vec![header(args.digests)];
    for i in &images {
        let (_, repo, tag) = i.familiar();
        let mut row = vec![repo, tag.unwrap_or_else(|| "<none>".into())];
        if args.digests {
            row.push(
                i.record
                    .repo_digest
                    .as_ref()
                    .map_or("<none>".into(), |d| d.to_string()),
            );
        }
        row.extend([id(i), created(i), human_size(i.size())]);
        rows.push(row);
    }
    print_table(&rows);
    Ok(ExitCode::SUCCESS)
}

fn header(digests: bool) -> Vec<String> {
    let mut h = vec!["REPOSITORY", "TAG"];
    if digests {
        h.push("DIGEST");
    }
    h.extend(["IMAGE ID", "CREATED", "SIZE"]);
    h.into_iter().map(String::from).collect()
}

/// Columns padded to the widest cell plus three spaces, as Docker does.
fn print_table(rows: &[Vec<String>]) {
    let lines: Vec<String> = rows.iter().map(|r| r.join("\t")).collect();
    for line in format::align(&lines) {
        println!("{line}");
    }
}

/// The fields `--format` can name.
fn fields(i: &Image, id: &str) -> Fields {
    let (_, repo, tag) = i.familiar();
    Fields::from([
        ("Repository", repo),
        ("Tag", tag.unwrap_or_else(|| "<none>".into())),
        (
            "Digest",
            i.record
                .repo_digest
                .as_ref()
                .map_or("<none>".into(), |d| d.to_string()),
        ),
        ("ID", id.to_string()),
        ("CreatedSince", created(i)),
        ("CreatedAt", i.config.created.clone().unwrap_or_default()),
        ("Size", human_size(i.size())),
    ])
}

/// "3 minutes ago", from the image config's creation time.
fn created(i: &Image) -> String {
    let Some(t) = i
        .config
        .created
        .as_deref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
    else {
        return "N/A".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    let (n, unit) = match secs {
        s if s < 60 => return "Less than a minute ago".into(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s if s < 86_400 * 14 => (s / 86_400, "day"),
        s if s < 86_400 * 60 => (s / (86_400 * 7), "week"),
        s if s < 86_400 * 730 => (s / (86_400 * 30), "month"),
        s => (s / (86_400 * 365), "year"),
    };
    let plural = if n == 1 { "" } else { "s" };
    let n = if n == 1 && unit == "hour" {
        "About an".to_string()
    } else {
        n.to_string()
    };
    format!("{n} {unit}{plural} ago")
}

pub fn inspect(store: &ImageStore, args: InspectArgs) -> anyhow::Result<ExitCode> {
    let all = store.list()?;
    let mut docs = Vec::new();
    for name in &args.images {
        let img = store.get(name)?;
        let names: Vec<Image> = all.iter().filter(|i| i.id() == img.id()).cloned().collect();
        docs.push(img.inspect(&names));
    }
    if let Some(fmt) = &args.format {
        for doc in &docs {
            println!("{}", format::render_value(fmt, doc)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", serde_json::to_string_pretty(&docs)?);
    Ok(ExitCode::SUCCESS)
}
