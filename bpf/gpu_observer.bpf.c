// SPDX-License-Identifier: GPL-2.0
/*
 * gpu_observer: the NVIDIA driver's ioctl traffic, turned into GPU tenant lifecycle and accounting.
 *
 * Kernel launches never enter the kernel (user-mode submission), but everything that sets a GPU
 * process up does: cuInit (~90 ioctls), context creation (~330), device-memory growth, stream
 * creation and teardown. This program watches the ioctl syscall tracepoints, keeps only calls on
 * file descriptors whose inode is the NVIDIA driver (major 195), nvidia-uvm (dynamic major, set
 * by the loader from /proc/devices) or an optional test device, and:
 *   - counts calls and time per process and driver command (map fikit_ioctls);
 *   - decodes the few commands that change a process's GPU state and sends an event for each:
 *     RM_ALLOC/RM_FREE of clients, devices, channel groups (contexts), channels and device
 *     memory (its size from NV_MEMORY_ALLOCATION_PARAMS), UVM external mappings and their frees
 *     (with lengths), UVM range groups (one per CUDA stream), and the exit of a process that used
 *     the driver (sched_process_exit);
 *   - names, for each RM event, the minor of the /dev/nvidia* fd the call went to, and sends a
 *     GPU_BIND event when an object is used through a GPU's fd (/dev/nvidia<N>: a child allocated
 *     on it, an OS event on it, RM_MAP_MEMORY onto it), from which user space attributes devices,
 *     and so contexts and device memory, to GPUs (docs/BPF.md, "Per GPU").
 * The device filter is read-only configuration, fixed at load time (cfg_*).
 *
 * Known limits: objects freed implicitly (a parent freed, the fd closed) produce no event; user
 * space cascades frees down the parent chain it knows and resets a process at exit. A failed UVM
 * map is not recognised (its status sits after a driver-sized array). Commands are decoded from
 * the x86-64 layouts of driver 580; another layout decodes as garbage for those few commands only
 * (the counts stay right). A test device has no driver behind it, so its ioctls fail: on it the
 * return value is ignored and the RM status fields the test wrote are trusted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "fikit_helpers.bpf.h"
#include "gpu_observer.h"

char LICENSE[] SEC("license") = "GPL";

#define S_IFMT 00170000
#define S_IFCHR 0020000
#define IOC_SIZE(cmd) (((cmd) >> 16) & 0x3fff)

/* Load-time configuration, set by the loader before load. */
const volatile __u32 cfg_nv_major = FIKIT_NV_MAJOR;
const volatile __u32 cfg_uvm_major = 0; /* 0: nvidia-uvm is not loaded */
const volatile __u32 cfg_test_rdev = 0; /* kernel dev_t (major << 20 | minor), 0: none */
/* Test devices decoded as /dev/nvidia0 and /dev/nvidia1 (cfg_test_rdev stands for nvidiactl). */
const volatile __u32 cfg_test_gpu_rdev[FIKIT_TEST_GPUS] = {};

struct fikit_bpf_error fikit_error = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} fikit_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct fikit_ioctl_key);
	__type(value, struct fikit_ioctl_stat);
} fikit_ioctls SEC(".maps");

/* Processes that used the driver, so that only their exits are reported. Value: first seen. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u64);
} fikit_procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, struct fikit_object_key);
	__type(value, struct fikit_object);
} fikit_objects SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, struct fikit_mapping_key);
	__type(value, __u64);
} fikit_uvm_maps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FIKIT_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} fikit_counters SEC(".maps");

/* The ioctl a thread is in, from sys_enter to sys_exit. Freed with the task. */
struct inflight {
	__u64 ts;
	__u64 arg;
	__u32 cmd;
	__u16 driver;
	__u8 test; /* on the test device: ignore the return value */
	__u8 active;
	__u32 minor; /* of the /dev/nvidia* fd, FIKIT_NV_MINOR_NONE for nvidia-uvm */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct inflight);
} fikit_inflight SEC(".maps");

/* What a finished ioctl was, handed to the decoders. */
struct call {
	__u64 pid_tgid;
	__u64 now;
	__u64 dur;
	__u64 arg;
	__u32 cmd;
	__u32 minor; /* of the /dev/nvidia* fd the call went to */
};

