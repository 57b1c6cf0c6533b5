//! The `lookalike` binary: everything lives in the library; this maps results to exit codes.

fn main() -> std::process::ExitCode {
    lookalike::cli::main()
}
