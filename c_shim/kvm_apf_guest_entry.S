/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The task_work callback of kvm_apf_guest.ko.
 *
 * Each queued sleep holds a reference on the module (taken by
 * kvm_apf_guest_shim_queue_sleep()), so the module cannot be unloaded
 * while a task is about to sleep or sleeps. Dropping that reference is the
 * last thing the callback does, and it must not return into the module
 * afterwards: once the count is zero, delete_module() may free the
 * module's text while this task is still between module_put() and its
 * return. A C function cannot promise a tail call (arm64 builds with
 * -fno-optimize-sibling-calls), so the callback is these few instructions:
 * the sleep itself in Rust, then a branch, not a call, to module_put().
 * module_put() returns straight to task_work_run(), and reads the module
 * only with preemption disabled, which free_module()'s synchronize_rcu()
 * waits for.
 */

#include <linux/cfi_types.h>
#include <linux/linkage.h>

#include <asm/assembler.h>

/* void kvm_apf_guest_task_work(struct callback_head *head) */
SYM_TYPED_FUNC_START(kvm_apf_guest_task_work)
	stp	x29, x30, [sp, #-16]!
	mov	x29, sp
	bl	kvm_apf_guest_rs_task_work
	ldp	x29, x30, [sp], #16
	adr_l	x0, __this_module
	b	module_put
SYM_FUNC_END(kvm_apf_guest_task_work)