/* Return true if `cmd` can be a command of the NVIDIA driver or of nvidia-uvm. */
static __always_inline bool cmd_may_be_gpu(__u32 cmd)
{
	return ((cmd >> 8) & 0xff) == FIKIT_NV_IOCTL_MAGIC || cmd <= FIKIT_UVM_CMD_MAX ||
	       cmd == FIKIT_UVM_INITIALIZE || cmd == FIKIT_UVM_DEINITIALIZE;
}

/* Return the test GPU index that `rdev` stands for, or -1. */
static __always_inline int test_gpu(__u32 rdev)
{
	for (int i = 0; i < FIKIT_TEST_GPUS; i++)
		if (cfg_test_gpu_rdev[i] && rdev == cfg_test_gpu_rdev[i])
			return i;
	return -1;
}

/* Return the driver that `cmd` on the character device `rdev` goes to, or FIKIT_DRIVER_NONE;
 * set *minor to the /dev/nvidia* minor it stands for (FIKIT_NV_MINOR_NONE otherwise). */
static __always_inline __u32 classify(__u32 rdev, __u32 cmd, __u8 *test, __u32 *minor_out)
{
	__u32 major = rdev >> 20, minor = rdev & 0xfffff;
	bool nv_cmd = ((cmd >> 8) & 0xff) == FIKIT_NV_IOCTL_MAGIC;
	int gpu;

	*test = 0;
	*minor_out = FIKIT_NV_MINOR_NONE;
	if (!rdev)
		return FIKIT_DRIVER_NONE;
	if (cfg_test_rdev && rdev == cfg_test_rdev) {
		*test = 1;
		*minor_out = FIKIT_NV_MINOR_CTL;
		return nv_cmd ? FIKIT_DRIVER_NVIDIA : FIKIT_DRIVER_UVM;
	}
	gpu = test_gpu(rdev);
	if (gpu >= 0) {
		*test = 1;
		*minor_out = gpu;
		return nv_cmd ? FIKIT_DRIVER_NVIDIA : FIKIT_DRIVER_UVM;
	}
	if (major == cfg_nv_major && nv_cmd) {
		*minor_out = minor;
		return FIKIT_DRIVER_NVIDIA;
	}
	/* Minor 0 is /dev/nvidia-uvm; minor 1, nvidia-uvm-tools, speaks another command set. */
	if (cfg_uvm_major && major == cfg_uvm_major && minor == 0 && !nv_cmd)
		return FIKIT_DRIVER_UVM;
	return FIKIT_DRIVER_NONE;
}

