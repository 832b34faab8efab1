# fikit_bpf_object(<name> <source.bpf.c> [<headers>...])
#
# Compile a CO-RE BPF program with clang (-target bpf) and generate its libbpf skeleton with
# `bpftool gen skeleton` at build time (skeletons are never committed). Defines:
#   <name>_skel  INTERFACE target: include directories for <name>.skel.h and the shared <name>.h,
#                links fikit_libbpf, and builds the skeleton first.
# The skeleton's C names are <name>_bpf (<name>_bpf__open(), ...). After libbpf-bootstrap's
# FindBpfObject.cmake.

find_program(FIKIT_BPF_CLANG NAMES clang clang-19 clang-18 clang-17 clang-16 clang-15 clang-14)
find_program(FIKIT_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin /usr/local/sbin)
# Optional: drops DWARF (BTF stays), which makes the skeletons' embedded objects much smaller.
find_program(FIKIT_LLVM_STRIP NAMES llvm-strip llvm-strip-19 llvm-strip-18 llvm-strip-17
             llvm-strip-16 llvm-strip-15 llvm-strip-14)
if(NOT FIKIT_BPF_CLANG OR NOT FIKIT_BPFTOOL)
  message(FATAL_ERROR "FIKIT_BPF=ON needs clang and bpftool (Debian: apt install clang bpftool), "
                      "or configure with -DFIKIT_BPF=OFF")
endif()

# Architecture name for bpf_tracing.h's PT_REGS macros and the checked-in vmlinux.h directory.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(FIKIT_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(FIKIT_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "no BPF target architecture for ${CMAKE_SYSTEM_PROCESSOR}")
endif()

set(FIKIT_BPF_INCLUDE_DIR ${CMAKE_SOURCE_DIR}/bpf/include)
set(FIKIT_BPF_VMLINUX_DIR ${FIKIT_BPF_INCLUDE_DIR}/vmlinux/${FIKIT_BPF_ARCH})
if(NOT EXISTS ${FIKIT_BPF_VMLINUX_DIR}/vmlinux.h)
  message(FATAL_ERROR "no ${FIKIT_BPF_VMLINUX_DIR}/vmlinux.h: generate it on a ${FIKIT_BPF_ARCH} "
                      "machine with `bpftool btf dump file /sys/kernel/btf/vmlinux format c`")
endif()

function(fikit_bpf_object name src)
  set(src_path ${CMAKE_CURRENT_SOURCE_DIR}/${src})
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  list(TRANSFORM ARGN PREPEND ${CMAKE_CURRENT_SOURCE_DIR}/ OUTPUT_VARIABLE hdrs)
  file(GLOB common_hdrs ${FIKIT_BPF_INCLUDE_DIR}/*.h)
  set(strip_cmd)
  if(FIKIT_LLVM_STRIP)
    set(strip_cmd COMMAND ${FIKIT_LLVM_STRIP} -g ${obj})
  endif()

  add_custom_command(OUTPUT ${obj}
    COMMAND ${FIKIT_BPF_CLANG} -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_${FIKIT_BPF_ARCH}
            -I${FIKIT_BPF_INCLUDE_DIR} -I${FIKIT_BPF_VMLINUX_DIR} -I${CMAKE_CURRENT_SOURCE_DIR}
            -c ${src_path} -o ${obj}
    ${strip_cmd}
    DEPENDS ${src_path} ${hdrs} ${common_hdrs}
    COMMENT "Compiling BPF program ${src}"
    VERBATIM)
  # bpftool writes to stdout: go through a temporary file so a failure leaves no half skeleton.
  add_custom_command(OUTPUT ${skel}
    COMMAND ${FIKIT_BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "Generating BPF skeleton ${name}.skel.h")
  add_custom_target(${name}_skel_gen DEPENDS ${skel})

  add_library(${name}_skel INTERFACE)
  add_dependencies(${name}_skel ${name}_skel_gen)
  target_include_directories(${name}_skel INTERFACE ${CMAKE_CURRENT_BINARY_DIR}
                             ${CMAKE_CURRENT_SOURCE_DIR} ${FIKIT_BPF_INCLUDE_DIR})
  target_link_libraries(${name}_skel INTERFACE fikit_libbpf)
endfunction()
