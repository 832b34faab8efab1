// SPDX-License-Identifier: GPL-2.0
/*
 * launch_audit: count the kernel launches of GPU processes that the broker does not manage.
 *
 * Launches make no system call, so the only kernel-side way to see them is a uprobe on libcuda's
 * launch entry points (cuLaunchKernel, cuLaunchKernelEx, cuGraphLaunch, their _ptsz variants and
 * cuLaunchCooperativeKernel). The loader attaches this one program to each entry point, with the
 * entry point's index as the attach cookie, and only for the processes it audits (the uprobe's pid
 * filter), so processes that are not audited pay nothing and nothing is attached while audit mode
 * is off. Counts go to fikit_launches per (process, entry point).
 *
 * Known limits: a uprobe hit costs about 1.35 us per launch (measured on an H100 with a 3.2 us
 * launch: +43%); launches through a libcuda the loader did not find are not seen.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "fikit_helpers.bpf.h"
#include "launch_audit.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct fikit_launch_key);
	__type(value, __u64);
} fikit_launches SEC(".maps");

/* Counts not kept because fikit_launches was full (one slot). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} fikit_launch_drops SEC(".maps");

SEC("uprobe")
int fikit_launch(struct pt_regs *ctx)
{
	struct fikit_launch_key key = {
		.pid = bpf_get_current_pid_tgid() >> 32,
		.fn = (__u32)bpf_get_attach_cookie(ctx),
	};
	__u64 one = 1, *count;

	count = bpf_map_lookup_elem(&fikit_launches, &key);
	if (count) {
		__sync_fetch_and_add(count, 1);
		return 0;
	}
	/* First launch of this entry point in this process (or a racing CPU inserted it). */
	if (bpf_map_update_elem(&fikit_launches, &key, &one, BPF_NOEXIST) == 0)
		return 0;
	count = bpf_map_lookup_elem(&fikit_launches, &key);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		fikit_count(&fikit_launch_drops, 0);
	return 0;
}
