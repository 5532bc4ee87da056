// SPDX-License-Identifier: GPL-2.0

//! Property tests of `GfnTable` against a `HashSet` model.

use kvm_apf_logic::gfn_table::capacity_for;
use kvm_apf_logic::gfn_table::GfnTable;
use kvm_apf_logic::gfn_table::TableError;
use kvm_apf_logic::gfn_table::EMPTY;
use proptest::prelude::*;
use std::collections::HashSet;

#[derive(Clone, Debug)]
enum Op {
    Insert(u64),
    Remove(u64),
    Contains(u64),
    Clear,
}

fn gfn() -> impl Strategy<Value = u64> {
    prop_oneof![
        // Few distinct values: many duplicates and home-slot collisions.
        0u64..24,
        // Values that share low bits or differ only in high bits.
        (0u64..8).prop_map(|x| x << 40),
        any::<u64>(),
        Just(EMPTY),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => gfn().prop_map(Op::Insert),
        4 => gfn().prop_map(Op::Remove),
        3 => gfn().prop_map(Op::Contains),
        1 => Just(Op::Clear),
    ]
}

/// Every stored entry is reachable from its home slot without an empty slot.
fn check_chains(t: &GfnTable<Vec<u64>>, storage: &[u64]) {
    let mask = t.capacity() - 1;
    for (i, &g) in storage.iter().enumerate() {
        if g == EMPTY {
            continue;
        }
        let mut j = t.home_slot(g);
        while j != i {
            assert_ne!(storage[j], EMPTY, "gfn {g:#x} at {i} unreachable from home");
            j = (j + 1) & mask;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_hashset(slots_log in 0u32..5, ops in proptest::collection::vec(op(), 1..300)) {
        let limit = 1usize << slots_log;
        let cap = capacity_for(limit).unwrap();
        let mut t = GfnTable::new(vec![0u64; cap], limit).unwrap();
        let mut model = HashSet::new();
        for op in ops {
            match op {
                Op::Insert(g) => {
                    let expect = if g == EMPTY {
                        Err(TableError::InvalidGfn)
                    } else if model.contains(&g) {
                        Err(TableError::AlreadyPresent)
                    } else if model.len() >= limit {
                        Err(TableError::Full)
                    } else {
                        model.insert(g);
                        Ok(())
                    };
                    prop_assert_eq!(t.insert(g), expect);
                }
                Op::Remove(g) => prop_assert_eq!(t.remove(g), model.remove(&g)),
                Op::Contains(g) => prop_assert_eq!(t.contains(g), model.contains(&g)),
                Op::Clear => {
                    t.clear();
                    model.clear();
                }
            }
            prop_assert_eq!(t.len(), model.len());
            prop_assert_eq!(t.is_full(), model.len() >= limit);
            let got: HashSet<u64> = t.iter().collect();
            prop_assert_eq!(&got, &model);
            for g in &model {
                prop_assert!(t.contains(*g));
            }
        }
        let storage = t.into_storage();
        let t2 = GfnTable::new(vec![0u64; cap], limit).unwrap();
        check_chains(&t2, &storage);
    }

    #[test]
    fn removal_keeps_chains(keys in proptest::collection::hash_set(0u64..64, 1..15), order in any::<u64>()) {
        // A full table (15 of 16 slots) whose keys collide a lot, emptied in
        // a random order; after each removal every remaining key is found.
        let mut t = GfnTable::new(vec![0u64; 16], 15).unwrap();
        let mut keys: Vec<u64> = keys.into_iter().collect();
        for &k in &keys {
            prop_assert_eq!(t.insert(k), Ok(()));
        }
        let n = keys.len();
        keys.rotate_left((order as usize) % n);
        for (i, k) in keys.iter().enumerate() {
            prop_assert!(t.remove(*k));
            for rest in &keys[i + 1..] {
                prop_assert!(t.contains(*rest));
            }
            prop_assert_eq!(t.len(), n - i - 1);
        }
        prop_assert!(t.is_empty());
    }
}

#[test]
fn colliding_home_slots_wrap_around() {
    let mut t = GfnTable::new(vec![0u64; 8], 7).unwrap();
    // Find gfns whose home is the last slot, so their chain wraps.
    let last: Vec<u64> = (0u64..10_000)
        .filter(|&g| t.home_slot(g) == 7)
        .take(4)
        .collect();
    assert_eq!(last.len(), 4);
    for &g in &last {
        t.insert(g).unwrap();
    }
    assert!(t.remove(last[0]));
    for &g in &last[1..] {
        assert!(t.contains(g));
    }
    assert!(t.remove(last[2]));
    assert!(t.contains(last[1]) && t.contains(last[3]));
}

#[test]
fn full_table_then_insert_fails() {
    let mut t = GfnTable::new(vec![0u64; 128], 64).unwrap();
    for g in 0..64 {
        t.insert(g * 4096).unwrap();
    }
    assert!(t.is_full());
    assert_eq!(t.insert(1), Err(TableError::Full));
    assert_eq!(t.insert(0), Err(TableError::AlreadyPresent));
    assert!(t.remove(0));
    assert_eq!(t.insert(1), Ok(()));
}

#[test]
fn storage_validation() {
    assert_eq!(
        GfnTable::new(vec![0u64; 6], 2).err(),
        Some(TableError::BadStorage)
    );
    assert_eq!(
        GfnTable::new(vec![0u64; 8], 8).err(),
        Some(TableError::BadStorage)
    );
    assert!(GfnTable::new(vec![0u64; 2048], 1024).is_ok());
    // Previous contents are overwritten.
    let t = GfnTable::new(vec![5u64; 4], 2).unwrap();
    assert!(t.is_empty());
    assert!(!t.contains(5));
}
