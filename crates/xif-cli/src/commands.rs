//! One module per subcommand: arguments in, one library call, output out.

pub mod explain;
pub mod new;
pub mod verify;
