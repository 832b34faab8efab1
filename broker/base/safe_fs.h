// Files the broker writes, often as root, in directories given on its command line: opened so that
// nobody else can redirect them. A directory is reached component by component from / with
// O_NOFOLLOW (a symlink on the way is followed only if root or the broker's uid owns it), every
// directory on the way must be owned by root or the broker's uid and not writable by others
// (sticky ones like /tmp excepted), and the directory itself must be owned by the broker's uid and
// writable by it alone. Files in it are opened relative to its fd with O_NOFOLLOW, and their modes
// are set on the fd, never by path.
#pragma once

#include <fikit/result.h>
#include <sys/types.h>

#include <string>

namespace fikit::broker {

// A directory fd, closed on destruction.
class DirFd {
 public:
  DirFd() = default;
  explicit DirFd(int fd) : fd_(fd) {}
  ~DirFd();
  DirFd(DirFd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  DirFd& operator=(DirFd&& o) noexcept;
  DirFd(const DirFd&) = delete;
  DirFd& operator=(const DirFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_ = -1;
};

struct OwnedDirOptions {
  bool create = true;  // create what is missing (parents 0755, the directory itself `mode`)
  mode_t mode = 0755;  // of the directory, when it is created here
  // What to say when the directory cannot be created for lack of permission, e.g. "run as root,
  // or give --run-dir/--socket in a directory you own" (the message starts "cannot create DIR: ").
  std::string hint;
};

// Open absolute directory `path` as described above. A refusal is kPermissionDenied with a message
// that names the directory and why ("... is writable by others (mode 0777) ...").
Result<DirFd> open_owned_dir(const std::string& path, const OwnedDirOptions& opt);

// Open (creating with `mode` if missing) the regular file `name` in `dir` with O_NOFOLLOW; it must
// be owned by the broker's uid and have one link. `flags` adds to O_CREAT|O_NOFOLLOW|O_CLOEXEC
// (e.g. O_RDWR, O_WRONLY|O_APPEND). The mode is then set with fchmod. Return the fd or -errno
// (-ELOOP for a symlink, -EPERM for a file of another owner or with other links).
int open_owned_file(const DirFd& dir, const std::string& name, int flags, mode_t mode);

// Write `text` to `name` in `dir` atomically: a new temporary file (O_EXCL, O_NOFOLLOW, `mode`
// set with fchmod), fsync, renameat over `name` (which replaces a symlink there, never follows
// it). Return false with *err = "failed to write <dir>/<name>: <why>".
bool write_file_atomic(const DirFd& dir, const std::string& dir_path, const std::string& name,
                       const std::string& text, mode_t mode, std::string* err);

// Read `name` in `dir` (O_NOFOLLOW). Return 0 or -errno (-ENOENT if there is none).
int read_file_at(const DirFd& dir, const std::string& name, std::string* out);
// Read `path`, refusing a symlink as its last component (-ELOOP). Return 0 or -errno.
int read_file_nofollow(const std::string& path, std::string* out);

// "dir" and "base" of a path ("/a/b" -> "/a", "b"; "b" -> ".", "b"; "/b" -> "/", "b").
std::string dir_of(const std::string& path);
std::string base_of(const std::string& path);

}  // namespace fikit::broker
