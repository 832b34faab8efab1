// For the broker's unit tests: a tenant's segment in anonymous memory, described as the control
// thread would.
#pragma once

#include <fikit/abi.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "sched/tenant.h"

namespace fikit::broker {

// The description keeps the mapping: a test may hand it to a scheduler that outlives the struct.
struct t_Segment {
  std::shared_ptr<TenantDesc> desc;
  Segment* seg = nullptr;

  t_Segment(uint32_t id, uint32_t priority, const std::string& name = "") {
    void* p =
        mmap(nullptr, sizeof(Segment), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    EXPECT_NE(p, MAP_FAILED);
    seg = static_cast<Segment*>(p);
    segment_init(seg, id, getpid(), priority, "t");
    desc = std::make_shared<TenantDesc>();
    desc->id = id;
    desc->pid = getpid();
    desc->priority = priority;
    desc->name = name.empty() ? "tenant-" + std::to_string(id) : name;
    desc->seg = seg;
    desc->keep = std::shared_ptr<void>(p, [](void* q) { munmap(q, sizeof(Segment)); });
  }
};

}  // namespace fikit::broker
