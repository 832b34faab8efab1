#include "accounting.h"

#include <algorithm>

namespace fikit::bpf {

GpuAccounting::Process& GpuAccounting::process_for(const GpuEvent& e) {
  auto it = procs_.find(e.pid);
  if (it != procs_.end() && it->second.usage.exited && e.kind != GpuEventKind::kProcessExit) {
    forget(e.pid);  // the pid was reused by a new process
    it = procs_.end();
  }
  if (it == procs_.end()) {
    it = procs_.emplace(e.pid, Process{}).first;
    it->second.usage.pid = e.pid;
    it->second.usage.first_ns = e.ts_ns;
  }
  Process& p = it->second;
  if (e.comm[0]) p.usage.comm = e.comm;
  p.usage.last_ns = std::max(p.usage.last_ns, e.ts_ns);
  return p;
}

void GpuAccounting::count_object(ProcessUsage& u, const Object& o, int delta) {
  const uint32_t created = delta > 0 ? 1 : 0;
  switch (o.kind) {
    case ObjectKind::kClient:
      u.clients += delta;
      u.clients_created += created;
      break;
    case ObjectKind::kContext:
      u.contexts += delta;
      u.contexts_created += created;
      break;
    case ObjectKind::kChannel:
      u.channels += delta;
      u.channels_created += created;
      break;
    case ObjectKind::kVidmem:
      u.device_bytes = delta > 0 ? u.device_bytes + o.bytes : u.device_bytes - o.bytes;
      u.peak_device_bytes = std::max(u.peak_device_bytes, u.device_bytes);
      break;
    default:
      break;
  }
}

void GpuAccounting::add_object(Process& p, const GpuEvent& e) {
  const ObjectKey key{e.client, e.handle};
  if (p.objects.count(key)) remove_object(p, key, nullptr);  // handle reused after a lost free
  const Object o{e.object, e.parent, e.bytes, kUnbound};
  p.objects.emplace(key, o);
  count_object(p.usage, o, +1);
  if (e.minor <= kMinorGpuMax) bind(p, key, e.minor);  // allocated through a GPU's file
}

GpuAccounting::Object* GpuAccounting::device_of(Process& p, ObjectKey key) {
  // Up the parent chain (RM objects are a tree per client) to the NV01_DEVICE_0 object. Bounded:
  // RM trees are a few levels deep, and a corrupt chain must not loop.
  for (int depth = 0; depth < 16; depth++) {
    auto it = p.objects.find(key);
    if (it == p.objects.end()) return nullptr;  // not tracked: the chain is broken
    if (it->second.kind == ObjectKind::kDevice) return &it->second;
    if (it->second.kind == ObjectKind::kClient || it->second.parent == key.second) return nullptr;
    key.second = it->second.parent;
  }
  return nullptr;
}

void GpuAccounting::bind(Process& p, ObjectKey key, uint32_t minor) {
  Object* dev = device_of(p, key);
  if (!dev || dev->minor == kConflict) return;
  const int32_t m = static_cast<int32_t>(minor);
  dev->minor = dev->minor == kUnbound || dev->minor == m ? m : kConflict;
}

void GpuAccounting::split_by_gpu(Process& p) {
  std::map<int32_t, GpuShare> by_minor;
  for (const auto& [key, o] : p.objects) {
    if (o.kind != ObjectKind::kContext && o.kind != ObjectKind::kVidmem) continue;
    const Object* dev = device_of(p, key);
    const int32_t minor = dev && dev->minor >= 0 ? dev->minor : GpuShare::kUnattributed;
    GpuShare& s = by_minor[minor];
    s.minor = minor;
    if (o.kind == ObjectKind::kContext) s.contexts++;
    if (o.kind == ObjectKind::kVidmem) s.device_bytes += o.bytes;
  }
  p.usage.gpus.clear();
  for (const auto& [minor, s] : by_minor)
    if (minor >= 0) p.usage.gpus.push_back(s);
  if (auto it = by_minor.find(GpuShare::kUnattributed); it != by_minor.end())
    p.usage.gpus.push_back(it->second);
}

void GpuAccounting::remove_object(Process& p, ObjectKey key, StaleKeys* stale) {
  // Collect the object and its descendants (same client, by parent handle): RM frees a subtree.
  std::vector<ObjectKey> doomed{key};
  for (size_t i = 0; i < doomed.size(); i++) {
    for (const auto& [k, o] : p.objects)
      if (k.first == key.first && o.parent == doomed[i].second && k != doomed[i] &&
          std::find(doomed.begin(), doomed.end(), k) == doomed.end())
        doomed.push_back(k);
  }
  // A freed client takes every object of that client, whatever its parent.
  auto client = p.objects.find(key);
  if (client != p.objects.end() && client->second.kind == ObjectKind::kClient)
    for (const auto& [k, o] : p.objects)
      if (k.first == key.first && std::find(doomed.begin(), doomed.end(), k) == doomed.end())
        doomed.push_back(k);
  for (const ObjectKey& k : doomed) {
    auto it = p.objects.find(k);
    if (it == p.objects.end()) continue;
    count_object(p.usage, it->second, -1);
    p.objects.erase(it);
    if (stale && k != key) stale->objects.push_back(k);  // BPF already dropped `key` itself
  }
}

void GpuAccounting::on_exit(Process& p, const GpuEvent& e, StaleKeys* stale) {
  // The kernel releases everything when the process's files close.
  for (const auto& [k, o] : p.objects) stale->objects.push_back(k);
  for (const auto& [base, len] : p.mappings) stale->mappings.push_back(base);
  p.objects.clear();
  p.mappings.clear();
  p.streams.clear();
  ProcessUsage& u = p.usage;
  u.clients = u.contexts = u.channels = u.streams = 0;
  u.device_bytes = u.mapped_bytes = 0;
  if (!u.exited) exited_.push_back(u.pid);
  u.exited = true;
  u.exit_status = e.exit_status;
  u.exit_ns = e.ts_ns;
  while (exited_.size() > kMaxExited) forget(exited_.front());
}

StaleKeys GpuAccounting::apply(const GpuEvent& e) {
  StaleKeys stale;
  Process& p = process_for(e);
  ProcessUsage& u = p.usage;
  switch (e.kind) {
    case GpuEventKind::kGpuClient:
    case GpuEventKind::kDeviceAlloc:
    case GpuEventKind::kContextCreate:
    case GpuEventKind::kChannelCreate:
    case GpuEventKind::kMemAlloc:
      add_object(p, e);
      break;
    case GpuEventKind::kClientFree:
    case GpuEventKind::kDeviceFree:
    case GpuEventKind::kContextDestroy:
    case GpuEventKind::kChannelDestroy:
    case GpuEventKind::kMemFree:
      remove_object(p, {e.client, e.handle}, &stale);
      break;
    case GpuEventKind::kMemMap: {
      auto [it, fresh] = p.mappings.try_emplace(e.addr, e.bytes);
      if (!fresh) {  // mapped again at the same base: replace
        u.mapped_bytes -= it->second;
        it->second = e.bytes;
      }
      u.mapped_bytes += e.bytes;
      u.peak_mapped_bytes = std::max(u.peak_mapped_bytes, u.mapped_bytes);
      break;
    }
    case GpuEventKind::kMemUnmap: {
      auto it = p.mappings.find(e.addr);
      if (it != p.mappings.end()) {
        u.mapped_bytes -= it->second;
        p.mappings.erase(it);
      }
      break;
    }
    case GpuEventKind::kStreamCreate:
      if (p.streams.insert(e.addr).second) u.streams_created++;
      break;
    case GpuEventKind::kStreamDestroy:
      p.streams.erase(e.addr);
      break;
    case GpuEventKind::kProcessExit:
      on_exit(p, e, &stale);
      break;
    case GpuEventKind::kGpuBind:
      if (e.minor <= kMinorGpuMax) bind(p, {e.client, e.handle}, e.minor);
      break;
  }
  u.streams = static_cast<uint32_t>(p.streams.size());
  if (e.kind != GpuEventKind::kStreamCreate && e.kind != GpuEventKind::kStreamDestroy &&
      e.kind != GpuEventKind::kMemMap && e.kind != GpuEventKind::kMemUnmap)
    split_by_gpu(p);
  return stale;
}

void GpuAccounting::set_final(pid_t pid, std::vector<IoctlStat> ioctls,
                              std::vector<LaunchCount> launches) {
  auto it = procs_.find(pid);
  if (it == procs_.end()) return;
  it->second.usage.ioctls = std::move(ioctls);
  it->second.usage.launches = std::move(launches);
}

const ProcessUsage* GpuAccounting::find(pid_t pid) const {
  auto it = procs_.find(pid);
  return it == procs_.end() ? nullptr : &it->second.usage;
}

std::vector<ProcessUsage> GpuAccounting::processes() const {
  std::vector<ProcessUsage> out;
  out.reserve(procs_.size());
  for (const auto& [pid, p] : procs_) out.push_back(p.usage);
  return out;
}

std::vector<pid_t> GpuAccounting::live_pids() const {
  std::vector<pid_t> out;
  for (const auto& [pid, p] : procs_)
    if (!p.usage.exited) out.push_back(pid);
  return out;
}

void GpuAccounting::forget(pid_t pid) {
  procs_.erase(pid);
  auto it = std::find(exited_.begin(), exited_.end(), pid);
  if (it != exited_.end()) exited_.erase(it);
}

}  // namespace fikit::bpf
