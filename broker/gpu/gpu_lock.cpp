#include "gpu/gpu_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/safe_fs.h"

namespace fikit::broker {

GpuLocks::~GpuLocks() {
  for (int fd : fds_) close(fd);
}

Status GpuLocks::lock(const std::string& run_dir, const std::vector<GpuIdentity>& gpus,
                      const std::string& socket) {
  Result<DirFd> dir = open_owned_dir(run_dir, {.create = true, .mode = 0755, .hint = ""});
  if (!dir.ok()) return dir.status();
  std::vector<int> taken;
  auto give_back = [&taken] {
    for (int fd : taken) close(fd);
  };
  for (const GpuIdentity& g : gpus) {
    if (g.uuid.empty()) continue;
    std::string name = "gpu-" + g.uuid + ".lock";
    int fd = open_owned_file(*dir, name, O_RDWR, 0644);
    if (fd < 0) {
      give_back();
      return Status::from_errno(-fd, "open the GPU lock " + run_dir + "/" + name);
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      char holder[512] = {};
      ssize_t n = pread(fd, holder, sizeof(holder) - 1, 0);
      close(fd);
      give_back();
      if (err != EWOULDBLOCK) return Status::from_errno(err, "lock " + run_dir + "/" + name);
      std::string who = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "";
      while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
      size_t space = who.find(' ');
      std::string pid = space == std::string::npos ? who : who.substr(0, space);
      std::string sock = space == std::string::npos ? "?" : who.substr(space + 1);
      return Status(StatusCode::kAlreadyExists,
                    "GPU " + g.uuid + " is already scheduled by the fikit-broker with pid " + pid +
                        " on socket " + sock + " (lock " + run_dir + "/" + name +
                        "): one broker per GPU; stop that one first (fikit-broker stop --socket " +
                        sock + ")");
    }
    std::string text = std::to_string(getpid()) + " " + socket + "\n";
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text.data(), text.size(), 0) < 0) {
      int err = errno;
      close(fd);
      give_back();
      return Status::from_errno(err, "write the GPU lock " + run_dir + "/" + name);
    }
    taken.push_back(fd);
  }
  fds_.insert(fds_.end(), taken.begin(), taken.end());
  return Status();
}

}  // namespace fikit::broker
