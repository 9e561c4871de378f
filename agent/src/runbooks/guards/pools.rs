//! The concurrency / blast-radius guard: which targets of each group runs
//! are acting on right now. In memory: a run holds its slot until it ends,
//! and runs resumed after a restart of medic take their slots again (from
//! their journal, before any new run can take them: [`Pools::hold`]).

use std::collections::{BTreeMap, BTreeSet};

/// Targets being acted on, per group, and the runs holding each.
#[derive(Debug, Default)]
pub struct Pools {
    groups: BTreeMap<String, BTreeMap<String, BTreeSet<i64>>>,
}

impl Pools {
    /// Let run `run` act on `target` in `group` if the target is already held
    /// (the per-target lock orders them) or fewer than `limit` targets are.
    /// Otherwise say why not.
    pub fn admit(
        &mut self,
        group: &str,
        limit: usize,
        target: &str,
        run: i64,
    ) -> Result<(), String> {
        let held = self.groups.entry(group.to_string()).or_default();
        if let Some(runs) = held.get_mut(target) {
            runs.insert(run);
            return Ok(());
        }
        if held.len() >= limit {
            let names: Vec<&str> = held.keys().map(String::as_str).take(5).collect();
            return Err(format!(
                "{} of at most {limit} targets in group {group:?} are already being acted on ({}{})",
                held.len(),
                names.join(", "),
                if held.len() > names.len() {
                    ", …"
                } else {
                    ""
                }
            ));
        }
        held.entry(target.to_string()).or_default().insert(run);
        Ok(())
    }

    /// Let run `run` hold `target` in `group` whatever the limit: a run
    /// resumed after a restart of medic takes back the slot it held before.
    pub fn hold(&mut self, group: &str, target: &str, run: i64) {
        self.groups
            .entry(group.to_string())
            .or_default()
            .entry(target.to_string())
            .or_default()
            .insert(run);
    }

    /// The run ended: free its slots.
    pub fn release(&mut self, run: i64) {
        for held in self.groups.values_mut() {
            held.retain(|_, runs| {
                runs.remove(&run);
                !runs.is_empty()
            });
        }
    }

    /// Targets held in a group.
    pub fn held(&self, group: &str) -> usize {
        self.groups.get(group).map_or(0, BTreeMap::len)
    }
}
