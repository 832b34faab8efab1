# Find what fikit builds against. Libraries that must run on machines without Debian's packages (the GPU
# machine) are linked statically: liburing, libbpf, libelf, zlib.

find_package(Threads REQUIRED)
find_package(CLI11 2.1 CONFIG REQUIRED)  # command lines and config files, header-only (libcli11-dev)

# CUDA driver API header: the toolkit's cuda.h, wherever the machine has it.
find_path(CUDA_DRIVER_INCLUDE_DIR cuda.h
  HINTS ENV CUDA_HOME ENV CUDA_PATH /usr/local/cuda /opt/cuda
  PATH_SUFFIXES include)
if(NOT CUDA_DRIVER_INCLUDE_DIR)
  message(FATAL_ERROR "cuda.h not found: install the CUDA toolkit or set CUDA_HOME")
endif()
add_library(fikit_cuda_headers INTERFACE)
target_include_directories(fikit_cuda_headers SYSTEM INTERFACE ${CUDA_DRIVER_INCLUDE_DIR})

# The stub libcuda.so (SONAME libcuda.so.1) of the toolkit that provided cuda.h.
get_filename_component(fikit_cuda_root ${CUDA_DRIVER_INCLUDE_DIR} DIRECTORY)
find_library(FIKIT_CUDA_STUB NAMES cuda NO_DEFAULT_PATH
  PATHS ${fikit_cuda_root} ${fikit_cuda_root}/targets/x86_64-linux ${fikit_cuda_root}/targets/sbsa-linux
  PATH_SUFFIXES lib64/stubs lib/stubs)

# Link a driver-API program so that LD_LIBRARY_PATH picks the driver at run time (the real one or the
# simulated one): against the toolkit's stub, else the simulated driver (same SONAME), no build RPATH.
function(fikit_link_cuda_driver target)
  target_link_libraries(${target} PRIVATE fikit_cuda_headers)
  if(FIKIT_CUDA_STUB)
    target_link_libraries(${target} PRIVATE ${FIKIT_CUDA_STUB})
  else()
    message(STATUS "CUDA stub library not found: ${target} links against the simulated driver")
    target_link_libraries(${target} PRIVATE fikit_simcuda)
  endif()
  set_target_properties(${target} PROPERTIES SKIP_BUILD_RPATH ON)
endfunction()

# Return in VAR the static archive lib<name>.a if present, else the shared library.
function(fikit_find_static VAR name)
  find_library(${VAR}_PATH NAMES lib${name}.a ${name})
  if(NOT ${VAR}_PATH)
    message(FATAL_ERROR "lib${name} not found: install its Debian -dev package (see README.md)")
  endif()
  set(${VAR} ${${VAR}_PATH} PARENT_SCOPE)
endfunction()

fikit_find_static(URING_LIB uring)
find_path(URING_INCLUDE_DIR liburing.h REQUIRED)
add_library(fikit_uring INTERFACE)
target_link_libraries(fikit_uring INTERFACE ${URING_LIB})
target_include_directories(fikit_uring INTERFACE ${URING_INCLUDE_DIR})

if(FIKIT_BPF)
  fikit_find_static(BPF_LIB bpf)
  fikit_find_static(ELF_LIB elf)
  fikit_find_static(Z_LIB z)
  add_library(fikit_libbpf INTERFACE)
  target_link_libraries(fikit_libbpf INTERFACE ${BPF_LIB} ${ELF_LIB} ${Z_LIB})
endif()

find_package(GTest REQUIRED)
if(FIKIT_BENCHMARKS)
  find_package(benchmark QUIET)
  if(NOT benchmark_FOUND)
    message(WARNING "Google Benchmark not found: micro-benchmarks are not built")
    set(FIKIT_BENCHMARKS OFF)
  endif()
endif()
