//! Which faults a chaos run injects, and in what order: a pure function of
//! the seed and the broker's mode, so that a run is reproduced by its seed.

use rand::SeedableRng as _;
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom as _;

/// The services a chaos run starts, in start order (the webhooks service
/// before the gateway, which is given its address).
pub(crate) const SERVICES: [&str; 6] = [
    "operations",
    "webhooks",
    "gateway",
    "search-worker",
    "enrichment-worker",
    "research-worker",
];

/// The workers among [`SERVICES`].
pub(crate) const WORKERS: [&str; 3] = ["search-worker", "enrichment-worker", "research-worker"];

/// The broker a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// One nats-server, file store, fsync before every ack.
    Single,
    /// Three nats-server processes forming a JetStream cluster, every
    /// stream and bucket at R3.
    Cluster,
}

impl Mode {
    /// `single` or `cluster`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::Cluster => "cluster",
        }
    }
}

/// One fault.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Fault {
    /// SIGKILL of a service, then a restart on the same addresses.
    Kill(&'static str),
    /// SIGKILL of nats-server (single mode), then a restart on the same
    /// port and store.
    RestartBroker,
    /// SIGKILL of the node leading the jobs stream (cluster mode), then a
    /// restart of that node once a new leader is elected.
    KillJobsLeader,
    /// SIGSTOP of a worker for longer than `ack_wait` (its jobs are
    /// delivered to no one else, but its leases expire), then SIGCONT.
    Stall(&'static str),
}

impl Fault {
    /// What is done, for the table.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Fault::Kill(_) => "SIGKILL + restart",
            Fault::RestartBroker => "SIGKILL + restart on the same store",
            Fault::KillJobsLeader => "SIGKILL of the jobs stream's leader + restart",
            Fault::Stall(_) => "SIGSTOP past ack_wait + SIGCONT",
        }
    }

    /// Whom it is done to, for the table.
    pub(crate) fn target(&self) -> &'static str {
        match self {
            Fault::Kill(name) | Fault::Stall(name) => name,
            Fault::RestartBroker => "nats-server",
            Fault::KillJobsLeader => "DOSSIER_JOBS leader",
        }
    }
}

/// The faults of a run in `mode` with `seed`, in the order they are
/// injected. Single mode: every service killed once, the broker restarted
/// once, one worker stalled. Cluster mode (a shorter phase): the jobs
/// stream's leader killed once and one service killed.
pub(crate) fn schedule(seed: u64, mode: Mode) -> Vec<Fault> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut faults: Vec<Fault> = match mode {
        Mode::Single => {
            let mut faults: Vec<Fault> = SERVICES.iter().map(|s| Fault::Kill(s)).collect();
            faults.push(Fault::RestartBroker);
            faults.push(Fault::Stall(pick(&mut rng, &WORKERS)));
            faults
        }
        Mode::Cluster => vec![
            Fault::KillJobsLeader,
            Fault::Kill(pick(&mut rng, &SERVICES)),
        ],
    };
    faults.shuffle(&mut rng);
    faults
}

fn pick(rng: &mut Xoshiro256PlusPlus, items: &[&'static str]) -> &'static str {
    use rand::RngExt as _;
    items[rng.random_range(0..items.len())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_one_schedule_and_every_fault_is_in_it() {
        for mode in [Mode::Single, Mode::Cluster] {
            assert_eq!(schedule(7, mode), schedule(7, mode), "{mode:?}");
        }
        let single = schedule(7, Mode::Single);
        assert_eq!(single.len(), 8);
        for service in SERVICES {
            assert_eq!(
                single
                    .iter()
                    .filter(|f| **f == Fault::Kill(service))
                    .count(),
                1,
                "{service} is killed once: {single:?}"
            );
        }
        assert_eq!(
            single
                .iter()
                .filter(|f| **f == Fault::RestartBroker)
                .count(),
            1
        );
        assert!(
            single
                .iter()
                .any(|f| matches!(f, Fault::Stall(w) if WORKERS.contains(w))),
            "a worker is stalled: {single:?}"
        );
        assert!(!single.contains(&Fault::KillJobsLeader));

        let cluster = schedule(7, Mode::Cluster);
        assert_eq!(cluster.len(), 2);
        assert!(cluster.contains(&Fault::KillJobsLeader), "{cluster:?}");
        assert!(!cluster.contains(&Fault::RestartBroker));
    }

    #[test]
    fn seeds_vary_the_order() {
        let orders: std::collections::HashSet<Vec<Fault>> =
            (0..20).map(|seed| schedule(seed, Mode::Single)).collect();
        assert!(orders.len() > 10, "20 seeds gave {} orders", orders.len());
    }
}
