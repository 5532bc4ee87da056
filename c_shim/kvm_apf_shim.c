// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_apf.ko, C side: the KVM provider ops table, thin wrappers around
 * static inlines and macros that Rust cannot call, and the tracepoints.
 * No policy lives here: every decision is made in rust/.
 */

#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/uaccess.h>
#include <linux/workqueue.h>

#include <asm/kvm_async_pf.h>
#include <asm/kvm_emulate.h>

#include <kvm/arm_hypercalls.h>

#include "kvm_apf_shim.h"

#define CREATE_TRACE_POINTS
#include "kvm_apf_trace.h"

/* Every fault-in work item runs here; destroyed (flushed) at module exit. */
static struct workqueue_struct *kvm_apf_wq;

static int kvm_apf_enable_cap(struct kvm *kvm, struct kvm_enable_cap *cap)
{
	return kvm_apf_rs_enable_cap(kvm, cap->args[0], cap->args[1],
				     cap->args[2], cap->args[3]);
}

static bool kvm_apf_fault_start(struct kvm_vcpu *vcpu,
				const struct kvm_arm_apf_fault *fault)
{
	return kvm_apf_rs_fault_start(vcpu, fault->ipa, fault->gfn, fault->hva,
				      fault->write);
}

static int kvm_apf_hypercall(struct kvm_vcpu *vcpu, u32 func_id)
{
	u64 ret[4] = { SMCCC_RET_NOT_SUPPORTED, 0, 0, 0 };

	kvm_apf_rs_hypercall(vcpu, func_id, smccc_get_arg1(vcpu),
			     smccc_get_arg2(vcpu), ret);
	smccc_set_retval(vcpu, ret[0], ret[1], ret[2], ret[3]);
	return 1;
}

static int kvm_apf_has_attr(struct kvm_vcpu *vcpu, struct kvm_device_attr *attr)
{
	return attr->attr == KVM_ARM_VCPU_ASYNC_PF_STATE ? 0 : -ENXIO;
}

static int kvm_apf_get_attr(struct kvm_vcpu *vcpu, struct kvm_device_attr *attr)
{
	struct kvm_arm_async_pf_state __user *user = u64_to_user_ptr(attr->addr);
	struct kvm_arm_async_pf_state state = {};
	int ret;

	if (attr->attr != KVM_ARM_VCPU_ASYNC_PF_STATE)
		return -ENXIO;
	ret = kvm_apf_rs_get_state(vcpu, &state.record_gpa, &state.flags);
	if (ret)
		return ret;
	return copy_to_user(user, &state, sizeof(state)) ? -EFAULT : 0;
}

static int kvm_apf_set_attr(struct kvm_vcpu *vcpu, struct kvm_device_attr *attr)
{
	struct kvm_arm_async_pf_state __user *user = u64_to_user_ptr(attr->addr);
	struct kvm_arm_async_pf_state state;

	if (attr->attr != KVM_ARM_VCPU_ASYNC_PF_STATE)
		return -ENXIO;
	if (copy_from_user(&state, user, sizeof(state)))
		return -EFAULT;
	if (memchr_inv(state.reserved, 0, sizeof(state.reserved)))
		return -EINVAL;
	return kvm_apf_rs_set_state(vcpu, state.record_gpa, state.flags);
}

static const struct kvm_arm_apf_ops kvm_apf_ops = {
	.owner		= THIS_MODULE,
	.enable_cap	= kvm_apf_enable_cap,
	.vcpu_create	= kvm_apf_rs_vcpu_create,
	.vcpu_reset	= kvm_apf_rs_vcpu_reset,
	.vcpu_destroy	= kvm_apf_rs_vcpu_destroy,
	.vm_destroy	= kvm_apf_rs_vm_destroy,
	.fault_eligible	= kvm_apf_rs_fault_eligible,
	.fault_start	= kvm_apf_fault_start,
	.handle_request	= kvm_apf_rs_handle_request,
	.hypercall	= kvm_apf_hypercall,
	.set_attr	= kvm_apf_set_attr,
	.get_attr	= kvm_apf_get_attr,
	.has_attr	= kvm_apf_has_attr,
};