/* Return the device number of `fd` if it is a character device, else 0. */
static __always_inline __u32 fd_char_rdev(struct task_struct *task, int fd)
{
	/*
	 * Direct BTF loads through the task pointer are cheaper than probe reads; the fd array
	 * holds plain pointers, so from there on it is probe reads.
	 */
	struct fdtable *fdt = task->files->fdt;
	struct file *file = NULL;
	struct inode *inode;

	if (fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return 0;
	if (bpf_probe_read_kernel(&file, sizeof(file), &fdt->fd[fd]) || !file)
		return 0;
	inode = BPF_CORE_READ(file, f_inode);
	if (!inode || (BPF_CORE_READ(inode, i_mode) & S_IFMT) != S_IFCHR)
		return 0;
	return BPF_CORE_READ(inode, i_rdev);
}

SEC("tracepoint/syscalls/sys_enter_ioctl")
int fikit_ioctl_in(struct trace_event_raw_sys_enter *ctx)
{
	__u32 cmd = (__u32)ctx->args[1];
	struct task_struct *task;
	struct inflight *in;
	__u32 driver, minor;
	__u8 test;

	/* Cheapest test first: this runs for every ioctl on the machine. */
	if (!cmd_may_be_gpu(cmd))
		return 0;
	task = bpf_get_current_task_btf();
	driver = classify(fd_char_rdev(task, (int)ctx->args[0]), cmd, &test, &minor);
	if (driver == FIKIT_DRIVER_NONE)
		return 0;
	fikit_count(&fikit_counters, FIKIT_CNT_TRACED);
	in = bpf_task_storage_get(&fikit_inflight, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!in) {
		fikit_count(&fikit_counters, FIKIT_CNT_DROP_INFLIGHT);
		return 0;
	}
	if (in->active) /* a thread cannot be in two ioctls */
		FIKIT_BPF_ERROR();
	in->ts = bpf_ktime_get_ns();
	in->arg = ctx->args[2];
	in->cmd = cmd;
	in->driver = driver;
	in->test = test;
	in->minor = minor;
	in->active = 1;
	return 0;
}

/* Add one call to the statistics of (process, driver, code); note the process on first sight. */
static __always_inline void account(__u32 pid, __u32 driver, __u32 code, __u64 dur, bool failed)
{
	struct fikit_ioctl_key key = { .pid = pid, .driver = driver, .code = code };
	struct fikit_ioctl_stat zero = {}, *st;
	__u64 now;

	st = bpf_map_lookup_elem(&fikit_ioctls, &key);
	if (!st) {
		/* First call of this code by this process; another CPU may race us (EEXIST). */
		bpf_map_update_elem(&fikit_ioctls, &key, &zero, BPF_NOEXIST);
		now = bpf_ktime_get_ns();
		bpf_map_update_elem(&fikit_procs, &pid, &now, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&fikit_ioctls, &key);
		if (!st) {
			fikit_count(&fikit_counters, FIKIT_CNT_DROP_STATS);
			return;
		}
	}
	__sync_fetch_and_add(&st->count, 1);
	__sync_fetch_and_add(&st->total_ns, dur);
	if (failed)
		__sync_fetch_and_add(&st->failed, 1);
}

/* Reserve an event of `kind` for the calling thread and fill its common fields, or NULL. */
static __always_inline struct fikit_gpu_event *event_start(__u32 kind, const struct call *c)
{
	struct fikit_gpu_event *e = bpf_ringbuf_reserve(&fikit_events, sizeof(*e), 0);
	struct task_struct *task;

	if (!e) {
		fikit_count(&fikit_counters, FIKIT_CNT_DROP_RINGBUF);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->ts_ns = c->now;
	e->dur_ns = c->dur;
	e->pid = c->pid_tgid >> 32;
	e->tid = (__u32)c->pid_tgid;
	/* The process's name, not the calling thread's (libcuda's threads have their own). */
	task = (struct task_struct *)bpf_get_current_task();
	BPF_CORE_READ_STR_INTO(&e->comm, task, group_leader, comm);
	return e;
}

static __always_inline void event_send(struct fikit_gpu_event *e)
{
	bpf_ringbuf_submit(e, 0);
	fikit_count(&fikit_counters, FIKIT_CNT_EVENTS);
}

/* Return what an object of RM class `cls` is to the observer, or FIKIT_OBJ_NONE. */
static __always_inline __u32 rm_class_kind(__u32 cls)
{
	switch (cls) {
	case FIKIT_CLASS_ROOT:
	case FIKIT_CLASS_ROOT_NON_PRIV:
	case FIKIT_CLASS_ROOT_CLIENT:
		return FIKIT_OBJ_CLIENT;
	case FIKIT_CLASS_DEVICE:
		return FIKIT_OBJ_DEVICE;
	case FIKIT_CLASS_SUBDEVICE:
		return FIKIT_OBJ_SUBDEVICE;
	case FIKIT_CLASS_CHANNEL_GROUP:
		return FIKIT_OBJ_CONTEXT;
	case FIKIT_CLASS_MEMORY_LOCAL_USER:
		return FIKIT_OBJ_VIDMEM;
	}
	/* GPFIFO channel classes of every generation: NV50 0x506f ... Blackwell 0xca6f. */
	if ((cls & 0xff) == 0x6f && cls >= 0x506f && cls <= 0xff6f)
		return FIKIT_OBJ_CHANNEL;
	return FIKIT_OBJ_NONE;
}

/* RM_ALLOC parameters (NVOS64; NVOS21 shares the first 24 bytes). */
struct nvos64 {
	__u32 root;
	__u32 parent;
	__u32 handle;
	__u32 cls;
	__u64 alloc_params;
	__u64 rights; /* NVOS21: paramsSize@24, status@28 */
	__u32 params_size;
	__u32 flags;
	__u32 status;
	__u32 pad;
};

/* Read the RM_ALLOC block at `arg` of `size` bytes into `p`; return its status field or -1. */
static __always_inline __s64 read_rm_alloc(struct nvos64 *p, __u64 arg, __u32 size)
{
	if (size == FIKIT_NVOS64_SIZE) {
		if (bpf_probe_read_user(p, FIKIT_NVOS64_SIZE, (void *)arg))
			return -1;
		return p->status;
	}
	if (size == FIKIT_NVOS21_SIZE) {
		if (bpf_probe_read_user(p, FIKIT_NVOS21_SIZE, (void *)arg))
			return -1;
		return p->rights >> 32;
	}
	return -1;
}

/* Return the GPU minor of the /dev/nvidia<N> that the caller's `fd` is, or -1. */
static __always_inline int gpu_minor_of_fd(int fd)
{
	__u32 rdev = fd_char_rdev(bpf_get_current_task_btf(), fd);
	int gpu = test_gpu(rdev);

	if (gpu >= 0)
		return gpu;
	if (rdev && rdev == cfg_test_rdev)
		return -1;
	if ((rdev >> 20) == cfg_nv_major && (rdev & 0xfffff) <= FIKIT_NV_MINOR_GPU_MAX)
		return rdev & 0xfffff;
	return -1;
}

/* Send a GPU_BIND event: (client, handle) was used through /dev/nvidia<minor>. */
static __always_inline void send_bind(const struct call *c, __u32 client, __u32 handle, __u32 minor)
{
	struct fikit_gpu_event *e = event_start(FIKIT_EV_GPU_BIND, c);

	if (!e)
		return;
	e->client = client;
	e->handle = handle;
	e->minor = minor;
	event_send(e);
}

static __always_inline void on_rm_alloc(const struct call *c)
{
	struct fikit_object_key key = { .pid = c->pid_tgid >> 32 };
	struct fikit_object obj = {};
	struct fikit_gpu_event *e;
	struct nvos64 p = {};
	__s64 status = read_rm_alloc(&p, c->arg, IOC_SIZE(c->cmd));

	if (status < 0)
		fikit_count(&fikit_counters, FIKIT_CNT_READ_FAIL);
	if (status != 0)
		return;
	obj.obj_kind = rm_class_kind(p.cls);
	if (obj.obj_kind == FIKIT_OBJ_NONE) {
		/* An untracked child allocated through a GPU's fd (libcuda's OS events) names its
		 * parent's GPU. Tracked ones carry the minor in their own event. */
		if (c->minor <= FIKIT_NV_MINOR_GPU_MAX)
			send_bind(c, p.root, p.parent, c->minor);
		return;
	}
	obj.rm_class = p.cls;
	if (obj.obj_kind == FIKIT_OBJ_VIDMEM &&
	    bpf_probe_read_user(&obj.bytes, sizeof(obj.bytes),
				(void *)(p.alloc_params + FIKIT_MEMORY_PARAMS_SIZE_OFFSET)))
		fikit_count(&fikit_counters, FIKIT_CNT_READ_FAIL);
	/* A client's own handle is its hRoot from now on. */
	key.client = obj.obj_kind == FIKIT_OBJ_CLIENT ? p.handle : p.root;
	key.handle = p.handle;
	if (bpf_map_update_elem(&fikit_objects, &key, &obj, BPF_ANY))
		fikit_count(&fikit_counters, FIKIT_CNT_DROP_OBJECTS);
	e = event_start(FIKIT_EV_RM_ALLOC, c);
	if (!e)
		return;
	e->obj_kind = obj.obj_kind;
	e->rm_class = obj.rm_class;
	e->client = key.client;
	e->parent = p.parent;
	e->handle = p.handle;
	e->bytes = obj.bytes;
	e->minor = c->minor;
	event_send(e);
}

/* RM_MAP_MEMORY (nv_ioctl_nvos33_parameters_with_fd, 56 B): hClient@0, hDevice@4, status@40,
 * fd@48, the /dev/nvidia<N> fd that the memory will be mmap()ed through. */
static __always_inline void on_map_memory(const struct call *c)
{
	struct {
		__u32 client;
		__u32 device;
		__u8 mid[32];
		__u32 status;
		__u32 flags;
		__s32 fd;
		__u32 pad;
	} p;
	int minor;

	if (IOC_SIZE(c->cmd) != sizeof(p))
		return;
	if (bpf_probe_read_user(&p, sizeof(p), (void *)c->arg)) {
		fikit_count(&fikit_counters, FIKIT_CNT_READ_FAIL);
		return;
	}
	if (p.status != 0)
		return;
	minor = gpu_minor_of_fd(p.fd);
	if (minor >= 0)
		send_bind(c, p.client, p.device, minor);
}

/* NV_ESC_ALLOC_OS_EVENT on a GPU's fd: { hClient, hDevice, fd, status } binds hDevice to it. */
static __always_inline void on_alloc_os_event(const struct call *c)
{
	struct {
		__u32 client;
		__u32 device;
		__u32 fd;
		__u32 status;
	} p;

	if (c->minor > FIKIT_NV_MINOR_GPU_MAX)
		return;
	if (bpf_probe_read_user(&p, sizeof(p), (void *)c->arg)) {
		fikit_count(&fikit_counters, FIKIT_CNT_READ_FAIL);
		return;
	}
	if (p.status == 0)
		send_bind(c, p.client, p.device, c->minor);
}

/* RM_FREE parameters (NVOS00). */
struct nvos00 {
	__u32 root;
	__u32 parent;
	__u32 handle;
	__u32 status;
};

static __always_inline void on_rm_free(const struct call *c)
{
	struct fikit_object_key key = { .pid = c->pid_tgid >> 32 };
	struct fikit_gpu_event *e;
	struct fikit_object *obj;
	struct nvos00 p;

	if (bpf_probe_read_user(&p, sizeof(p), (void *)c->arg)) {
		fikit_count(&fikit_counters, FIKIT_CNT_READ_FAIL);
		return;
	}
	if (p.status != 0)
		return;
	key.client = p.root;
	key.handle = p.handle;
	obj = bpf_map_lookup_elem(&fikit_objects, &key);
	if (!obj)
		return; /* not an object the observer tracks */
	e = event_start(FIKIT_EV_RM_FREE, c);
	if (e) {
		e->obj_kind = obj->obj_kind;
		e->rm_class = obj->rm_class;
		e->client = p.root;
		e->parent = p.parent;
		e->handle = p.handle;
		e->bytes = obj->bytes;
		event_send(e);
	}
	bpf_map_delete_elem(&fikit_objects, &key);
}

/* The head of UVM_MAP_EXTERNAL_ALLOCATION and UVM_FREE parameters. */
struct uvm_range {
	__u64 base;
	__u64 length;
	__u32 status; /* UVM_FREE only: the map's status follows a driver-sized array */
	__u32 pad;
};

static __always_inline void on_uvm_map(const struct call *c)
{
	struct fikit_mapping_key key = { .pid = c->pid_tgid >> 32 };
	struct fikit_gpu_event *e;
	struct uvm_range p;

	if (bpf_probe_read_user(&p, 16, (void *)c->arg)) {
		fikit_count(&fikit_counters, FIKIT_CNT_READ_FAIL);
		return;
	}
	key.base = p.base;
	if (bpf_map_update_elem(&fikit_uvm_maps, &key, &p.length, BPF_ANY))
		fikit_count(&fikit_counters, FIKIT_CNT_DROP_OBJECTS);
	e = event_start(FIKIT_EV_UVM_MAP, c);
	if (!e)
		return;
	e->addr = p.base;
	e->bytes = p.length;
	event_send(e);
}

static __always_inline void on_uvm_free(const struct call *c)
{
	struct fikit_mapping_key key = { .pid = c->pid_tgid >> 32 };
	struct fikit_gpu_event *e;
	struct uvm_range p;
	__u64 *length;

	if (bpf_probe_read_user(&p, sizeof(p), (void *)c->arg)) {
		fikit_count(&fikit_counters, FIKIT_CNT_READ_FAIL);
		return;
	}
	if (p.status != 0)
		return;
	key.base = p.base;
	length = bpf_map_lookup_elem(&fikit_uvm_maps, &key);
	if (!length)
		return; /* a managed or pageable range, not an external mapping */
	e = event_start(FIKIT_EV_UVM_FREE, c);
	if (e) {
		e->addr = p.base;
		e->bytes = *length;
		event_send(e);
	}
	bpf_map_delete_elem(&fikit_uvm_maps, &key);
}

/* UVM_CREATE_RANGE_GROUP and UVM_DESTROY_RANGE_GROUP: { u64 rangeGroupId; u32 rmStatus; }. */
static __always_inline void on_range_group(const struct call *c, __u32 kind)
{
	struct fikit_gpu_event *e;
	struct {
		__u64 id;
		__u32 status;
		__u32 pad;
	} p;

	if (bpf_probe_read_user(&p, sizeof(p), (void *)c->arg)) {
		fikit_count(&fikit_counters, FIKIT_CNT_READ_FAIL);
		return;
	}
	if (p.status != 0)
		return;
	e = event_start(kind, c);
	if (!e)
		return;
	e->addr = p.id;
	event_send(e);
}

/* Decode a successful call that changes the process's GPU state; ignore the rest. */
static __always_inline void decode(const struct call *c, __u32 driver)
{
	if (driver == FIKIT_DRIVER_NVIDIA) {
		switch (c->cmd & 0xff) {
		case FIKIT_NV_ESC_RM_ALLOC:
			on_rm_alloc(c);
			break;
		case FIKIT_NV_ESC_RM_FREE:
			on_rm_free(c);
			break;
		case FIKIT_NV_ESC_RM_MAP_MEMORY:
			on_map_memory(c);
			break;
		case FIKIT_NV_ESC_ALLOC_OS_EVENT:
			on_alloc_os_event(c);
			break;
		}
		return;
	}
	switch (c->cmd) {
	case FIKIT_UVM_MAP_EXTERNAL_ALLOCATION:
		on_uvm_map(c);
		break;
	case FIKIT_UVM_FREE:
		on_uvm_free(c);
		break;
	case FIKIT_UVM_CREATE_RANGE_GROUP:
		on_range_group(c, FIKIT_EV_STREAM_CREATE);
		break;
	case FIKIT_UVM_DESTROY_RANGE_GROUP:
		on_range_group(c, FIKIT_EV_STREAM_DESTROY);
		break;
	}
}

SEC("tracepoint/syscalls/sys_exit_ioctl")
int fikit_ioctl_out(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct inflight *in;
	struct call c;
	__u32 driver, code;
	bool failed, test;

	/* No storage: this thread never entered a watched ioctl. */
	in = bpf_task_storage_get(&fikit_inflight, task, 0, 0);
	if (!in || !in->active)
		return 0;
	in->active = 0;
	c.pid_tgid = bpf_get_current_pid_tgid();
	c.now = bpf_ktime_get_ns();
	c.dur = c.now - in->ts;
	c.arg = in->arg;
	c.cmd = in->cmd;
	c.minor = in->minor;
	driver = in->driver;
	test = in->test;
	failed = ctx->ret != 0;
	code = driver == FIKIT_DRIVER_NVIDIA ? c.cmd & 0xff : c.cmd;
	account(c.pid_tgid >> 32, driver, code, c.dur, failed);
	if (!failed || test)
		decode(&c, driver);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int fikit_proc_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fikit_gpu_event *e;
	struct call c = { .minor = FIKIT_NV_MINOR_NONE };
	__u32 pid;

	/* Only the last thread: `live` is decremented before this tracepoint fires. */
	if (BPF_CORE_READ(task, signal, live.counter) != 0)
		return 0;
	c.pid_tgid = bpf_get_current_pid_tgid();
	pid = c.pid_tgid >> 32;
	if (!bpf_map_lookup_elem(&fikit_procs, &pid))
		return 0; /* never used the driver */
	bpf_map_delete_elem(&fikit_procs, &pid);
	c.now = bpf_ktime_get_ns();
	e = event_start(FIKIT_EV_EXIT, &c);
	if (!e)
		return 0;
	e->exit_code = BPF_CORE_READ(task, exit_code);
	event_send(e);
	return 0;
}
