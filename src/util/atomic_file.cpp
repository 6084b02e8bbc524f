#include "dml/util/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "dml/util/error.h"

namespace dml {
namespace {

// What to do about a failed call, by its errno.
const char* fix_for(int error) {
  switch (error) {
    case ENOSPC:
    case EDQUOT:
      return "free space on that filesystem (or write elsewhere)";
    case EFBIG:
      return "free space or raise the file-size limit (ulimit -f), or write elsewhere";
    case EACCES:
    case EPERM:
    case EROFS:
    case ENOENT:
    case ENOTDIR:
      return "check that the directory exists and is writable";
    default:
      return "check the filesystem and the disk (dmesg), free space, or write elsewhere";
  }
}

Error io_error(const std::string& path, const std::string& what, int error) {
  return Error(str(path, ": ", what, " failed: ", std::strerror(error), "; ", fix_for(error),
                   " (the previous file, if any, is unchanged)"));
}

// The temporary's data reach the disk before it is renamed over `path`: a rename of an unflushed
// file could, after a crash, replace a good file with a truncated one.
void fsync_file(const std::string& tmp, const std::string& path) {
  const int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw io_error(path, "opening the temporary " + tmp + " to flush it", errno);
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    throw io_error(path, "fsync of the temporary " + tmp, error);
  }
  if (::close(fd) != 0) throw io_error(path, "closing the temporary " + tmp, errno);
}

// After the rename: filesystems that cannot sync a directory (EINVAL, ENOTSUP, or no open) are
// accepted; any other failure means the rename may not survive a crash.
void fsync_directory(const std::string& dir, const std::string& path) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  if (::fsync(fd) != 0 && errno != EINVAL && errno != ENOTSUP && errno != EROFS) {
    const int error = errno;
    ::close(fd);
    throw io_error(path, "fsync of its directory " + dir + " after the rename", error);
  }
  ::close(fd);  // read-only directory descriptor: nothing to lose on close
}

}  // namespace

void write_file_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    write(tmp);
    check(std::filesystem::exists(tmp), path, ": writer produced no file");
    fsync_file(tmp, path);
    if (std::rename(tmp.c_str(), path.c_str()) != 0) {
      throw io_error(path, "renaming " + tmp + " into place", errno);
    }
  } catch (...) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw;
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  fsync_directory(dir.empty() ? "." : dir, path);
}

std::string file_write_problem(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    return str(path, ": directory ", dir, " does not exist; create it (mkdir -p ", dir,
               ") or choose a path in an existing directory");
  }
  if (!std::filesystem::is_directory(dir, ec)) return str(path, ": ", dir, " is not a directory; choose another path");
  const std::string probe = path + ".probe." + std::to_string(::getpid());
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return str(path, ": cannot create a file in ", dir, ": ", std::strerror(errno),
               "; make the directory writable or choose a path in a writable one");
  }
  ::close(fd);
  ::unlink(probe.c_str());
  return "";
}

CheckedFileWriter::CheckedFileWriter(const std::string& path, const std::string& label) : label_(label) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw io_error(label_, "creating " + path, errno);
}

CheckedFileWriter::~CheckedFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

size_t CheckedFileWriter::write(const void* data, size_t n) noexcept {
  const char* p = static_cast<const char*>(data);
  size_t left = error_ == 0 ? n : 0;
  while (left > 0) {
    const ssize_t written = ::write(fd_, p, left);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) {
      error_ = written < 0 ? errno : EIO;
      failed_ = "writing";
      break;
    }
    p += written;
    left -= static_cast<size_t>(written);
  }
  return n;
}

void CheckedFileWriter::finish() {
  if (error_ == 0 && ::fsync(fd_) != 0) {
    error_ = errno;
    failed_ = "fsync";
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0 && error_ == 0) {
    error_ = errno;
    failed_ = "closing";
  }
  if (error_ != 0) throw io_error(label_, failed_, error_);
}

}  // namespace dml
