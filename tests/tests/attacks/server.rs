//! The server itself, round two: slow headers, idle and exhausted connections, h2c, forged log
//! lines, a vendor's words in an error, what `/` shows.

#[allow(unused_imports)]
use super::*;
