/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The EL0 trampoline of the selftest guests that run tasks at EL0
 * (apf_e2e, apf_spi). Include it in one file of a test only: it defines
 * apf_run_el0 and apf_el0_return.
 */
#ifndef APF_EL0_H
#define APF_EL0_H

#include <linux/types.h>

/*
 * u64 apf_run_el0(u64 pc, u64 x1, u64 spsr): run EL0 code at pc with x1 and
 * PSTATE spsr until an exception handler sends it back to apf_el0_return:
 * the svc handler (returns the task's x0) or the not-present handler (the
 * task sleeps). Exceptions from EL0 run on SP_EL1 below this frame, so the
 * handler returning to apf_el0_return at EL1h finds it intact. The caller
 * saves its DAIF in el1_daif first: the handlers return to EL1 with it.
 */
u64 apf_run_el0(u64 pc, u64 x1, u64 spsr);
extern char apf_el0_return[];
asm(
"	.pushsection .text\n"
"	.global	apf_run_el0\n"
"	.type	apf_run_el0, %function\n"
"apf_run_el0:\n"
	/* No IRQ may clobber ELR/SPSR_EL1 between the msr and the eret. */
"	msr	daifset, #3\n"
"	stp	x29, x30, [sp, #-96]!\n"
"	mov	x29, sp\n"
"	stp	x19, x20, [sp, #16]\n"
"	stp	x21, x22, [sp, #32]\n"
"	stp	x23, x24, [sp, #48]\n"
"	stp	x25, x26, [sp, #64]\n"
"	stp	x27, x28, [sp, #80]\n"
"	msr	elr_el1, x0\n"
"	msr	spsr_el1, x2\n"
"	isb\n"
"	eret\n"
"	.global	apf_el0_return\n"
"apf_el0_return:\n"
"	ldp	x19, x20, [sp, #16]\n"
"	ldp	x21, x22, [sp, #32]\n"
"	ldp	x23, x24, [sp, #48]\n"
"	ldp	x25, x26, [sp, #64]\n"
"	ldp	x27, x28, [sp, #80]\n"
"	ldp	x29, x30, [sp], #96\n"
"	ret\n"
"	.size	apf_run_el0, . - apf_run_el0\n"
"	.popsection\n");

#endif /* APF_EL0_H */
