//! End to end on the default database (SQLite), with the real library.

mod common;

#[test]
fn permissive_report_then_mode_switch_enforces_running_process() {
    let dir = common::scratch("e2e-sqlite");
    let database = format!("sqlite:{}/data/ldguard.db", dir.display());
    common::scenario::permissive_then_enforce(&dir, &database);
}
