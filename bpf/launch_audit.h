/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Types shared by launch_audit.bpf.c and its user-space loader (broker/bpf/). Fixed-width fields,
 * no pointers.
 */
#ifndef FIKIT_LAUNCH_AUDIT_H
#define FIKIT_LAUNCH_AUDIT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Launch counts (map fikit_launches), per process and entry point. */
struct fikit_launch_key {
	__u32 pid; /* tgid */
	__u32 fn; /* index of the entry point in the loader's list: the uprobe's cookie */
};

#endif /* FIKIT_LAUNCH_AUDIT_H */
