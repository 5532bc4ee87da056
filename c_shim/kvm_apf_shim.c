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

/* Releases the VMs' work queues; destroyed (flushed) at module exit. */
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
	u64 args[5];
	int i;

	for (i = 0; i < ARRAY_SIZE(args); i++)
		args[i] = vcpu_get_reg(vcpu, i + 1);
	/* An SDEI completion loads a whole context: no return value then. */
	if (!kvm_apf_rs_hypercall(vcpu, func_id, args, ret))
		smccc_set_retval(vcpu, ret[0], ret[1], ret[2], ret[3]);
	return 1;
}

static int kvm_apf_has_attr(struct kvm_vcpu *vcpu, struct kvm_device_attr *attr)
{
	switch (attr->attr) {
	case KVM_ARM_VCPU_ASYNC_PF_STATE:
	case KVM_ARM_VCPU_ASYNC_PF_CONFIG:
		return 0;
	case KVM_ARM_VCPU_ASYNC_PF_SDEI:
		return kvm_apf_rs_np_sdei(vcpu) ? 0 : -ENXIO;
	default:
		return -ENXIO;
	}
}

/*
 * Both attributes are plain structs; Rust validates every field. Its
 * AsyncPfState and AsyncPfConfig (rust/logic/config.rs) assert the same
 * layout.
 */
static_assert(sizeof(struct kvm_arm_async_pf_state) == 64);
static_assert(offsetof(struct kvm_arm_async_pf_state, config) == 16);
static_assert(offsetof(struct kvm_arm_async_pf_state, reserved) == 48);
static_assert(sizeof(struct kvm_arm_async_pf_config) == 64);
static_assert(sizeof(struct kvm_arm_async_pf_sdei) == 256);
static_assert(offsetof(struct kvm_arm_async_pf_sdei, ctx_pc) == 176);
static_assert(offsetof(struct kvm_arm_async_pf_sdei, reserved) == 192);
static int kvm_apf_get_attr(struct kvm_vcpu *vcpu, struct kvm_device_attr *attr)
{
	void __user *user = u64_to_user_ptr(attr->addr);
	struct kvm_arm_async_pf_config config = {};
	struct kvm_arm_async_pf_state state = {};
	struct kvm_arm_async_pf_sdei sdei = {};
	int ret;

	switch (attr->attr) {
	case KVM_ARM_VCPU_ASYNC_PF_STATE:
		ret = kvm_apf_rs_get_state(vcpu, &state);
		if (ret)
			return ret;
		return copy_to_user(user, &state, sizeof(state)) ? -EFAULT : 0;
	case KVM_ARM_VCPU_ASYNC_PF_CONFIG:
		ret = kvm_apf_rs_get_config(vcpu, &config);
		if (ret)
			return ret;
		return copy_to_user(user, &config, sizeof(config)) ? -EFAULT : 0;
	case KVM_ARM_VCPU_ASYNC_PF_SDEI:
		ret = kvm_apf_rs_get_sdei(vcpu, &sdei);
		if (ret)
			return ret;
		return copy_to_user(user, &sdei, sizeof(sdei)) ? -EFAULT : 0;
	default:
		return -ENXIO;
	}
}

static int kvm_apf_set_attr(struct kvm_vcpu *vcpu, struct kvm_device_attr *attr)
{
	void __user *user = u64_to_user_ptr(attr->addr);
	struct kvm_arm_async_pf_config config;
	struct kvm_arm_async_pf_state state;
	struct kvm_arm_async_pf_sdei sdei;

	switch (attr->attr) {
	case KVM_ARM_VCPU_ASYNC_PF_STATE:
		if (copy_from_user(&state, user, sizeof(state)))
			return -EFAULT;
		return kvm_apf_rs_set_state(vcpu, &state);
	case KVM_ARM_VCPU_ASYNC_PF_CONFIG:
		if (copy_from_user(&config, user, sizeof(config)))
			return -EFAULT;
		return kvm_apf_rs_set_config(vcpu, &config);
	case KVM_ARM_VCPU_ASYNC_PF_SDEI:
		if (copy_from_user(&sdei, user, sizeof(sdei)))
			return -EFAULT;
		return kvm_apf_rs_set_sdei(vcpu, &sdei);
	default:
		return -ENXIO;
	}
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

	/* Only releases VMs' work queues: never waits for a page. */
	kvm_apf_wq = alloc_workqueue("kvm_apf_release", WQ_UNBOUND, 0);
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
	 * No VM holds the module any more and every fault-in item has
	 * dropped its module reference (see kvm_apf_shim_queue_work()). What
	 * may still run: the release of a VM's work queue, queued here, and
	 * through it the last instructions of that queue's items after their
	 * module_put(). Destroying this queue waits for both, before the
	 * module text goes away.
	 */
	destroy_workqueue(kvm_apf_wq);
}

