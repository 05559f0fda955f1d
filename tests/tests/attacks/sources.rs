//! Who is calling, round two: the lockout behind a reverse proxy, `Host` on admin pages,
//! wrong admin keys, sources that rotate addresses.

#[allow(unused_imports)]
use super::*;
