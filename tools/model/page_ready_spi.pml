/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Page-ready on an SPI, ABI 1.1: NV vCPUs each announce TOK tokens,
 * completions come in any order, each vCPU may DISABLE once (WAKE_ALL),
 * not-present is handled in user or kernel mode (guest.pml), and the SPI
 * is taken by whichever CPU (one at a time: it stays active until EOI; a
 * signal while it is active makes it pending again).
 *
 * The steps of design.rst, "VM-wide page-ready on an SPI", one for one.
 * Each atomic block is one critical section of the VM's ready lock, or
 * one step between two guest instructions:
 *   1 announce t (vCPU k's thread): only into an empty not_present_token;
 *     pend k's PPI (each token is announced once here, so the check for a
 *     queued (k, t) is not needed)
 *   2 complete t: push (k, t) on the VM's ready queue; if !armed: armed = 1
 *     and signal the SPI (an edge)
 *   3 take: the SPI's pending state moves to active (one handler at a
 *     time; a signal while it is active makes it pending again)
 *   4 fetch (GET_READY, any vCPU): pop the oldest entry; more = the queue
 *     is not empty; when it returns more = 0 (or nothing), armed = 0
 *   5 wake (guest.pml), while more; then EOI
 *   6 void (DISABLE of k): drop k's entries from the queue, push
 *     (k, WAKE_ALL), signal as in 2; tokens still in flight become stale
 * Not modelled: reset and restore (6 without the append, then the append
 * at the first run), which only remove entries.
 *
 * Mutations that tools/model/check.sh expects the checker to catch:
 * BUG_IGNORE_MORE (one GET_READY per interrupt), BUG_NEVER_DISARM
 * (GET_READY never clears armed), BUG_NO_VOID (guest.pml: a page-ready
 * that finds no entry does not void the not-present still in the record).
 *
 * Checked: no page-ready handed out twice (assert); no task left asleep
 * (invalid end state), nothing queued or signalled and every table entry
 * freed when the system can move no further (final assertions).
 */
#ifndef NV
#define NV 2
#endif
#include "guest.pml"

chan q = [NV * W] of { byte, byte };	/* the VM's ready queue */
bool armed;
bool spi_pend;
bool spi_active;

inline arm()
{
	if
	:: !armed -> armed = 1; spi_pend = 1
	:: else -> skip
	fi
}

inline complete(k, t)
{
	atomic {
		st[I(k, t)] == ANN ->
		st[I(k, t)] = DONE;
		q!k, t;
		arm()
	}
}

proctype host(byte k)
{
	byte next = 1;
	byte n, a, b;

	do
	:: atomic {
		next <= TOK && np[k] == 0 ->
		np[k] = next; np_irq[k] = 1; st[I(k, next)] = ANN; next++
	   }
	:: complete(k, 1)
	:: complete(k, 2)
#ifndef NO_DISABLE
	:: atomic {
		next != TOK + 2 ->
		next = TOK + 2;		/* disabled: no more announces */
		if
		:: st[I(k, 1)] == ANN -> st[I(k, 1)] = STALE
		:: else -> skip
		fi;
		if
		:: st[I(k, 2)] == ANN -> st[I(k, 2)] = STALE
		:: else -> skip
		fi;
		n = len(q);
		do
		:: n > 0 -> q?a, b; if
			:: a != k -> q!a, b
			:: else -> skip
			fi; n--
		:: else -> break
		od;
		q!k, WAKE_ALL;
		arm();
		a = 0; b = 0
	   }
#endif
	:: atomic {
		next > TOK && st[I(k, 1)] != ANN && st[I(k, 2)] != ANN -> break
	   }
	od
}

proctype spi()
{
	byte k, t;
	bool got, more;

end:	do
	:: atomic { spi_pend && !spi_active -> spi_pend = 0; spi_active = 1 }
		do
		:: atomic {	/* GET_READY */
			if
			:: len(q) > 0 ->
				q?k, t; got = 1; more = len(q) > 0;
				delivered(k, t)
			:: else -> got = 0; more = 0
			fi;
#ifndef BUG_NEVER_DISARM
			if
			:: !more -> armed = 0
			:: else -> skip
			fi
#endif
		   }
			if
			:: got -> wake(k, t)
			:: else -> skip
			fi;
#ifdef BUG_IGNORE_MORE
			break
#else
			if
			:: got && more -> skip
			:: else -> break
			fi
#endif
		od;
		atomic { spi_active = 0; k = 0; t = 0; got = 0; more = 0 }	/* EOI */
	od
}

init
{
	byte k;

	atomic {
		start_guest(k);
		do
		:: k < NV -> run host(k); k++
		:: else -> break
		od;
		run spi()
	}
	timeout;
	assert(len(q) == 0 && !spi_pend && !spi_active);
	check_tables(k)
}
