// SPDX-License-Identifier: GPL-2.0
/*
 * kvm_apf_guest.ko, C side: what the Rust side cannot call (per-CPU
 * interrupts, CPU hotplug states, the SMCCC conduit, interrupt mapping
 * without a DT node, task_work, debugfs). No policy lives here: every
 * decision is made in rust/kvm_apf_guest/ and rust/logic/.
 */

#include <linux/arm-smccc.h>
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/debugfs.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/irq.h>
#include <linux/irqdomain.h>
#include <linux/module.h>
#include <linux/of.h>
#include <linux/percpu.h>
#include <linux/reboot.h>
#include <linux/sched.h>
#include <linux/smp.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/task_work.h>
#include <linux/uaccess.h>

#include <asm/cputype.h>
#include <asm/hypervisor.h>
#include <asm/irq_regs.h>
#include <asm/ptrace.h>
#include <asm/smp_plat.h>

#include <dt-bindings/interrupt-controller/arm-gic.h>

#include "kvm_apf_guest_shim.h"

/* The Rust side's state of each CPU; NULL until it set it. */
static DEFINE_PER_CPU(void *, kvm_apf_guest_cpu);
/*
 * Each CPU's MPIDR_EL1 affinity, read on that CPU when it first comes
 * online with the driver loaded (INVALID_HWID before): how the VM-wide
 * page-ready handler finds the CPU that a GET_READY entry names.
 */
static DEFINE_PER_CPU(u64, kvm_apf_guest_mpidr) = INVALID_HWID;

static unsigned int kvm_apf_guest_np_irq;
static unsigned int kvm_apf_guest_ready_irq;
static bool kvm_apf_guest_ready_ppi;
static bool kvm_apf_guest_ready_vm_wide;
static bool kvm_apf_guest_irqs_requested;
static int kvm_apf_guest_hp_state = -1;
static struct dentry *kvm_apf_guest_debugfs;

bool kvm_apf_guest_shim_hyp_available(u32 func_num)
{
	return kvm_arm_hyp_service_available(func_num);
}

void kvm_apf_guest_shim_call(u32 func_id, u64 op, u64 arg, u64 *res)
{
	struct arm_smccc_res r;

	/* The conduit the kernel found at boot; NOT_SUPPORTED without one. */
	arm_smccc_1_1_invoke(func_id, op, arg, &r);
	res[0] = r.a0;
	res[1] = r.a1;
	res[2] = r.a2;
	res[3] = r.a3;
}

unsigned int kvm_apf_guest_shim_num_possible_cpus(void)
{
	return num_possible_cpus();
}

u64 kvm_apf_guest_shim_virt_to_phys(const void *addr)
{
	return virt_to_phys(addr);
}

void kvm_apf_guest_shim_set_cpu_state(unsigned int cpu, void *state)
{
	per_cpu(kvm_apf_guest_cpu, cpu) = state;
}

/*
 * The state of the CPU whose MPIDR_EL1 affinity is @mpidr, or NULL. Called
 * by the VM-wide page-ready handler, interrupts masked; the states and
 * the affinities do not change while the interrupt is requested.
 */
void *kvm_apf_guest_shim_state_of_mpidr(u64 mpidr)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu)
		if (per_cpu(kvm_apf_guest_mpidr, cpu) == mpidr)
			return per_cpu(kvm_apf_guest_cpu, cpu);
	return NULL;
}

/*
 * Maps a GIC INTID that no DT node names: a fwspec on the GICv3 node, as
 * a device's "interrupts" property would give. A PPI is declared level
 * triggered: KVM ignores the guest's trigger configuration of a PPI (it
 * makes these two edge-triggered itself) and Linux warns when asked for
 * edge on a PPI it cannot reconfigure. An SPI is programmed edge-triggered,
 * as the ABI asks.
 */