/*
 * A VM's fault-in work: its own unbound work queue, so that items blocked
 * on pages that are never served (a userfaultfd nobody answers) hold up
 * only this VM, and a reference on the VM's mm_struct, so that an item may
 * outlive the VM (it is never waited for at disable or teardown).
 */
struct kvm_apf_vm {
	struct workqueue_struct *wq;
	struct mm_struct *mm;
	struct work_struct release;
};

struct kvm_apf_vm *kvm_apf_shim_vm_alloc(struct kvm *kvm)
{
	struct kvm_apf_vm *vm;

	vm = kzalloc_obj(*vm, GFP_KERNEL_ACCOUNT);
	if (!vm)
		return NULL;

	/*
	 * WQ_UNBOUND: an item may wait for a userfaultfd a long time. At most
	 * WQ_UNBOUND_MAX_ACTIVE items of a VM run (and pin a worker thread)
	 * at once; the provider bounds how many are queued.
	 */
	vm->wq = alloc_workqueue("kvm_apf_%d", WQ_UNBOUND, WQ_UNBOUND_MAX_ACTIVE,
				 task_pid_nr(current));
	if (!vm->wq) {
		kfree(vm);
		return NULL;
	}
	mmgrab(kvm->mm);
	vm->mm = kvm->mm;
	return vm;
}

static void kvm_apf_vm_release_fn(struct work_struct *work)
{
	struct kvm_apf_vm *vm = container_of(work, struct kvm_apf_vm, release);

	/* Waits for the last item to return from its work function. */
	destroy_workqueue(vm->wq);
	mmdrop(vm->mm);
	kfree(vm);
}

/*
 * The last reference to the VM's work is gone; possibly dropped by an item
 * running on vm->wq, which cannot destroy its own queue: do it elsewhere.
 */
void kvm_apf_shim_vm_release(struct kvm_apf_vm *vm)
{
	INIT_WORK(&vm->release, kvm_apf_vm_release_fn);
	queue_work(kvm_apf_wq, &vm->release);
}

/*
 * Queue a fault-in for a worker near another CPU than the vCPU's, if there
 * is one. The vCPU thread is about to re-enter the guest: a worker woken on
 * its own CPU preempts it first and runs until it blocks on the page, and
 * the guest waits for that instead of running another task (0.5 ms per
 * fault in the emulated host's traces). For an unbound workqueue @cpu only
 * selects the pod: where CPUs share one, the scheduler still places it.
 *
 * The item holds a module reference until kvm_apf_shim_work_done(), so the
 * module cannot be unloaded under an item that waits for its page.
 */
bool kvm_apf_shim_queue_work(struct kvm_apf_vm *vm, struct work_struct *work)
{
	unsigned int cpu = cpumask_next_wrap(raw_smp_processor_id(), cpu_online_mask);
	bool queued;

	/* The VM holds a reference, so this one cannot fail. */
	__module_get(THIS_MODULE);
	if (cpu >= nr_cpu_ids)
		queued = queue_work(vm->wq, work);
	else
		queued = queue_work_on(cpu, vm->wq, work);
	/* A new item is never queued already; were it, it runs only once. */
	if (!queued)
		module_put(THIS_MODULE);
	return queued;
}

/*
 * The last thing a fault-in item does. Its work function still returns
 * into module text, which is safe: the module's exit waits for vm->wq.
 */
void kvm_apf_shim_work_done(void)
{
	module_put(THIS_MODULE);
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

/* MPIDR_EL1 affinity (Aff3..Aff0) that the guest reads on this vCPU. */
u64 kvm_apf_shim_vcpu_mpidr(struct kvm_vcpu *vcpu)
{
	return kvm_vcpu_get_mpidr_aff(vcpu);
}

/* The context an SDEI handler interrupts: x0-x17, PC, PSTATE. */
void kvm_apf_shim_get_context(struct kvm_vcpu *vcpu, u64 *x, u64 *pc, u64 *pstate)
{
	int i;

	for (i = 0; i < KVM_APF_SDEI_SAVED_REGS; i++)
		x[i] = vcpu_get_reg(vcpu, i);
	*pc = *vcpu_pc(vcpu);
	*pstate = *vcpu_cpsr(vcpu);
}

/*
 * Load x0..x(n-1), PC and PSTATE: an SDEI handler's entry or completion.
 * The PC is absolute: drop the increment an SMC conduit has pending.
 */
void kvm_apf_shim_set_context(struct kvm_vcpu *vcpu, const u64 *x, unsigned int n,
			      u64 pc, u64 pstate)
{
	unsigned int i;

	for (i = 0; i < n && i < KVM_APF_SDEI_SAVED_REGS; i++)
		vcpu_set_reg(vcpu, i, x[i]);
	*vcpu_pc(vcpu) = pc;
	*vcpu_cpsr(vcpu) = pstate;
	vcpu_clear_flag(vcpu, INCREMENT_PC);
}

int kvm_apf_shim_fault_in(struct kvm_apf_vm *vm, unsigned long hva, bool write)
{
	struct mm_struct *mm = vm->mm;
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
