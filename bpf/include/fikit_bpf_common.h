/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Types every fikit BPF program shares with user space: the impossible-state record. Fixed-width
 * fields only, so the BPF object and the C++ loader agree on the layout.
 */
#ifndef FIKIT_BPF_COMMON_H
#define FIKIT_BPF_COMMON_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/*
 * A state the program believes impossible: the source line of the last one and how many were seen.
 * The loader reports it (scx's UEI_RECORD/UEI_REPORT idea, without stopping the program).
 */
struct fikit_bpf_error {
	__u32 line;
	__u32 count;
};

#endif /* FIKIT_BPF_COMMON_H */
