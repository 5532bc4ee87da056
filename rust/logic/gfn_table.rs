// SPDX-License-Identifier: GPL-2.0

//! Generic, arch-independent set of guest frame numbers: open addressing with
//! linear probing and backward-shift deletion over caller-provided storage.
//!
//! A vCPU keeps in it the gfns it told the guest about ("page not present")
//! and that are not ready yet. Nothing here allocates: the kernel side
//! allocates the slot array fallibly when the VMM enables the feature and
//! hands it over.
//!
//! # Load factor
//!
//! The table never holds more than `limit` entries (the VMM's slot count),
//! and the storage is sized with [`capacity_for`], i.e. `2 * limit` rounded
//! up to a power of two, so the load factor stays at or below 1/2 and linear
//! probe chains stay short (expected probes for a hit about 1.5, for a miss
//! about 2.5). [`GfnTable::new`] only insists on `limit < capacity`, which
//! keeps at least one empty slot and so terminates every probe.

/// Value of an empty slot. Never a valid gfn: a gfn is an IPA shifted right
/// by the page shift, so its top bits are clear.
pub const EMPTY: u64 = u64::MAX;

/// Multiplier of the Fibonacci hash: 2^64 divided by the golden ratio, odd.
const FIB_MULT: u64 = 0x9e37_79b9_7f4a_7c15;

/// Errors of [`GfnTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// The table already holds `limit` entries.
    Full,
    /// The gfn is already in the table.
    AlreadyPresent,
    /// The gfn is [`EMPTY`], which cannot be stored.
    InvalidGfn,
    /// The storage length is not a power of two, or `limit` is not smaller
    /// than it.
    BadStorage,
}

/// Storage length (a power of two) to use for a table of `limit` entries:
/// `2 * limit` rounded up to a power of two, at least 2. `None` on overflow.
pub const fn capacity_for(limit: usize) -> Option<usize> {
    let Some(twice) = limit.checked_mul(2) else {
        return None;
    };
    let want = if twice < 2 { 2 } else { twice };
    want.checked_next_power_of_two()
}

/// A set of gfns with a fixed maximum number of entries.
///
/// # Invariants
///
/// - `storage.as_ref().len()` is a power of two and `limit < capacity`, so at
///   least one slot is always [`EMPTY`].
/// - `len` is the number of non-[`EMPTY`] slots and `len <= limit`.
/// - Every stored gfn is reachable by linear probing from its home slot
///   without crossing an [`EMPTY`] slot.
#[derive(Debug)]
pub struct GfnTable<S> {
    storage: S,
    len: usize,
    limit: usize,
    mask: usize,
    shift: u32,
}

impl<S: AsRef<[u64]> + AsMut<[u64]>> GfnTable<S> {
    /// Builds an empty table over `storage` (its previous contents are
    /// overwritten) that accepts at most `limit` entries.
    ///
    /// The storage length must be a power of two greater than `limit`; use
    /// [`capacity_for`] to size it.
    pub fn new(mut storage: S, limit: usize) -> Result<Self, TableError> {
        let cap = storage.as_ref().len();
        if !cap.is_power_of_two() || limit >= cap {
            return Err(TableError::BadStorage);
        }
        storage.as_mut().fill(EMPTY);
        Ok(Self {
            storage,
            len: 0,
            limit,
            mask: cap - 1,
            // `cap` is a power of two >= 2, so this is in 1..=63.
            shift: u64::BITS - cap.trailing_zeros(),
        })
    }

    /// Home slot of `gfn`: the top bits of a multiplicative (Fibonacci) hash.
    fn home(&self, gfn: u64) -> usize {
        let h = gfn
            .wrapping_mul(FIB_MULT)
            .checked_shr(self.shift)
            .unwrap_or(0);
        // Truncation is intended: `h < capacity` already, the mask is a
        // belt-and-braces guarantee of an in-bounds index.
        (h as usize) & self.mask
    }

    fn slot(&self, idx: usize) -> u64 {
        self.storage.as_ref().get(idx).copied().unwrap_or(EMPTY)
    }

    fn set_slot(&mut self, idx: usize, val: u64) {
        if let Some(s) = self.storage.as_mut().get_mut(idx) {
            *s = val;
        }
    }

    /// Index of the slot holding `gfn`, if present.
    fn find(&self, gfn: u64) -> Option<usize> {
        if gfn == EMPTY {
            return None;
        }
        let mut idx = self.home(gfn);
        for _ in 0..self.capacity() {
            match self.slot(idx) {
                EMPTY => return None,
                g if g == gfn => return Some(idx),
                _ => idx = (idx + 1) & self.mask,
            }
        }
        None
    }