int kvm_apf_guest_shim_map_intid(u32 intid)
{
	struct irq_fwspec fwspec = { .param_count = 3 };
	struct device_node *gic;
	unsigned int virq;

	gic = of_find_compatible_node(NULL, NULL, "arm,gic-v3");
	if (!gic)
		return -ENODEV;
	fwspec.fwnode = of_fwnode_handle(gic);
	if (intid < 32) {
		fwspec.param[0] = GIC_PPI;
		fwspec.param[1] = intid - 16;
		fwspec.param[2] = IRQ_TYPE_LEVEL_HIGH;
	} else {
		fwspec.param[0] = GIC_SPI;
		fwspec.param[1] = intid - 32;
		fwspec.param[2] = IRQ_TYPE_EDGE_RISING;
	}
	virq = irq_create_fwspec_mapping(&fwspec);
	of_node_put(gic);
	return virq ? virq : -ENXIO;
}

/*
 * Both handlers run on the CPU that took the interrupt, interrupts masked,
 * and act on that CPU's record only. A CPU whose state is not set yet
 * ignores the notification, as the ABI asks of a guest without a record.
 */
static irqreturn_t kvm_apf_guest_np_handler(int irq, void *dev_id)
{
	void *state = __this_cpu_read(kvm_apf_guest_cpu);

	if (state)
		kvm_apf_guest_rs_not_present(state);
	return IRQ_HANDLED;
}

static irqreturn_t kvm_apf_guest_ready_handler(int irq, void *dev_id)
{
	void *state = __this_cpu_read(kvm_apf_guest_cpu);

	if (state)
		kvm_apf_guest_rs_page_ready(state);
	return IRQ_HANDLED;
}

/* VM-wide page-ready (an SPI, ABI 1.1): taken by any CPU, for any CPU. */
static irqreturn_t kvm_apf_guest_vm_ready_handler(int irq, void *dev_id)
{
	kvm_apf_guest_rs_vm_page_ready();
	return IRQ_HANDLED;
}

int kvm_apf_guest_shim_request_irqs(unsigned int np_irq,
				    unsigned int ready_irq, bool ready_ppi,
				    bool vm_wide)
{
	int ret;

	ret = request_percpu_irq(np_irq, kvm_apf_guest_np_handler,
				 "kvm_apf_not_present", &kvm_apf_guest_cpu);
	if (ret)
		return ret;
	if (ready_ppi)
		ret = request_percpu_irq(ready_irq, kvm_apf_guest_ready_handler,
					 "kvm_apf_page_ready",
					 &kvm_apf_guest_cpu);
	else if (vm_wide)
		/* Never threaded: it wakes tasks from hard interrupt context. */
		ret = request_irq(ready_irq, kvm_apf_guest_vm_ready_handler,
				  IRQF_NO_THREAD, "kvm_apf_page_ready", NULL);
	else
		/* Never threaded: the handler must run on the vCPU it read. */
		ret = request_irq(ready_irq, kvm_apf_guest_ready_handler,
				  IRQF_NO_THREAD, "kvm_apf_page_ready", NULL);
	if (ret) {
		free_percpu_irq(np_irq, &kvm_apf_guest_cpu);
		return ret;
	}
	kvm_apf_guest_np_irq = np_irq;
	kvm_apf_guest_ready_irq = ready_irq;
	kvm_apf_guest_ready_ppi = ready_ppi;
	kvm_apf_guest_ready_vm_wide = vm_wide;
	kvm_apf_guest_irqs_requested = true;
	return 0;
}

/* Every CPU disabled its per-CPU interrupts before (offline callback). */
void kvm_apf_guest_shim_free_irqs(void)
{
	if (!kvm_apf_guest_irqs_requested)
		return;
	if (kvm_apf_guest_ready_ppi)
		free_percpu_irq(kvm_apf_guest_ready_irq, &kvm_apf_guest_cpu);
	else
		free_irq(kvm_apf_guest_ready_irq, NULL);
	free_percpu_irq(kvm_apf_guest_np_irq, &kvm_apf_guest_cpu);
	kvm_apf_guest_irqs_requested = false;
}

