/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Helpers for fikit's BPF programs (BPF side only). Programs never block and never fail loudly: a
 * failed reservation or update is counted in a per-CPU counter and the program returns 0.
 */
#ifndef FIKIT_HELPERS_BPF_H
#define FIKIT_HELPERS_BPF_H

#include "fikit_bpf_common.h"

/*
 * Record an impossible state: the line number and a count, in the program's `fikit_error` global
 * (each program defines one). User space reports "<program>.bpf.c:<line>".
 */
#define FIKIT_BPF_ERROR()                                    \
	do {                                                 \
		fikit_error.line = __LINE__;                 \
		__sync_fetch_and_add(&fikit_error.count, 1); \
	} while (0)

/* Add one to slot `idx` of a per-CPU array of __u64 counters. */
static __always_inline void fikit_count(void *counters, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(counters, &idx);

	if (v)
		*v += 1;
}

#endif /* FIKIT_HELPERS_BPF_H */
