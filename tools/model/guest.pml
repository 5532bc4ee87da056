/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest's side shared by the page-ready models, and the vCPU's record
 * field the host announces not-present in (Documentation/async-pf.rst,
 * "Guest handlers"; rust/logic/sleepers.rs):
 *
 *   not-present PPI on CPU k, under table k's lock: t = np; np = 0; if the
 *     interrupted context is user mode, an entry QUEUED(t) (its task sleeps
 *     later, in task_work), else nothing.
 *   wake (k, t), under table k's lock: QUEUED -> READY (the wait returns at
 *     once), SLEEPING -> WOKEN; no entry while np of k still holds t ->
 *     np = 0 (page-ready before not-present: nobody must sleep on it);
 *     otherwise the page-ready is dropped (nobody waits).
 *   WAKE_ALL of k: every entry of k marked as above, np of k voided.
 *   task (k, t): once its entry exists: READY -> free it, return; QUEUED ->
 *     SLEEPING, wait for WOKEN, free it.
 *
 * The includer defines NV (vCPUs); each vCPU announces TOK tokens, 1..TOK.
 */
#define TOK 2
#define W (TOK + 1)
#define I(k, t) ((k) * W + (t))
#define WAKE_ALL 255

mtype = { FREE, QUEUED, READY, SLEEPING, WOKEN };
mtype = { IDLE, ANN, DONE, STALE, DELIVERED };

byte np[NV];			/* record k: not_present_token */
bool np_irq[NV];		/* k's not-present PPI pending */
mtype ent[NV * W];		/* guest table k: the entry of token t */
mtype st[NV * W];		/* host: token t of vCPU k */

proctype guest_np(byte k)
{
	byte t;

end:	do
	:: atomic {
		np_irq[k] -> np_irq[k] = 0;
		t = np[k];
		if
		:: t != 0 ->
			np[k] = 0;
			if
			:: assert(ent[I(k, t)] == FREE); ent[I(k, t)] = QUEUED
			:: skip		/* kernel mode: hand the field back only */
			fi
		:: else -> skip	/* spurious */
		fi;
		t = 0
	   }
	od
}

inline wake_one(k, t)
{
	if
	:: ent[I(k, t)] == QUEUED -> ent[I(k, t)] = READY
	:: ent[I(k, t)] == SLEEPING -> ent[I(k, t)] = WOKEN
	:: else -> skip
	fi
}

/* A page-ready of (k, t), or WAKE_ALL, under table k's lock. */
inline wake(k, t)
{
	atomic {
		if
		:: t == WAKE_ALL ->
			wake_one(k, 1); wake_one(k, 2); np[k] = 0
		:: else ->
			if
			:: ent[I(k, t)] != FREE -> wake_one(k, t)
#ifndef BUG_NO_VOID
			:: ent[I(k, t)] == FREE && np[k] == t -> np[k] = 0
#endif
			:: else -> skip
			fi
		fi
	}
}

/* Host: the page-ready of (k, t) is handed out (never twice). */
inline delivered(k, t)
{
	if
	:: t != WAKE_ALL ->
		assert(st[I(k, t)] == DONE); st[I(k, t)] = DELIVERED
	:: else -> skip
	fi
}

proctype task(byte k; byte t)
{
end:	atomic {
		ent[I(k, t)] == QUEUED || ent[I(k, t)] == READY ->
		if
		:: ent[I(k, t)] == READY -> ent[I(k, t)] = FREE; goto out
		:: else -> ent[I(k, t)] = SLEEPING
		fi
	}
	/* Not an end state: a task that stops here was never woken. */
	atomic { ent[I(k, t)] == WOKEN -> ent[I(k, t)] = FREE }
out:	skip
}

/* Starts the guest's processes of every vCPU and initialises the tables. */
inline start_guest(k)
{
	k = 0;
	do
	:: k < NV * W -> ent[k] = FREE; st[k] = IDLE; k++
	:: else -> break
	od;
	k = 0;
	do
	:: k < NV -> run guest_np(k); run task(k, 1); run task(k, 2); k++
	:: else -> break
	od;
	k = 0
}

/* When nothing can move any more: every entry freed by its task. */
inline check_tables(k)
{
	k = 0;
	do
	:: k < NV ->
		assert(ent[I(k, 1)] == FREE && ent[I(k, 2)] == FREE);
		k++
	:: else -> break
	od
}
