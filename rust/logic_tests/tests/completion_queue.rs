// SPDX-License-Identifier: GPL-2.0

//! Property tests of `CompletionQueue` against a `VecDeque` model.

use kvm_apf_logic::completion_queue::CompletionQueue;
use kvm_apf_logic::completion_queue::QueueFull;
use kvm_apf_logic::token::Token;
use proptest::prelude::*;
use std::collections::VecDeque;

#[derive(Clone, Debug)]
enum Op {
    Push(u64),
    Pop,
    Clear,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn matches_vecdeque(
        cap in 0usize..9,
        extra in 0usize..3,
        ops in proptest::collection::vec(prop_oneof![
            5 => any::<u64>().prop_map(Op::Push),
            4 => Just(Op::Pop),
            1 => Just(Op::Clear),
        ], 1..200),
    ) {
        let mut q = CompletionQueue::new(vec![0u64; cap + extra], cap).unwrap();
        let mut model = VecDeque::new();
        for op in ops {
            match op {
                Op::Push(v) => {
                    let expect = if model.len() >= cap {
                        Err(QueueFull)
                    } else {
                        model.push_back(v);
                        Ok(())
                    };
                    prop_assert_eq!(q.push(Token::from_raw(v)), expect);
                }
                Op::Pop => prop_assert_eq!(q.pop().map(Token::raw), model.pop_front()),
                Op::Clear => {
                    q.clear();
                    model.clear();
                }
            }
            prop_assert_eq!(q.len(), model.len());
            for v in model.iter() {
                prop_assert!(q.contains(Token::from_raw(*v)));
            }
            prop_assert_eq!(q.is_empty(), model.is_empty());
        }
    }
}

#[test]
fn short_storage_is_refused() {
    assert!(CompletionQueue::new(vec![0u64; 3], 4).is_none());
    assert!(CompletionQueue::new([0u64; 4], 4).is_some());
}