int kvm_apf_shim_init(void)
{
	int ret;

	/*
	 * Unbound: a work item may wait for userfaultfd resolution for a
	 * long time. WQ_MEM_RECLAIM is not needed: nothing in reclaim waits
	 * on these items.
	 */
	kvm_apf_wq = alloc_workqueue("kvm_apf", WQ_UNBOUND, 0);
	if (!kvm_apf_wq)
		return -ENOMEM;

	ret = kvm_arm_apf_register(&kvm_apf_ops);
	if (ret)
		destroy_workqueue(kvm_apf_wq);
	return ret;
}

void kvm_apf_shim_exit(void)
{
	kvm_arm_apf_unregister(&kvm_apf_ops);
	/*
	 * No VM holds the module any more, so every vCPU was destroyed and
	 * waited for its items; this flush also waits for the last
	 * instructions of each work function before the module text goes.
	 */
	destroy_workqueue(kvm_apf_wq);
}

/*
 * Queue a fault-in for a worker near another CPU than the vCPU's, if there
 * is one. The vCPU thread is about to re-enter the guest: a worker woken on
 * its own CPU preempts it first and runs until it blocks on the page, and
 * the guest waits for that instead of running another task (0.5 ms per
 * fault in the emulated host's traces). For an unbound workqueue @cpu only
 * selects the pod: where CPUs share one, the scheduler still places it.
 */
bool kvm_apf_shim_queue_work(struct work_struct *work)
{
	unsigned int cpu = cpumask_next_wrap(raw_smp_processor_id(), cpu_online_mask);

	if (cpu >= nr_cpu_ids)
		return queue_work(kvm_apf_wq, work);

	return queue_work_on(cpu, kvm_apf_wq, work);
}

struct kvm *kvm_apf_shim_vcpu_kvm(struct kvm_vcpu *vcpu)
{
	return vcpu->kvm;
}

void *kvm_apf_shim_vcpu_state(struct kvm_vcpu *vcpu)
{
	return vcpu->arch.apf;
}

void kvm_apf_shim_set_vcpu_state(struct kvm_vcpu *vcpu, void *state)
{
	vcpu->arch.apf = state;
}

unsigned long kvm_apf_shim_nr_vcpus(struct kvm *kvm)
{
	return atomic_read(&kvm->online_vcpus);
}

struct kvm_vcpu *kvm_apf_shim_get_vcpu(struct kvm *kvm, unsigned long idx)
{
	return kvm_get_vcpu(kvm, idx);
}

bool kvm_apf_shim_vcpu_at_el0(struct kvm_vcpu *vcpu)
{
	return !vcpu_mode_priv(vcpu);
}

int kvm_apf_shim_fault_in(struct kvm *kvm, unsigned long hva, bool write)
{
	struct mm_struct *mm = kvm->mm;
	int locked = 1;
	long npages;

	might_sleep();
	/* The VMM may be exiting: then there is nothing to fault in. */
	if (!mmget_not_zero(mm))
		return -ESRCH;

	/*
	 * As virt/kvm/async_pf.c: passing &locked lets the fault drop
	 * mmap_lock and retry, which userfaultfd needs to wait for the VMM
	 * (without it handle_userfault() answers SIGBUS). No page array: only
	 * the fault-in matters, the vCPU maps the page itself, so no page
	 * reference is taken at all.
	 */
	mmap_read_lock(mm);
	npages = get_user_pages_remote(mm, hva, 1, write ? FOLL_WRITE : 0,
				       NULL, &locked);
	if (locked)
		mmap_read_unlock(mm);
	mmput(mm);
	if (npages == 1)
		return 0;
	return npages < 0 ? npages : -EFAULT;
}

void kvm_apf_shim_trace_not_present(struct kvm_vcpu *vcpu, u64 token)
{
	trace_kvm_apf_not_present(vcpu->vcpu_id, token);
}

void kvm_apf_shim_trace_ready(struct kvm_vcpu *vcpu, u64 token)
{
	trace_kvm_apf_ready(vcpu->vcpu_id, token);
}

void kvm_apf_shim_trace_sync(struct kvm_vcpu *vcpu, u64 ipa, u32 reason)
{
	trace_kvm_apf_sync(vcpu->vcpu_id, ipa, reason);
}
