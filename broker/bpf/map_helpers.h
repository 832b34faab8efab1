// Reading BPF maps from user space: every key of a hash map, and the sum of a per-CPU slot. Plain
// libbpf calls on a map fd; a map that cannot be read reads as empty (or 0), since the observer's
// figures are best effort and its callers report the losses they can see.
#pragma once

#include <bpf/bpf.h>

#include <cstdint>

namespace fikit::bpf {

// Call fn(key) for every key of the hash map `map_fd` whose keys are of type K, in the map's
// order. fn must not delete keys (collect them and delete after the walk).
template <class K, class Fn>
void map_for_each_key(int map_fd, Fn&& fn) {
  K key{}, next{};
  for (bool first = true; bpf_map_get_next_key(map_fd, first ? nullptr : &key, &next) == 0;
       first = false) {
    key = next;
    fn(key);
  }
}

// The sum of the per-CPU __u64 values of slot `key` of a per-CPU array (0 if it cannot be read).
uint64_t percpu_sum(int map_fd, uint32_t key);

}  // namespace fikit::bpf