/* IRQ_TYPE_NONE: keep the trigger of the mapping. */
void kvm_apf_guest_shim_enable_local_irqs(void)
{
	enable_percpu_irq(kvm_apf_guest_np_irq, IRQ_TYPE_NONE);
	if (kvm_apf_guest_ready_ppi)
		enable_percpu_irq(kvm_apf_guest_ready_irq, IRQ_TYPE_NONE);
}

void kvm_apf_guest_shim_disable_local_irqs(void)
{
	disable_percpu_irq(kvm_apf_guest_np_irq);
	if (kvm_apf_guest_ready_ppi)
		disable_percpu_irq(kvm_apf_guest_ready_irq);
}

/*
 * Whether the interrupt was taken from user mode. Not-present is only
 * acted on then: if another interrupt came first, it may be taken at EL1
 * on the way back, with the same or another current task.
 */
bool kvm_apf_guest_shim_irq_from_user(void)
{
	struct pt_regs *regs = get_irq_regs();

	return regs && user_mode(regs);
}

/* Both callbacks run on @cpu itself, in its hotplug thread. */
static int kvm_apf_guest_cpu_online(unsigned int cpu)
{
	/* Kept when the CPU goes offline: its WAKE_ALL may come after. */
	per_cpu(kvm_apf_guest_mpidr, cpu) = read_cpuid_mpidr() & MPIDR_HWID_BITMASK;
	return kvm_apf_guest_rs_cpu_online(per_cpu(kvm_apf_guest_cpu, cpu));
}

static int kvm_apf_guest_cpu_offline(unsigned int cpu)
{
	return kvm_apf_guest_rs_cpu_offline(per_cpu(kvm_apf_guest_cpu, cpu));
}

/* Runs the online callback on every online CPU before it returns. */
int kvm_apf_guest_shim_cpuhp_setup(void)
{
	int ret;

	ret = cpuhp_setup_state(CPUHP_AP_ONLINE_DYN, "virt/kvm_apf_guest:online",
				kvm_apf_guest_cpu_online,
				kvm_apf_guest_cpu_offline);
	if (ret < 0)
		return ret;
	kvm_apf_guest_hp_state = ret;
	return 0;
}

/* Runs the offline callback on every online CPU before it returns. */
void kvm_apf_guest_shim_cpuhp_remove(void)
{
	if (kvm_apf_guest_hp_state < 0)
		return;
	cpuhp_remove_state(kvm_apf_guest_hp_state);
	kvm_apf_guest_hp_state = -1;
}

static void kvm_apf_guest_stop_cpu(void *unused)
{
	void *state = __this_cpu_read(kvm_apf_guest_cpu);

	if (state)
		kvm_apf_guest_rs_cpu_stop(state);
}

/*
 * Reboot and kexec (kernel_kexec() runs the reboot notifiers too): every
 * vCPU stops announcing and unregisters its record before the memory is
 * reused. Hotplug cannot change the online CPUs meanwhile.
 */
static int kvm_apf_guest_reboot(struct notifier_block *nb,
				unsigned long action, void *data)
{
	cpus_read_lock();
	on_each_cpu(kvm_apf_guest_stop_cpu, NULL, 1);
	cpus_read_unlock();
	return NOTIFY_DONE;
}

static struct notifier_block kvm_apf_guest_reboot_nb = {
	.notifier_call = kvm_apf_guest_reboot,
};

void kvm_apf_guest_shim_reboot_register(void)
{
	/* Never fails: it only links the block into the chain. */
	register_reboot_notifier(&kvm_apf_guest_reboot_nb);
}

void kvm_apf_guest_shim_reboot_unregister(void)
{
	unregister_reboot_notifier(&kvm_apf_guest_reboot_nb);
}

/*
 * Queues the sleep of the interrupted user task, to run on its way back to
 * user mode. The callback lives in this module's text, so each queued
 * callback holds a module reference: unloading is refused while a sleep is
 * queued or running. kvm_apf_guest_task_work() drops it with a tail call
 * to module_put(), so that no instruction of the module runs after it.
 */
