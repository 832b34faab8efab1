/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Types shared by gpu_observer.bpf.c and its user-space loader (broker/bpf/): the decoded driver
 * commands, map keys and values, and the ring-buffer event. Fixed-width fields, no pointers.
 * Driver numbers come from NVIDIA/open-gpu-kernel-modules (see docs/BPF.md for the sources).
 */
#ifndef FIKIT_GPU_OBSERVER_H
#define FIKIT_GPU_OBSERVER_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Character device majors: /dev/nvidia<N> and /dev/nvidiactl are fixed, nvidia-uvm is dynamic. */
#define FIKIT_NV_MAJOR 195
#define FIKIT_NV_IOCTL_MAGIC 0x46 /* 'F': _IOC_TYPE of the driver's ioctls */

/* NVIDIA escape codes (_IOC_NR of an 'F' ioctl) that the observer decodes. */
#define FIKIT_NV_ESC_RM_FREE 0x29
#define FIKIT_NV_ESC_RM_CONTROL 0x2a
#define FIKIT_NV_ESC_RM_ALLOC 0x2b
#define FIKIT_NV_ESC_RM_MAP_MEMORY 0x4e /* on nvidiactl; its fd field is a /dev/nvidia<N> fd */
#define FIKIT_NV_ESC_ALLOC_OS_EVENT \
	0xce /* on a /dev/nvidia<N> fd: { hClient, hDevice, fd, status } */

/* Minors of major 195: /dev/nvidia<N> for N <= FIKIT_NV_MINOR_GPU_MAX, 255 /dev/nvidiactl. */
#define FIKIT_NV_MINOR_GPU_MAX 253
#define FIKIT_NV_MINOR_CTL 255
#define FIKIT_NV_MINOR_NONE 0xffff /* not a /dev/nvidia* fd (nvidia-uvm), or unknown */
#define FIKIT_TEST_GPUS 2 /* test devices that stand for /dev/nvidia0 and /dev/nvidia1 */

/* nvidia-uvm commands: raw numbers, not _IOC-encoded. */
#define FIKIT_UVM_INITIALIZE 0x30000001
#define FIKIT_UVM_DEINITIALIZE 0x30000002
#define FIKIT_UVM_CREATE_RANGE_GROUP 23
#define FIKIT_UVM_DESTROY_RANGE_GROUP 24
#define FIKIT_UVM_MAP_EXTERNAL_ALLOCATION 33
#define FIKIT_UVM_FREE 34
#define FIKIT_UVM_CMD_MAX 255 /* commands above this (but the two above) are not nvidia-uvm's */

/* RM_ALLOC parameter block sizes: NVOS64_PARAMETERS (CUDA 13 / driver 580) and NVOS21. */
#define FIKIT_NVOS64_SIZE 48
#define FIKIT_NVOS21_SIZE 32

/* RM object classes the observer tracks (sdk/nvidia/inc/class/). */
#define FIKIT_CLASS_ROOT 0x0
#define FIKIT_CLASS_ROOT_NON_PRIV 0x1
#define FIKIT_CLASS_ROOT_CLIENT 0x41
#define FIKIT_CLASS_MEMORY_LOCAL_USER 0x40 /* device memory (vidmem) */
#define FIKIT_CLASS_DEVICE 0x80
#define FIKIT_CLASS_SUBDEVICE 0x2080
#define FIKIT_CLASS_CHANNEL_GROUP 0xa06c /* KEPLER_CHANNEL_GROUP_A: a TSG, a hardware context */
#define FIKIT_MEMORY_PARAMS_SIZE_OFFSET 64 /* NV_MEMORY_ALLOCATION_PARAMS.size */

/* Which driver a traced ioctl went to. */
enum fikit_driver {
	FIKIT_DRIVER_NONE = 0,
	FIKIT_DRIVER_NVIDIA = 1, /* /dev/nvidia*: code is the escape number (_IOC_NR) */
	FIKIT_DRIVER_UVM = 2, /* /dev/nvidia-uvm: code is the raw command */
};

/* What a tracked RM object is. */
enum fikit_obj_kind {
	FIKIT_OBJ_NONE = 0,
	FIKIT_OBJ_CLIENT = 1, /* NV01_ROOT*: a process became a GPU client (cuInit) */
	FIKIT_OBJ_DEVICE = 2, /* NV01_DEVICE_0 */
	FIKIT_OBJ_SUBDEVICE = 3, /* NV20_SUBDEVICE_0 */
	FIKIT_OBJ_CONTEXT = 4, /* channel group (TSG): a GPU context has several */
	FIKIT_OBJ_CHANNEL = 5, /* GPFIFO channel, any generation (class 0x?06f) */
	FIKIT_OBJ_VIDMEM = 6, /* NV01_MEMORY_LOCAL_USER, with its size */
};

