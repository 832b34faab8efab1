#include "base/safe_fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>

namespace fikit::broker {
namespace {

constexpr int kMaxSymlinks = 32;

std::string mode_text(mode_t m) {
  char buf[16];
  snprintf(buf, sizeof(buf), "%04o", static_cast<unsigned>(m & 07777));
  return buf;
}

Status refuse(const std::string& dir, const std::string& why) {
  return Status(StatusCode::kPermissionDenied,
                "refusing to use " + dir + ": " + why +
                    ", so another user could redirect what the broker writes there; use a "
                    "directory that only the broker's user owns and can write");
}

// Split an absolute path into its components, front first.
void push_components(const std::string& path, std::deque<std::string>* out) {
  std::deque<std::string> parts;
  size_t i = 0;
  while (i < path.size()) {
    size_t j = path.find('/', i);
    if (j == std::string::npos) j = path.size();
    if (j > i) parts.push_back(path.substr(i, j - i));
    i = j + 1;
  }
  out->insert(out->begin(), parts.begin(), parts.end());
}

// Check a directory on the way (not the last one): root or our uid owns it, and nobody else may
// write to it unless it is sticky (then others cannot replace what we own in it).
Status check_ancestor(const struct stat& st, const std::string& where) {
  uid_t me = geteuid();
  if (st.st_uid != 0 && st.st_uid != me)
    return refuse(where, "it is owned by uid " + std::to_string(st.st_uid));
  if ((st.st_mode & 022) != 0 && (st.st_mode & S_ISVTX) == 0)
    return refuse(where, "it is writable by others (mode " + mode_text(st.st_mode) + ")");
  return Status();
}

Status check_final(const struct stat& st, const std::string& where) {
  if (st.st_uid != geteuid())
    return refuse(where, "it is owned by uid " + std::to_string(st.st_uid) + ", not by uid " +
                             std::to_string(geteuid()) + " (the broker's)");
  if ((st.st_mode & 022) != 0)
    return refuse(where, "it is writable by others (mode " + mode_text(st.st_mode) + ")");
  return Status();
}

std::string join(const std::string& a, const std::string& b) {
  return a == "/" ? "/" + b : a + "/" + b;
}

}  // namespace

DirFd::~DirFd() {
  if (fd_ >= 0) close(fd_);
}

DirFd& DirFd::operator=(DirFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

std::string dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Result<DirFd> open_owned_dir(const std::string& path, const OwnedDirOptions& opt) {
  if (path.empty() || path[0] != '/')
    return Status(StatusCode::kInvalidArgument, "directory '" + path + "' is not absolute");
  std::deque<std::string> todo;
  push_components(path, &todo);
  DirFd dir(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir.get() < 0) return Status::from_errno(errno, "open /");
  std::string where = "/";
  int links = 0;
  while (!todo.empty()) {
    std::string name = todo.front();
    todo.pop_front();
    if (name == ".") continue;
    bool last = todo.empty();
    std::string next = name == ".." ? dir_of(where) : join(where, name);
    struct stat st;
    bool created = false;
    if (fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT || !opt.create) return Status::from_errno(errno, "open " + next);
      if (mkdirat(dir.get(), name.c_str(), last ? opt.mode : 0755) != 0 && errno != EEXIST) {
        int err = errno;
        if ((err == EACCES || err == EPERM || err == EROFS) && !opt.hint.empty())
          return Status(StatusCode::kPermissionDenied,
                        "cannot create " + next + ": " + opt.hint + " (" + strerror(err) + ")");
        return Status::from_errno(err, "create directory " + next);
      }
      created = true;
      if (fstatat(dir.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
        return Status::from_errno(errno, "open " + next);
    }
    if (S_ISLNK(st.st_mode)) {
      // Follow a link only if a user we trust made it (its directory passed the check already).
      if (st.st_uid != 0 && st.st_uid != geteuid())
        return refuse(next, "it is a symlink owned by uid " + std::to_string(st.st_uid));
      if (++links > kMaxSymlinks) return Status::from_errno(ELOOP, "open " + path);
      char target[4096];
      ssize_t n = readlinkat(dir.get(), name.c_str(), target, sizeof(target) - 1);
      if (n <= 0) return Status::from_errno(n < 0 ? errno : EINVAL, "read the link " + next);
      std::string t(target, static_cast<size_t>(n));
      if (t[0] == '/') {
        dir = DirFd(open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        where = "/";
      }
      push_components(t, &todo);
      continue;
    }
    // O_NOFOLLOW: a symlink swapped in since the fstatat fails here rather than being followed.
    DirFd sub(openat(dir.get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (sub.get() < 0) return Status::from_errno(errno, "open directory " + next);
    if (fstat(sub.get(), &st) != 0) return Status::from_errno(errno, "stat " + next);
    // What we created gets its mode on the fd: mkdir's mode went through the umask.
    if (created && fchmod(sub.get(), last ? opt.mode : 0755) != 0)
      return Status::from_errno(errno, "set the mode of " + next);
    if (created) st.st_mode = (st.st_mode & ~07777) | (last ? opt.mode : 0755);
    Status s = last ? check_final(st, next) : check_ancestor(st, next);
    if (!s.ok()) return s;
    dir = std::move(sub);
    where = next;
  }
  if (where == "/") {
    struct stat st;
    if (fstat(dir.get(), &st) != 0) return Status::from_errno(errno, "stat /");
    if (Status s = check_final(st, "/"); !s.ok()) return s;
  }
  return dir;
}

int open_owned_file(const DirFd& dir, const std::string& name, int flags, mode_t mode) {
  int fd = openat(dir.get(), name.c_str(), flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) return -errno;
  struct stat st;
  int err = 0;
  if (fstat(fd, &st) != 0)
    err = -errno;
  else if (!S_ISREG(st.st_mode))
    err = -EINVAL;
  else if (st.st_uid != geteuid() || st.st_nlink != 1)
    err = -EPERM;  // another user's file, or a hard link to one elsewhere
  else if ((st.st_mode & 07777) != mode && fchmod(fd, mode) != 0)
    err = -errno;
  if (err < 0) {
    close(fd);
    return err;
  }
  return fd;
}

bool write_file_atomic(const DirFd& dir, const std::string& dir_path, const std::string& name,
                       const std::string& text, mode_t mode, std::string* err) {
  std::string path = join(dir_path, name);
  std::string tmp = "." + name + ".tmp." + std::to_string(getpid());
  unlinkat(dir.get(), tmp.c_str(), 0);  // a leftover of a writer of our pid that died
  int fd =
      openat(dir.get(), tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    *err = "failed to write " + join(dir_path, tmp) + ": " + strerror(errno);
    return false;
  }
  int saved = 0;
  if (fchmod(fd, mode) != 0) saved = errno;
  size_t done = 0;
  while (saved == 0 && done < text.size()) {
    ssize_t w = write(fd, text.data() + done, text.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      saved = w < 0 ? errno : EIO;
      break;
    }
    done += static_cast<size_t>(w);
  }
  if (saved == 0 && fsync(fd) != 0) saved = errno;
  close(fd);
  if (saved == 0 && renameat(dir.get(), tmp.c_str(), dir.get(), name.c_str()) != 0) saved = errno;
  if (saved != 0) {
    unlinkat(dir.get(), tmp.c_str(), 0);
    *err = "failed to write " + path + ": " + strerror(saved);
    return false;
  }
  return true;
}

namespace {

int read_fd(int fd, std::string* out) {
  if (fd < 0) return -errno;
  out->clear();
  char buf[65536];
  ssize_t n;
  int err = 0;
  while ((n = read(fd, buf, sizeof(buf))) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      err = -errno;
      break;
    }
    out->append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return err;
}

}  // namespace

int read_file_at(const DirFd& dir, const std::string& name, std::string* out) {
  return read_fd(openat(dir.get(), name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out);
}

int read_file_nofollow(const std::string& path, std::string* out) {
  return read_fd(open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out);
}

}  // namespace fikit::broker