int kvm_apf_guest_shim_queue_sleep(struct callback_head *head)
{
	int ret;

	if (!try_module_get(THIS_MODULE))
		return -ENODEV;
	init_task_work(head, kvm_apf_guest_task_work);
	ret = task_work_add(current, head, TWA_RESUME);
	if (ret)
		module_put(THIS_MODULE);
	return ret;
}

bool kvm_apf_guest_shim_current_exiting(void)
{
	return current->flags & PF_EXITING;
}

/*
 * The sleeps: set the state before the last check of the condition under
 * the table lock, so that a wake_up_process() after the check is not lost.
 */
void kvm_apf_guest_shim_set_current_state(bool interruptible)
{
	set_current_state(interruptible ? TASK_INTERRUPTIBLE :
			  TASK_UNINTERRUPTIBLE);
}

void kvm_apf_guest_shim_set_current_running(void)
{
	__set_current_state(TASK_RUNNING);
}

void kvm_apf_guest_shim_raw_lock_init(raw_spinlock_t *lock)
{
	raw_spin_lock_init(lock);
}

unsigned long kvm_apf_guest_shim_raw_lock(raw_spinlock_t *lock)
{
	unsigned long flags;

	raw_spin_lock_irqsave(lock, flags);
	return flags;
}

bool kvm_apf_guest_shim_raw_trylock(raw_spinlock_t *lock, unsigned long *flags)
{
	return raw_spin_trylock_irqsave(lock, *flags);
}

void kvm_apf_guest_shim_raw_unlock(raw_spinlock_t *lock, unsigned long flags)
{
	raw_spin_unlock_irqrestore(lock, flags);
}

void kvm_apf_guest_shim_raw_assert_held(raw_spinlock_t *lock)
{
	lockdep_assert_held(lock);
}

void kvm_apf_guest_shim_debugfs_init(void)
{
	kvm_apf_guest_debugfs = debugfs_create_dir("kvm_apf_guest", NULL);
}

void kvm_apf_guest_shim_debugfs_add(const char *name, u64 *value)
{
	debugfs_create_u64(name, 0444, kvm_apf_guest_debugfs, value);
}

/*
 * Test only (module parameter inject=1): "sleep CPU TOKEN" makes the writer
 * sleep on TOKEN of CPU on its way back to user mode, "ready CPU TOKEN"
 * does what page-ready does with TOKEN on CPU (rust/kvm_apf_guest/inject.rs).
 */
static ssize_t kvm_apf_guest_inject_write(struct file *file,
					  const char __user *ubuf, size_t len,
					  loff_t *ppos)
{
	unsigned int cpu, op;
	char buf[64], name[8];
	u64 token;
	int ret;

	if (len >= sizeof(buf))
		return -EINVAL;
	if (copy_from_user(buf, ubuf, len))
		return -EFAULT;
	buf[len] = '\0';
	if (sscanf(buf, "%7s %u %llx", name, &cpu, &token) != 3)
		return -EINVAL;
	if (cpu >= nr_cpu_ids || !cpu_possible(cpu))
		return -EINVAL;
	if (!strcmp(name, "sleep"))
		op = 0;
	else if (!strcmp(name, "ready"))
		op = 1;
	else
		return -EINVAL;
	ret = kvm_apf_guest_rs_inject(per_cpu(kvm_apf_guest_cpu, cpu), op,
				      token);
	return ret ? ret : len;
}

static const struct file_operations kvm_apf_guest_inject_fops = {
	.owner = THIS_MODULE,
	.write = kvm_apf_guest_inject_write,
	.llseek = noop_llseek,
};

void kvm_apf_guest_shim_debugfs_inject(void)
{
	debugfs_create_file("inject", 0200, kvm_apf_guest_debugfs, NULL,
			    &kvm_apf_guest_inject_fops);
}

void kvm_apf_guest_shim_debugfs_exit(void)
{
	debugfs_remove(kvm_apf_guest_debugfs);
	kvm_apf_guest_debugfs = NULL;
}
