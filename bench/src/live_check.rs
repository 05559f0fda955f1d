//! What following the published config costs a request: `Live::app()` (the lookup every
//! request and tick makes) on a process that follows beside one that does not, and the one
//! store read a process makes when its look is due (at most every `CHECK_EVERY_SECS`), on the
//! embedded store and on DynamoDB (moto).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use homehook_core::App;
use homehook_core::clock::{Clock, SystemClock};
use homehook_core::config::Config;
use homehook_core::live::Live;
use homehook_core::publish;
use homehook_core::secrets::LocalSecrets;
use homehook_core::services::Services;
use homehook_core::store::Store;

use crate::stats::Samples;

/// The figures.
#[derive(Debug)]
pub struct LiveCheck {
    /// ns per `app()` on a process with a fixed config (medians of rounds).
    pub fixed_ns: f64,
    /// ns per `app()` on a process following the published config.
    pub following_ns: f64,
    /// The store read of a due look, ms, per store name.
    pub reads: Vec<(&'static str, Samples)>,
}

fn app(store: Arc<dyn Store>) -> Result<App> {
    Ok(App::new(Services::new(
        Config::empty()?,
        store,
        Arc::new(LocalSecrets::from_entries(Default::default())),
        Arc::new(SystemClock),
    )?))
}

/// Median ns per `live.app()` over `rounds` rounds of `per_round` calls.
async fn per_call(live: &Live, rounds: usize, per_round: usize) -> f64 {
    let mut rounds_ns = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..per_round {
            std::hint::black_box(live.app().await);
        }
        rounds_ns.push(start.elapsed().as_nanos() as f64 / per_round as f64);
    }
    Samples::from_values(rounds_ns).median()
}

/// Measures on `stores` (name, store): the lookups on the first, a due look's read on each.
pub async fn measure(
    stores: Vec<(&'static str, Arc<dyn Store>)>,
    reads: usize,
) -> Result<LiveCheck> {
    let config = "[connections.home]\nprovider = \"netatmo\"\n";
    let mut out = Vec::new();
    for (name, store) in &stores {
        publish::publish(&**store, config, "bench", None, SystemClock.now()).await?;
        let mut samples = Vec::with_capacity(reads);
        for _ in 0..reads {
            let start = Instant::now();
            store.get_config().await?;
            samples.push(start.elapsed());
        }
        out.push((*name, Samples::millis(samples)));
    }
    let store = Arc::clone(&stores[0].1);
    let fixed = Live::fixed(Arc::new(app(Arc::clone(&store))?));
    let following = Live::following(app(store)?, Box::new(|c| c)).await;
    // Alternate so that drift on a shared machine hits both.
    let (mut f, mut l) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        f.push(per_call(&fixed, 5, 200_000).await);
        l.push(per_call(&following, 5, 200_000).await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(LiveCheck {
        fixed_ns: Samples::from_values(f).median(),
        following_ns: Samples::from_values(l).median(),
        reads: out,
    })
}
