// SPDX-License-Identifier: GPL-2.0
//! The page server's schedule: which page to serve next, and when.
//!
//! Each request is due at its arrival time plus its own latency, and
//! requests overlap (like fetches pipelined over a link): two faults that
//! arrive together are both served one latency later, not one after the
//! other. A page already queued is not queued again; a page already served
//! needs only a wake-up. Times are nanoseconds on any monotonic clock.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// What to do with one fault message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Queued: serve it at this time.
    Queued(u64),
    /// Already queued by an earlier message; the one copy wakes both.
    AlreadyPending,
    /// Already served: the faulting thread raced the copy and only needs
    /// waking.
    AlreadyServed,
}

/// Pending and served pages of one contiguous range of guest memory.
#[derive(Debug)]
pub struct Schedule {
    /// (due time, arrival order, page index): the earliest due first, ties
    /// in arrival order.
    queue: BinaryHeap<Reverse<(u64, u64, u64)>>,
    pending: Bitmap,
    served: Bitmap,
    seq: u64,
    pages: u64,
}

impl Schedule {
    /// A schedule for a range of `pages` pages, none of them served.
    pub fn new(pages: u64) -> Self {
        Schedule {
            queue: BinaryHeap::new(),
            pending: Bitmap::new(pages),
            served: Bitmap::new(pages),
            seq: 0,
            pages,
        }
    }

    /// A fault on page `page` arrived at `now` and takes `latency` to
    /// serve. `None` if the page is outside the range.
    pub fn request(&mut self, page: u64, now: u64, latency: u64) -> Option<Request> {
        if page >= self.pages {
            return None;
        }
        if self.served.get(page) {
            return Some(Request::AlreadyServed);
        }
        if self.pending.get(page) {
            return Some(Request::AlreadyPending);
        }
        let due = now.saturating_add(latency);
        self.pending.set(page, true);
        self.queue.push(Reverse((due, self.seq, page)));
        self.seq += 1;
        Some(Request::Queued(due))
    }

    /// When the earliest queued page is due, if any is queued.
    pub fn next_due(&self) -> Option<u64> {
        self.queue.peek().map(|Reverse((due, _, _))| *due)
    }

    /// Takes the earliest page due at or before `now` and records it as
    /// served (the caller serves it right away).
    pub fn pop_due(&mut self, now: u64) -> Option<u64> {
        match self.queue.peek() {
            Some(Reverse((due, _, _))) if *due <= now => {}
            _ => return None,
        }
        let Reverse((_, _, page)) = self.queue.pop()?;
        self.pending.set(page, false);
        self.served.set(page, true);
        Some(page)
    }

    /// How many pages are queued.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Forgets which pages were served (they were dropped and are missing
    /// again); queued pages stay queued, they are still missing.
    pub fn forget_served(&mut self) {
        self.served.clear();
    }
}

/// A fixed-size set of page indices.
#[derive(Debug)]
struct Bitmap(Vec<u64>);

impl Bitmap {
    fn new(bits: u64) -> Self {
        Bitmap(vec![0; bits.div_ceil(64) as usize])
    }

    fn get(&self, bit: u64) -> bool {
        self.0
            .get((bit / 64) as usize)
            .is_some_and(|w| w & (1 << (bit % 64)) != 0)
    }

    fn clear(&mut self) {
        self.0.fill(0);
    }

    fn set(&mut self, bit: u64, on: bool) {
        if let Some(w) = self.0.get_mut((bit / 64) as usize) {
            if on {
                *w |= 1 << (bit % 64);
            } else {
                *w &= !(1 << (bit % 64));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_requests_are_not_serialized() {
        let mut s = Schedule::new(16);
        assert_eq!(s.request(1, 100, 1000), Some(Request::Queued(1100)));
        assert_eq!(s.request(2, 100, 1000), Some(Request::Queued(1100)));
        assert_eq!(s.next_due(), Some(1100));
        assert_eq!(s.pop_due(1099), None);
        assert_eq!(s.pop_due(1100), Some(1));
        assert_eq!(s.pop_due(1100), Some(2));
        assert_eq!(s.pop_due(5000), None);
        assert_eq!(s.next_due(), None);
    }

    #[test]
    fn earliest_due_first_whatever_the_arrival_order() {
        let mut s = Schedule::new(16);
        s.request(3, 0, 500);
        s.request(4, 10, 100);
        s.request(5, 20, 0);
        assert_eq!(s.next_due(), Some(20));
        assert_eq!(s.pop_due(1000), Some(5));
        assert_eq!(s.pop_due(1000), Some(4));
        assert_eq!(s.pop_due(1000), Some(3));
    }

    #[test]
    fn ties_keep_arrival_order() {
        let mut s = Schedule::new(16);
        for p in [9, 2, 7] {
            s.request(p, 0, 0);
        }
        let order: Vec<u64> = std::iter::from_fn(|| s.pop_due(0)).collect();
        assert_eq!(order, vec![9, 2, 7]);
    }

    #[test]
    fn duplicates_are_queued_once_and_served_pages_only_woken() {
        let mut s = Schedule::new(16);
        assert_eq!(s.request(1, 0, 10), Some(Request::Queued(10)));
        assert_eq!(s.request(1, 5, 10), Some(Request::AlreadyPending));
        assert_eq!(s.queued(), 1);
        assert_eq!(s.pop_due(10), Some(1));
        assert_eq!(s.request(1, 20, 10), Some(Request::AlreadyServed));
    }

    #[test]
    fn forgotten_pages_are_queued_again_pending_ones_stay() {
        let mut s = Schedule::new(4);
        assert_eq!(s.request(0, 0, 10), Some(Request::Queued(10)));
        assert_eq!(s.pop_due(10), Some(0));
        assert_eq!(s.request(1, 10, 10), Some(Request::Queued(20)));
        assert_eq!(s.request(0, 11, 0), Some(Request::AlreadyServed));
        s.forget_served();
        assert_eq!(s.request(0, 12, 5), Some(Request::Queued(17)));
        assert_eq!(s.request(1, 12, 5), Some(Request::AlreadyPending));
        assert_eq!(s.pop_due(20), Some(0));
        assert_eq!(s.pop_due(20), Some(1));
        assert_eq!(s.pop_due(u64::MAX), None);
    }

    #[test]
    fn out_of_range_pages_are_refused() {
        let mut s = Schedule::new(65);
        assert_eq!(s.request(65, 0, 0), None);
        assert_eq!(s.request(64, 0, 0), Some(Request::Queued(0)));
    }

    #[test]
    fn due_time_saturates() {
        let mut s = Schedule::new(1);
        assert_eq!(s.request(0, u64::MAX - 1, 10), Some(Request::Queued(u64::MAX)));
    }

    #[test]
    fn every_page_is_served_exactly_once() {
        // A model check: random arrivals and latencies; every distinct page
        // comes out once.
        let mut rng = crate::latency::Rng::new(11);
        let mut s = Schedule::new(256);
        let mut now = 0;
        let mut served = vec![0u32; 256];
        for _ in 0..5000 {
            now += rng.below(50);
            let _ = s.request(rng.below(256), now, rng.below(1000));
            if rng.below(3) == 0 {
                while let Some(p) = s.pop_due(now) {
                    served[p as usize] += 1;
                }
            }
        }
        while let Some(p) = s.pop_due(u64::MAX) {
            served[p as usize] += 1;
        }
        assert!(served.iter().all(|&n| n <= 1));
        assert!(served.iter().filter(|&&n| n == 1).count() > 200);
    }
}
