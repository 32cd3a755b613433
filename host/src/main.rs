//! The `weir` binary: parse the command line, run it, print errors with
//! their causes and choose the exit code (0 ok, 1 invalid config from
//! `validate`, 2 any other error; a closed stdout is not an error).

use std::process::ExitCode;

fn main() -> ExitCode {
    match weir::cli::main() {
        Ok(code) => code,
        Err(error) => {
            let broken_pipe = error.chain().any(|cause| {
                cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