    /// Inserts `gfn`.
    pub fn insert(&mut self, gfn: u64) -> Result<(), TableError> {
        if gfn == EMPTY {
            return Err(TableError::InvalidGfn);
        }
        let mut idx = self.home(gfn);
        for _ in 0..self.capacity() {
            match self.slot(idx) {
                EMPTY => {
                    if self.is_full() {
                        return Err(TableError::Full);
                    }
                    self.set_slot(idx, gfn);
                    self.len += 1;
                    return Ok(());
                }
                g if g == gfn => return Err(TableError::AlreadyPresent),
                _ => idx = (idx + 1) & self.mask,
            }
        }
        // Unreachable by the invariants (there is always an empty slot).
        Err(TableError::Full)
    }

    /// Whether `gfn` is in the table.
    pub fn contains(&self, gfn: u64) -> bool {
        self.find(gfn).is_some()
    }

    /// Removes `gfn`; returns whether it was present.
    ///
    /// Backward-shift deletion: the entries after the hole that may move
    /// closer to their home slot are shifted back, so no tombstones are
    /// needed and every remaining entry stays reachable.
    pub fn remove(&mut self, gfn: u64) -> bool {
        let Some(mut hole) = self.find(gfn) else {
            return false;
        };
        let mut j = hole;
        for _ in 0..self.capacity() {
            j = (j + 1) & self.mask;
            let g = self.slot(j);
            if g == EMPTY {
                break;
            }
            // Distances travelled (with wrap-around) from the home slot of
            // `g` to its current slot `j` and to the hole. The entry may
            // move into the hole iff the hole lies on its probe path, i.e.
            // is not after `j` when walking from home.
            let home = self.home(g);
            let dist_j = j.wrapping_sub(home) & self.mask;
            let dist_hole = hole.wrapping_sub(home) & self.mask;
            if dist_hole <= dist_j {
                self.set_slot(hole, g);
                hole = j;
            }
        }
        self.set_slot(hole, EMPTY);
        self.len -= 1;
        true
    }

    /// Number of gfns in the table.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of slots of the storage (a power of two).
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Maximum number of entries (the VMM's slot count).
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Whether no further gfn can be inserted.
    pub fn is_full(&self) -> bool {
        self.len >= self.limit
    }

    /// Removes every gfn.
    pub fn clear(&mut self) {
        self.storage.as_mut().fill(EMPTY);
        self.len = 0;
    }

    /// Iterates over the gfns in the table, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.storage
            .as_ref()
            .iter()
            .copied()
            .filter(|&g| g != EMPTY)
    }

    /// Home slot of `gfn` (for tests and statistics).
    pub fn home_slot(&self, gfn: u64) -> usize {
        self.home(gfn)
    }

    /// Gives the storage back.
    pub fn into_storage(self) -> S {
        self.storage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_sizes() {
        assert_eq!(capacity_for(0), Some(2));
        assert_eq!(capacity_for(1), Some(2));
        assert_eq!(capacity_for(3), Some(8));
        assert_eq!(capacity_for(64), Some(128));
        assert_eq!(capacity_for(1024), Some(2048));
        assert_eq!(capacity_for(usize::MAX), None);
    }

    #[test]
    fn bad_storage() {
        assert_eq!(
            GfnTable::new([0u64; 3], 1).err(),
            Some(TableError::BadStorage)
        );
        assert_eq!(
            GfnTable::new([0u64; 4], 4).err(),
            Some(TableError::BadStorage)
        );
        assert_eq!(
            GfnTable::new([0u64; 0], 0).err(),
            Some(TableError::BadStorage)
        );
    }

    #[test]
    fn basic() {
        let mut t = GfnTable::new([0u64; 8], 4).unwrap();
        assert_eq!(t.insert(EMPTY), Err(TableError::InvalidGfn));
        for g in 1..=4 {
            assert_eq!(t.insert(g), Ok(()));
        }
        assert_eq!(t.insert(1), Err(TableError::AlreadyPresent));
        assert_eq!(t.insert(9), Err(TableError::Full));
        assert!(t.remove(2));
        assert!(!t.remove(2));
        assert!(t.contains(1) && t.contains(3) && t.contains(4));
        assert_eq!(t.len(), 3);
    }
}
