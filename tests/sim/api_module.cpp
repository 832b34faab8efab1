// Modules and functions. Module images are not read: a function is known by its name alone, and
// its name decides what it does on the simulated GPU (see api_launch.cpp).
#include <unistd.h>

#include <cstring>

#include "sim/sim_process.h"

using fikit::sim::KernelKind;
using fikit::sim::process;
using fikit::sim::Process;
using fikit::sim::valid;

namespace {

KernelKind kind_of(const char* name) {
  if (!strcmp(name, "spin")) return KernelKind::kSpin;
  if (!strcmp(name, "burn")) return KernelKind::kBurn;
  return KernelKind::kOther;
}

// The index of `name` in the process's kernel-name table (trace lines name kernels by index).
uint32_t intern_name(Process* p, const std::string& name) {
  std::lock_guard<std::mutex> l(p->names_mu);
  auto& names = p->kernel_names;
  for (uint32_t i = 0; i < names.size(); i++)
    if (names[i] == name) return i;
  names.push_back(name);
  return static_cast<uint32_t>(names.size() - 1);
}

}  // namespace

CUresult CUDAAPI cuModuleLoadData(CUmodule* module, const void* image) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!module || !image) return CUDA_ERROR_INVALID_VALUE;
  if (!valid(fikit::sim::current_ctx())) return CUDA_ERROR_INVALID_CONTEXT;
  *module = fikit::sim::hand_out(p, std::make_unique<CUmod_st>());
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleLoad(CUmodule* module, const char* fname) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!module || !fname) return CUDA_ERROR_INVALID_VALUE;
  if (!valid(fikit::sim::current_ctx())) return CUDA_ERROR_INVALID_CONTEXT;
  if (access(fname, R_OK) != 0) return CUDA_ERROR_FILE_NOT_FOUND;
  *module = fikit::sim::hand_out(p, std::make_unique<CUmod_st>());
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleUnload(CUmodule module) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!valid(module)) return CUDA_ERROR_INVALID_HANDLE;
  std::lock_guard<std::mutex> l(p->mu);
  for (auto& f : module->funcs) p->handles.remove(f.get());
  fikit::sim::retire(p, module);
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuModuleGetFunction(CUfunction* hfunc, CUmodule module, const char* name) {
  Process* p = process();
  if (!p) return CUDA_ERROR_NOT_INITIALIZED;
  if (!hfunc || !name) return CUDA_ERROR_INVALID_VALUE;
  if (!valid(module)) return CUDA_ERROR_INVALID_HANDLE;
  std::lock_guard<std::mutex> l(p->mu);
  for (auto& f : module->funcs) {
    if (f->name == name) {
      *hfunc = f.get();
      return CUDA_SUCCESS;
    }
  }
  auto f = std::make_unique<CUfunc_st>();
  f->name = name;
  f->kind = kind_of(name);
  f->name_index = intern_name(p, f->name);
  p->handles.add(f.get(), CUfunc_st::kKind);  // owned by the module
  *hfunc = f.get();
  module->funcs.push_back(std::move(f));
  return CUDA_SUCCESS;
}

CUresult CUDAAPI cuFuncGetName(const char** name, CUfunction hfunc) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  if (!name) return CUDA_ERROR_INVALID_VALUE;
  if (!valid(hfunc)) return CUDA_ERROR_INVALID_HANDLE;
  *name = hfunc->name.c_str();
  return CUDA_SUCCESS;
}

// Plausible values for a small kernel; 0 for the attributes the sim has no opinion on.
CUresult CUDAAPI cuFuncGetAttribute(int* pi, CUfunction_attribute attrib, CUfunction hfunc) {
  if (!process()) return CUDA_ERROR_NOT_INITIALIZED;
  if (!pi || attrib < 0 || attrib >= CU_FUNC_ATTRIBUTE_MAX) return CUDA_ERROR_INVALID_VALUE;
  if (!valid(hfunc)) return CUDA_ERROR_INVALID_HANDLE;
  switch (attrib) {
    case CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK:
      *pi = 1024;
      break;
    case CU_FUNC_ATTRIBUTE_NUM_REGS:
      *pi = 32;
      break;
    case CU_FUNC_ATTRIBUTE_PTX_VERSION:
    case CU_FUNC_ATTRIBUTE_BINARY_VERSION:
      *pi = 90;
      break;
    default:
      *pi = 0;
      break;
  }
  return CUDA_SUCCESS;
}
