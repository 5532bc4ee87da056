/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Page-ready on an SPI as ABI 1.0 delivered it, which loses wake-ups with
 * more than one vCPU: the checker must find a task left asleep here
 * (tools/model/check.sh expects this model to fail).
 *
 * Host, per vCPU k, on its vCPU thread:
 *   announce t:  only into an empty not_present_token; pend k's PPI
 *   complete t:  if k's ready_token is 0, write t there and signal the SPI;
 *                else queue t on k and set k's ack_ready
 *   ACK_READY on k: if something is queued on k and ready_token is 0,
 *                write it and signal the SPI; ack_ready = 0 once empty
 * The SPI is routed to CPU 0 (GICD_IROUTER), whose handler reads its own
 * record: t = ready_token; ready_token = 0; if ack_ready: ACK_READY;
 * wake (0, t).
 */
#ifndef NV
#define NV 2
#endif
#include "guest.pml"

byte ready[NV];			/* record k: ready_token */
bool ack[NV];			/* record k: ack_ready */
chan hq[NV] = [TOK] of { byte };	/* host: k's queued page-ready */
bool spi_pend;

inline complete(k, t)
{
	atomic {
		st[I(k, t)] == ANN ->
		st[I(k, t)] = DONE;
		if
		:: ready[k] == 0 -> ready[k] = t; delivered(k, t); spi_pend = 1
		:: else -> hq[k]!t; ack[k] = 1
		fi
	}
}

proctype host(byte k)
{
	byte next = 1;

	do
	:: atomic {
		next <= TOK && np[k] == 0 ->
		np[k] = next; np_irq[k] = 1; st[I(k, next)] = ANN; next++
	   }
	:: complete(k, 1)
	:: complete(k, 2)
	:: atomic {
		next > TOK && st[I(k, 1)] != ANN && st[I(k, 2)] != ANN -> break
	   }
	od
}

/* The SPI's target, CPU 0, and the vCPU 0 thread's ACK_READY. */
proctype spi()
{
	byte t;

end:	do
	:: atomic { spi_pend -> spi_pend = 0 }
		atomic { t = ready[0]; ready[0] = 0 }
		if
		:: ack[0] -> atomic {
			if
			:: len(hq[0]) > 0 && ready[0] == 0 ->
				hq[0]?ready[0]; delivered(0, ready[0]); spi_pend = 1
			:: else -> skip
			fi;
			if
			:: len(hq[0]) == 0 -> ack[0] = 0
			:: else -> skip
			fi
		   }
		:: else -> skip
		fi;
		if
		:: t != 0 -> wake(0, t)
		:: else -> skip
		fi;
		t = 0
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
	check_tables(k)
}
