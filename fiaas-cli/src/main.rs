//! `fiaas`: validate, migrate and render fiaas.yml files offline.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "fiaas", version, about = "Work with fiaas.yml files offline")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check fiaas.yml files; every problem of every file is printed to stderr.
    Validate {
        /// fiaas.yml files (version 2 or 3).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a fiaas.yml in version 3 form (a v2 file is migrated, a v3 file printed as is).
    Migrate {
        /// fiaas.yml file.
        file: PathBuf,
        /// Leave out every value equal to its v3 default.
        #[arg(long)]
        strip_defaults: bool,
    },
    /// Print the v3 defaults (the upstream daemon's defaults.yml).
    Defaults,
    /// Print the JSON Schema of the v3 format, for editors.
    Schema,
}

fn read(path: &Path) -> anyhow::Result<String> {
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.len() > fiaas_spec::MAX_DOCUMENT_BYTES as u64 {
        anyhow::bail!(
            "{}: {} bytes, more than the limit of {} bytes",
            path.display(),
            meta.len(),
            fiaas_spec::MAX_DOCUMENT_BYTES
        );
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn validate(files: &[PathBuf]) -> ExitCode {
    let mut ok = true;
    for file in files {
        let result = read(file).and_then(|text| Ok(fiaas_spec::validate(&text)?));
        if let Err(e) = result {
            ok = false;
            eprintln!("{}: {e:#}", file.display());
        }
    }
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

fn migrate(file: &Path, strip_defaults: bool) -> anyhow::Result<()> {
    let document = fiaas_spec::parse_document(&read(file)?)?;
    let v3 = fiaas_spec::to_v3(&document, strip_defaults)?;
    print!("{}", fiaas_spec::to_yaml(&v3));
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate { files } => return validate(&files),
        Command::Migrate {
            file,
            strip_defaults,
        } => migrate(&file, strip_defaults),
        Command::Defaults => {
            print!("{}", fiaas_spec::V3_DEFAULTS_YAML);
            Ok(())
        }
        Command::Schema => {
            println!("{}", fiaas_spec::V3_SCHEMA_JSON.trim_end());
            Ok(())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
