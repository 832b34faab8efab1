#include "map_helpers.h"

#include <bpf/libbpf.h>

#include <vector>

namespace fikit::bpf {

uint64_t percpu_sum(int map_fd, uint32_t key) {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return 0;
  std::vector<__u64> values(static_cast<size_t>(ncpu));
  __u32 k = key;
  if (bpf_map_lookup_elem(map_fd, &k, values.data())) return 0;
  uint64_t sum = 0;
  for (__u64 v : values) sum += v;
  return sum;
}

}  // namespace fikit::bpf
