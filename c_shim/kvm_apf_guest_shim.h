/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C side of kvm_apf_guest.ko as the Rust side sees it: plain integers
 * and opaque pointers only. rust/kvm_apf_guest/ffi.rs declares exactly
 * these functions, and the Rust functions at the end of this file.
 */
#ifndef KVM_APF_GUEST_SHIM_H
#define KVM_APF_GUEST_SHIM_H

#include <linux/types.h>

struct callback_head;
struct raw_spinlock;

/* Discovery and the hypervisor call, with the guest's SMCCC conduit. */
bool kvm_apf_guest_shim_hyp_available(u32 func_num);
void kvm_apf_guest_shim_call(u32 func_id, u64 op, u64 arg, u64 *res);
unsigned int kvm_apf_guest_shim_num_possible_cpus(void);
u64 kvm_apf_guest_shim_virt_to_phys(const void *addr);

/* Per-CPU state of the Rust side, as handed to the callbacks below. */
void kvm_apf_guest_shim_set_cpu_state(unsigned int cpu, void *state);
void *kvm_apf_guest_shim_state_of_mpidr(u64 mpidr);

/* The two interrupts: mapping, requesting, enabling on this CPU. */
int kvm_apf_guest_shim_map_intid(u32 intid);
int kvm_apf_guest_shim_request_irqs(unsigned int np_irq,
				    unsigned int ready_irq, bool ready_ppi,
				    bool vm_wide);
void kvm_apf_guest_shim_free_irqs(void);
void kvm_apf_guest_shim_enable_local_irqs(void);
void kvm_apf_guest_shim_disable_local_irqs(void);
bool kvm_apf_guest_shim_irq_from_user(void);

/* CPU hotplug and reboot. */
int kvm_apf_guest_shim_cpuhp_setup(void);
void kvm_apf_guest_shim_cpuhp_remove(void);
void kvm_apf_guest_shim_reboot_register(void);
void kvm_apf_guest_shim_reboot_unregister(void);

/* The sleep of a task on its way back to user mode. */
int kvm_apf_guest_shim_queue_sleep(struct callback_head *head);
bool kvm_apf_guest_shim_current_exiting(void);
void kvm_apf_guest_shim_set_current_state(bool interruptible);
void kvm_apf_guest_shim_set_current_running(void);
void kvm_apf_guest_task_work(struct callback_head *head);

/* The sleeper tables' lock: taken in per-CPU handlers, so a raw one. */
void kvm_apf_guest_shim_raw_lock_init(struct raw_spinlock *lock);
unsigned long kvm_apf_guest_shim_raw_lock(struct raw_spinlock *lock);
bool kvm_apf_guest_shim_raw_trylock(struct raw_spinlock *lock,
				    unsigned long *flags);
void kvm_apf_guest_shim_raw_unlock(struct raw_spinlock *lock,
				   unsigned long flags);
void kvm_apf_guest_shim_raw_assert_held(struct raw_spinlock *lock);

/* debugfs: one read-only u64 file per counter. */
void kvm_apf_guest_shim_debugfs_init(void);
void kvm_apf_guest_shim_debugfs_add(const char *name, u64 *value);
void kvm_apf_guest_shim_debugfs_inject(void);
void kvm_apf_guest_shim_debugfs_exit(void);

/* Implemented in Rust (rust/kvm_apf_guest/), called from the shim. */
void kvm_apf_guest_rs_not_present(void *state);
void kvm_apf_guest_rs_page_ready(void *state);
void kvm_apf_guest_rs_vm_page_ready(void);
int kvm_apf_guest_rs_cpu_online(void *state);
int kvm_apf_guest_rs_cpu_offline(void *state);
void kvm_apf_guest_rs_cpu_stop(void *state);
void kvm_apf_guest_rs_task_work(struct callback_head *head);
int kvm_apf_guest_rs_inject(void *state, u32 op, u64 token);

#endif /* KVM_APF_GUEST_SHIM_H */
