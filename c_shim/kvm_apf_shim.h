/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The C side of kvm_apf.ko as the Rust side sees it: opaque pointers and
 * plain integers only, so that no KVM structure layout leaks into Rust.
 * rust/kvm_apf/ffi.rs declares exactly these functions.
 */
#ifndef KVM_APF_SHIM_H
#define KVM_APF_SHIM_H

#include <linux/types.h>

struct kvm;
struct kvm_apf_vm;
struct kvm_vcpu;
struct work_struct;

/* Module lifetime: the release workqueue and provider registration. */
int kvm_apf_shim_init(void);
void kvm_apf_shim_exit(void);

/*
 * A VM's fault-in work: its workqueue and a reference on its mm, which
 * outlive the VM until the last item is done; released (asynchronously,
 * never from under an item of its own queue) by kvm_apf_shim_vm_release().
 */
struct kvm_apf_vm *kvm_apf_shim_vm_alloc(struct kvm *kvm);
void kvm_apf_shim_vm_release(struct kvm_apf_vm *vm);
bool kvm_apf_shim_queue_work(struct kvm_apf_vm *vm, struct work_struct *work);
void kvm_apf_shim_work_done(void);

/* VM and vCPU accessors. */
struct kvm *kvm_apf_shim_vcpu_kvm(struct kvm_vcpu *vcpu);
void *kvm_apf_shim_vcpu_state(struct kvm_vcpu *vcpu);
void kvm_apf_shim_set_vcpu_state(struct kvm_vcpu *vcpu, void *state);
unsigned long kvm_apf_shim_nr_vcpus(struct kvm *kvm);
struct kvm_vcpu *kvm_apf_shim_get_vcpu(struct kvm *kvm, unsigned long idx);
bool kvm_apf_shim_vcpu_at_el0(struct kvm_vcpu *vcpu);
u64 kvm_apf_shim_vcpu_mpidr(struct kvm_vcpu *vcpu);

/* x0-x17: what an SDEI handler's interrupted context holds. */
#define KVM_APF_SDEI_SAVED_REGS	18
void kvm_apf_shim_get_context(struct kvm_vcpu *vcpu, u64 *x, u64 *pc, u64 *pstate);
void kvm_apf_shim_set_context(struct kvm_vcpu *vcpu, const u64 *x, unsigned int n,
			      u64 pc, u64 pstate);

/* Host worker: fault one page of the VM's address space in, then drop it. */
int kvm_apf_shim_fault_in(struct kvm_apf_vm *vm, unsigned long hva, bool write);

/* Tracepoints. */
void kvm_apf_shim_trace_not_present(struct kvm_vcpu *vcpu, u64 token);
void kvm_apf_shim_trace_ready(struct kvm_vcpu *vcpu, u64 token);
void kvm_apf_shim_trace_sync(struct kvm_vcpu *vcpu, u64 ipa, u32 reason);

/*
 * Implemented in Rust (rust/kvm_apf/provider.rs), called from the KVM hooks below
 * with the arguments already unpacked. Same contracts as the ops in
 * <asm/kvm_async_pf.h>.
 */
int kvm_apf_rs_enable_cap(struct kvm *kvm, u64 flags, u64 slots, u64 np_intid,
			  u64 ready_intid);
int kvm_apf_rs_vcpu_create(struct kvm_vcpu *vcpu);
void kvm_apf_rs_vcpu_reset(struct kvm_vcpu *vcpu);
void kvm_apf_rs_vcpu_destroy(struct kvm_vcpu *vcpu);
void kvm_apf_rs_vm_destroy(struct kvm *kvm);
bool kvm_apf_rs_fault_eligible(struct kvm_vcpu *vcpu, u64 ipa);
bool kvm_apf_rs_fault_start(struct kvm_vcpu *vcpu, u64 ipa, u64 gfn, u64 hva,
			    bool write);
void kvm_apf_rs_handle_request(struct kvm_vcpu *vcpu);
bool kvm_apf_rs_hypercall(struct kvm_vcpu *vcpu, u32 func_id, const u64 *args,
			  u64 *ret);
int kvm_apf_rs_get_state(struct kvm_vcpu *vcpu,
			 struct kvm_arm_async_pf_state *state);
int kvm_apf_rs_set_state(struct kvm_vcpu *vcpu,
			 const struct kvm_arm_async_pf_state *state);
int kvm_apf_rs_get_config(struct kvm_vcpu *vcpu,
			  struct kvm_arm_async_pf_config *config);
int kvm_apf_rs_set_config(struct kvm_vcpu *vcpu,
			  const struct kvm_arm_async_pf_config *config);
bool kvm_apf_rs_np_sdei(struct kvm_vcpu *vcpu);
int kvm_apf_rs_get_sdei(struct kvm_vcpu *vcpu, struct kvm_arm_async_pf_sdei *sdei);
int kvm_apf_rs_set_sdei(struct kvm_vcpu *vcpu,
			const struct kvm_arm_async_pf_sdei *sdei);

#endif /* KVM_APF_SHIM_H */
