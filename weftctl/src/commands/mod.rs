//! What each command does.

mod config;
mod generate;
mod inspect;
mod resources;

use crate::cli::Command;
use crate::session::{Error, Session};

pub async fn dispatch(s: &mut Session<'_>, command: Command) -> Result<(), Error> {
    match command {
        Command::Config { command } => config::run(s, command).await,
        Command::Get(args) => resources::get(s, args).await,
        Command::Apply(args) => resources::apply(s, args).await,
        Command::Delete(args) => resources::delete(s, args).await,
        Command::Inspect(args) => inspect::run(s, args).await,
        Command::Generate { command } => generate::run(s, command).await,
        Command::Version => generate::version(s).await,
        Command::Completion { shell } => generate::completion(s, shell),
    }
}
