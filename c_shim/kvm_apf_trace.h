/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM kvm_apf

#if !defined(KVM_APF_TRACE_H) || defined(TRACE_HEADER_MULTI_READ)
#define KVM_APF_TRACE_H

#include <linux/tracepoint.h>

/* A notification to the guest about the page at @token. */
DECLARE_EVENT_CLASS(kvm_apf_token,
	TP_PROTO(unsigned int vcpu_id, u64 token),
	TP_ARGS(vcpu_id, token),
	TP_STRUCT__entry(
		__field(unsigned int, vcpu_id)
		__field(u64, token)
	),
	TP_fast_assign(
		__entry->vcpu_id = vcpu_id;
		__entry->token = token;
	),
	TP_printk("vcpu %u token %#llx", __entry->vcpu_id, __entry->token)
);

/* The guest was told the page at @token is not present yet. */
DEFINE_EVENT(kvm_apf_token, kvm_apf_not_present,
	TP_PROTO(unsigned int vcpu_id, u64 token),
	TP_ARGS(vcpu_id, token)
);

/* The guest was told the page at @token is ready (or wake-all). */
DEFINE_EVENT(kvm_apf_token, kvm_apf_ready,
	TP_PROTO(unsigned int vcpu_id, u64 token),
	TP_ARGS(vcpu_id, token)
);

/*
 * A stage-2 fault of a vCPU with the feature enabled that will not be
 * handled asynchronously (if it needs I/O, it blocks), and why.
 */
TRACE_EVENT(kvm_apf_sync,
	TP_PROTO(unsigned int vcpu_id, u64 ipa, u32 reason),
	TP_ARGS(vcpu_id, ipa, reason),
	TP_STRUCT__entry(
		__field(unsigned int, vcpu_id)
		__field(u64, ipa)
		__field(u32, reason)
	),
	TP_fast_assign(
		__entry->vcpu_id = vcpu_id;
		__entry->ipa = ipa;
		__entry->reason = reason;
	),
	TP_printk("vcpu %u ipa %#llx reason %u", __entry->vcpu_id,
		  __entry->ipa, __entry->reason)
);

#endif /* KVM_APF_TRACE_H */

#undef TRACE_INCLUDE_PATH
#define TRACE_INCLUDE_PATH .
#undef TRACE_INCLUDE_FILE
#define TRACE_INCLUDE_FILE kvm_apf_trace
#include <trace/define_trace.h>