/* Ring-buffer event kinds. */
enum fikit_event_kind {
	FIKIT_EV_RM_ALLOC = 1, /* tracked RM object allocated: obj_kind, rm_class, handles, bytes */
	FIKIT_EV_RM_FREE = 2, /* tracked RM object freed by RM_FREE (its children go with it) */
	FIKIT_EV_UVM_MAP = 3, /* UVM_MAP_EXTERNAL_ALLOCATION: addr = base, bytes = length */
	FIKIT_EV_UVM_FREE = 4, /* UVM_FREE of a mapped base: bytes = the mapped length */
	FIKIT_EV_STREAM_CREATE = 5, /* UVM_CREATE_RANGE_GROUP (one per CUDA stream): addr = id */
	FIKIT_EV_STREAM_DESTROY = 6, /* UVM_DESTROY_RANGE_GROUP: addr = id */
	FIKIT_EV_EXIT = 7, /* the last thread of a process that used the driver exited */
	/*
	 * An RM object was named in a call through /dev/nvidia<minor> (RM_ALLOC of a child on that
	 * fd, ALLOC_OS_EVENT on it, RM_MAP_MEMORY with it as the mapping fd): client, handle, minor.
	 * User space binds the object's device (NV01_DEVICE_0 ancestor) to that GPU.
	 */
	FIKIT_EV_GPU_BIND = 8,
};

/* Per-CPU counters (map fikit_counters), summed by user space. */
enum fikit_counter {
	FIKIT_CNT_TRACED = 0, /* ioctls to a watched device (entered) */
	FIKIT_CNT_EVENTS = 1, /* events written to the ring buffer */
	FIKIT_CNT_DROP_RINGBUF = 2, /* events lost: ring buffer full */
	FIKIT_CNT_DROP_STATS = 3, /* ioctls not counted: statistics map full */
	FIKIT_CNT_DROP_OBJECTS = 4, /* objects not tracked: object or mapping map full */
	FIKIT_CNT_DROP_INFLIGHT = 5, /* ioctls not timed: no task storage */
	FIKIT_CNT_READ_FAIL = 6, /* parameter blocks that could not be read */
	FIKIT_CNT_MAX = 7,
};

/* ioctl statistics, per process and driver command (map fikit_ioctls). */
struct fikit_ioctl_key {
	__u32 pid; /* tgid */
	__u32 driver; /* enum fikit_driver */
	__u32 code; /* escape number (nvidia) or command (uvm) */
};

struct fikit_ioctl_stat {
	__u64 count;
	__u64 total_ns; /* time spent in the ioctl, enter to exit */
	__u64 failed; /* calls that returned an error */
};

/* A tracked RM object (map fikit_objects). */
struct fikit_object_key {
	__u32 pid;
	__u32 client; /* hClient / hRoot */
	__u32 handle;
};

struct fikit_object {
	__u32 obj_kind; /* enum fikit_obj_kind */
	__u32 rm_class;
	__u64 bytes; /* vidmem size, else 0 */
};

/* A UVM external mapping (map fikit_uvm_maps), by base address. */
struct fikit_mapping_key {
	__u32 pid;
	__u32 pad;
	__u64 base;
};

/* One ring-buffer event. ts_ns is bpf_ktime_get_ns(), i.e. CLOCK_MONOTONIC. */
struct fikit_gpu_event {
	__u64 ts_ns;
	__u64 dur_ns; /* the ioctl's duration; 0 for exit */
	__u64 addr; /* UVM base address or range group id */
	__u64 bytes;
	__u32 kind; /* enum fikit_event_kind */
	__u32 pid; /* tgid */
	__u32 tid;
	__u32 obj_kind; /* enum fikit_obj_kind, RM events */
	__u32 rm_class;
	__u32 client;
	__u32 parent;
	__u32 handle;
	__s32 exit_code; /* wait status (exit code << 8 | signal), exit events */
	__u32 minor; /* RM events: minor of the /dev/nvidia* fd of the call; GPU_BIND: the GPU's */
	char comm[16]; /* the process's name (its group leader's), not the thread's */
};

#endif /* FIKIT_GPU_OBSERVER_H */
