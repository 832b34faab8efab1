// One file descriptor sent with a message on an AF_UNIX socket (SCM_RIGHTS): how the broker hands
// a tenant its segment (RegisterReply), so that the segment needs no name anyone could pre-create,
// open or replace. Allocation-free and noexcept: the client library uses it.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

namespace fikit {

// Send the `len` bytes of `buf` as one message with `fd` attached (none if fd < 0). Return the
// bytes sent or -errno.
inline ssize_t fd__send(int sock, const void* buf, size_t len, int fd) noexcept {
  iovec iov{const_cast<void*>(buf), len};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  return n >= 0 ? n : -errno;
}

// Receive one message into `buf` (cap bytes). *fd_out gets the descriptor sent with it (close-on-
// exec), or -1 if there is none; any further descriptors are closed. Return the bytes received
// (0 at EOF) or -errno.
inline ssize_t fd__recv(int sock, void* buf, size_t cap, int* fd_out) noexcept {
  *fd_out = -1;
  iovec iov{buf, cap};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return -errno;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (*fd_out < 0)
        *fd_out = fd;
      else
        close(fd);
    }
  }
  return n;
}

}  // namespace fikit
