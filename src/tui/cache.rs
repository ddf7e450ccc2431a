//! A least-recently-used map bounded by a cost budget (bytes, or entries at cost 1).
use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug)]
pub struct Lru<K, V> {
    entries: HashMap<K, (V, usize, u64)>,
    budget: usize,
    used: usize,
    clock: u64,
}

impl<K: Hash + Eq + Clone, V> Lru<K, V> {
    pub fn new(budget: usize) -> Self {
        Lru {
            entries: HashMap::new(),
            budget,
            used: 0,
            clock: 0,
        }
    }

    /// Looks up without changing the order (drawing only reads).
    pub fn peek(&self, key: &K) -> Option<&V> {
        self.entries.get(key).map(|(value, _, _)| value)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// Marks `key` as just used.
    pub fn touch(&mut self, key: &K) {
        self.clock += 1;
        if let Some(entry) = self.entries.get_mut(key) {
            entry.2 = self.clock;
        }
    }

    /// Inserts, then drops the least recently used entries until the budget holds (the new
    /// entry always stays, even when it alone is over budget).
    pub fn insert(&mut self, key: K, value: V, cost: usize) {
        self.clock += 1;
        if let Some((_, old, _)) = self.entries.insert(key.clone(), (value, cost, self.clock)) {
            self.used -= old;
        }
        self.used += cost;
        while self.used > self.budget && self.entries.len() > 1 {
            let oldest = self
                .entries
                .iter()
                .filter(|(k, _)| **k != key)
                .min_by_key(|(_, (_, _, stamp))| *stamp)
                .map(|(k, _)| k.clone());
            let Some(oldest) = oldest else { break };
            if let Some((_, cost, _)) = self.entries.remove(&oldest) {
                self.used -= cost;
            }
        }
    }

    /// Every entry, in no order (for checks; it changes no use).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter().map(|(key, (value, _, _))| (key, value))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What `key` costs, if it is held.
    pub fn cost(&self, key: &K) -> Option<usize> {
        self.entries.get(key).map(|(_, cost, _)| *cost)
    }

    /// The largest cost of an entry held (0 when empty).
    pub fn max_cost(&self) -> usize {
        self.entries
            .values()
            .map(|(_, cost, _)| *cost)
            .max()
            .unwrap_or(0)
    }

    pub fn budget(&self) -> usize {
        self.budget
    }

    /// The total cost held.
    pub fn used(&self) -> usize {
        self.used
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_within_budget() {
        let mut lru = Lru::new(10);
        lru.insert("a", 1, 4);
        lru.insert("b", 2, 4);
        lru.touch(&"a");
        lru.insert("c", 3, 4);
        assert!(lru.contains(&"a") && lru.contains(&"c"));
        assert!(!lru.contains(&"b"), "b was the least recently used");
        assert_eq!(lru.used(), 8);
        lru.insert("huge", 4, 100);
        assert_eq!(lru.len(), 1, "an entry over budget alone still stays");
        lru.insert("huge", 5, 2);
        assert_eq!((lru.used(), lru.peek(&"huge")), (2, Some(&5)));
    }
}
