//! `strata` (also installed as `rpm-ostree`): see the `strata_cli` library.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: Starting the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match runtime.block_on(strata_cli::run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
