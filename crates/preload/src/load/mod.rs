//! Getting the rules in force: start-up (`state`) from the compiled table
//! file (`table_file`) or the policy its source delivers (`policy_source`),
//! the kernel backstop installed from it (`backstop`), and the refresher
//! that swaps whole tables later (`refresh`).

pub(crate) mod backstop;
pub(crate) mod policy_source;
pub(crate) mod refresh;
pub(crate) mod state;
pub mod table_file;
