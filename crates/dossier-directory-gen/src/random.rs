//! The RNG helpers every part draws with. One RNG (xoshiro256++, seeded
//! once) for the whole directory keeps the output a function of the seed.

use rand::RngExt;
use rand::rngs::Xoshiro256PlusPlus;

pub(crate) fn below(rng: &mut Xoshiro256PlusPlus, n: usize) -> usize {
    if n <= 1 {
        return 0;
    }
    rng.random_range(0..n as u64) as usize
}

pub(crate) fn pick<'a, T>(rng: &mut Xoshiro256PlusPlus, items: &'a [T]) -> &'a T {
    &items[below(rng, items.len())]
}

pub(crate) fn chance(rng: &mut Xoshiro256PlusPlus, p: f64) -> bool {
    rng.random::<f64>() < p
}

/// Picks from `(item, weight)` pairs.
pub(crate) fn weighted<T: Copy>(rng: &mut Xoshiro256PlusPlus, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total.max(1));
    for &(item, w) in items {
        if roll < w {
            return item;
        }
        roll -= w;
    }
    items[items.len() - 1].0
}
