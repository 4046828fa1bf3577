//! `stratad`: see the `strata_daemon` library.

fn main() {
    if let Err(e) = strata_daemon::main_entry() {
        eprintln!("stratad: {e:#}");
        std::process::exit(1);
    }
}
