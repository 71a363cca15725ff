// bitlinear: a read-only memory mapping of a whole file (POSIX mmap, Windows CreateFileMapping), so that checkpoint
// readers can hand out views into a file without copying it. Mapping costs O(1): pages are read from disk when
// first touched, and clean file pages can be dropped by the kernel under memory pressure.
//
// Platforms without either API (or files that cannot be mapped: pipes, character devices, some network file
// systems) get an unmapped result, and the caller falls back to reading the file through a stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../error.hpp"

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#define BITLINEAR_HAVE_FILE_MAPPING 1
#elif defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define BITLINEAR_HAVE_FILE_MAPPING 1
#else
#define BITLINEAR_HAVE_FILE_MAPPING 0
#endif

BITLINEAR_NAMESPACE_BEGIN

class MappedFile {
 public:
  MappedFile() = default;

  // Maps the regular file `path` read-only. Throws std::runtime_error if the file cannot be opened; returns an
  // object with is_mapped() == false if it is not a regular file or the platform cannot map it (then read it
  // through a stream instead). An empty file maps to size() == 0 and data() == nullptr.
  static MappedFile open(const std::string& path) {
    MappedFile file;
#if BITLINEAR_HAVE_FILE_MAPPING && defined(_WIN32)
    HANDLE handle = CreateFileA(path.c_str(), GENERIC_READ, FILE_SHARE_READ, nullptr, OPEN_EXISTING,
                                FILE_ATTRIBUTE_NORMAL, nullptr);
    if (handle == INVALID_HANDLE_VALUE) throw_cannot_open(path);
    LARGE_INTEGER size{};
    if (GetFileType(handle) != FILE_TYPE_DISK || !GetFileSizeEx(handle, &size) || size.QuadPart < 0 ||
        static_cast<std::uint64_t>(size.QuadPart) > static_cast<std::uint64_t>(SIZE_MAX)) {
      CloseHandle(handle);
      return file;
    }
    file.mapped_ = true;
    file.size_ = static_cast<std::size_t>(size.QuadPart);
    if (file.size_ != 0) {
      HANDLE mapping = CreateFileMappingA(handle, nullptr, PAGE_READONLY, 0, 0, nullptr);
      void* view = mapping != nullptr ? MapViewOfFile(mapping, FILE_MAP_READ, 0, 0, 0) : nullptr;
      if (mapping != nullptr) CloseHandle(mapping);  // the view keeps the mapping object alive
      if (view == nullptr) {
        CloseHandle(handle);
        return MappedFile();
      }
      file.data_ = static_cast<const std::uint8_t*>(view);
    }
    CloseHandle(handle);
#elif BITLINEAR_HAVE_FILE_MAPPING
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_cannot_open(path);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
        static_cast<std::uint64_t>(st.st_size) > static_cast<std::uint64_t>(SIZE_MAX)) {
      ::close(fd);
      return file;
    }
    file.mapped_ = true;
    file.size_ = static_cast<std::size_t>(st.st_size);
    if (file.size_ != 0) {
      void* p = ::mmap(nullptr, file.size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        return MappedFile();
      }
      file.data_ = static_cast<const std::uint8_t*>(p);
    }
    ::close(fd);  // the mapping stays valid after the descriptor is closed
#else
    (void)path;
#endif
    return file;
  }

  // Size of `path` if it is a regular file, nothing otherwise (pipes, devices, missing files).
  static std::optional<std::uint64_t> regular_file_size(const std::string& path) {
#if BITLINEAR_HAVE_FILE_MAPPING && defined(_WIN32)
    WIN32_FILE_ATTRIBUTE_DATA info{};
    if (!GetFileAttributesExA(path.c_str(), GetFileExInfoStandard, &info)) return std::nullopt;
    if ((info.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_DEVICE)) != 0) return std::nullopt;
    return (static_cast<std::uint64_t>(info.nFileSizeHigh) << 32) | info.nFileSizeLow;
#elif BITLINEAR_HAVE_FILE_MAPPING
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0) return std::nullopt;
    return static_cast<std::uint64_t>(st.st_size);
#else
    (void)path;
    return std::nullopt;
#endif
  }

  bool is_mapped() const noexcept { return mapped_; }
  const std::uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

  // Bytes of the file that are in the OS page cache now (POSIX mincore over the mapping); 0 where the platform
  // cannot tell (Windows). This is the kernel's cache of the file, shared by every process that reads it: it is
  // not this process's memory. Pages released with detail::advise_mapped_pages stay counted here (they leave
  // this process's resident set, not the cache), and pages another process read count even if this one never
  // touched them.
  std::size_t page_cache_bytes() const {
#if BITLINEAR_HAVE_FILE_MAPPING && !defined(_WIN32)
    if (data_ == nullptr) return 0;
    const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t pages = (size_ + page - 1) / page;
#if defined(__APPLE__)
    std::vector<char> flags(pages);
#else
    std::vector<unsigned char> flags(pages);
#endif
    if (::mincore(const_cast<std::uint8_t*>(data_), size_, flags.data()) != 0) return 0;
    std::size_t resident = 0;
    for (std::size_t i = 0; i < pages; ++i) {
      if ((flags[i] & 1) != 0) resident += (i + 1 == pages) ? size_ - i * page : page;
    }
    return resident;
#else
    return 0;
#endif
  }

  // The old name of page_cache_bytes() (which says what it counts: the page cache, not this process's RSS).
  std::size_t resident_bytes() const { return page_cache_bytes(); }

  MappedFile(MappedFile&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        mapped_(std::exchange(other.mapped_, false)) {}
  MappedFile& operator=(MappedFile&& other) noexcept {
    if (this != &other) {
      unmap();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      mapped_ = std::exchange(other.mapped_, false);
    }
    return *this;
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile() { unmap(); }

 private:
  [[noreturn]] static void throw_cannot_open(const std::string& path) {
    detail::fail_runtime_error("bitlinear: cannot open \"" + path + "\"");
  }

  void unmap() noexcept {
    if (data_ == nullptr) return;
#if BITLINEAR_HAVE_FILE_MAPPING && defined(_WIN32)
    UnmapViewOfFile(data_);
#elif BITLINEAR_HAVE_FILE_MAPPING
    ::munmap(const_cast<std::uint8_t*>(data_), size_);
#endif
    data_ = nullptr;
  }

  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
};

namespace detail {

// True if `name` (a path's last component) is a Windows reserved device name: CON, PRN, AUX, NUL, COM1-9 or
// LPT1-9, in any case, with or without an extension ("nul.json" is the NUL device too) or trailing spaces.
inline bool is_windows_device_name(std::string_view name) noexcept {
  const std::size_t slash = name.find_last_of("/\\");
  if (slash != std::string_view::npos) name = name.substr(slash + 1);
  name = name.substr(0, name.find('.'));
  while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
  auto upper = [](char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; };
  std::string n;
  for (char c : name) n += upper(c);
  if (n == "CON" || n == "PRN" || n == "AUX" || n == "NUL") return true;
  return n.size() == 4 && (n.compare(0, 3, "COM") == 0 || n.compare(0, 3, "LPT") == 0) && n[3] >= '1' && n[3] <= '9';
}

// True if something exists at `path` (without opening it: opening a FIFO for reading waits for a writer).
inline bool path_exists(const std::string& path) {
#if BITLINEAR_HAVE_FILE_MAPPING && defined(_WIN32)
  return GetFileAttributesA(path.c_str()) != INVALID_FILE_ATTRIBUTES;
#elif BITLINEAR_HAVE_FILE_MAPPING
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
#else
  return std::ifstream(path, std::ios::binary).good();
#endif
}

// Refuses (std::invalid_argument) a `path` that exists but is not a regular file: a FIFO, socket, device or
// directory would block a reader or never end. POSIX: opened with O_NONBLOCK (a FIFO without a writer does not
// wait) and checked with fstat; Windows: reserved device names and non-disk files. A path that cannot be opened
// passes: the caller's open reports it as before.
inline void require_regular_file(const std::string& path) {
  auto refuse = [&](const char* what) {
    fail_invalid_argument("bitlinear: \"" + path + "\" is " + what +
                          ", not a regular file; checkpoint files must be regular files");
  };
#if BITLINEAR_HAVE_FILE_MAPPING && defined(_WIN32)
  if (is_windows_device_name(path)) refuse("a Windows device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9)");
  const DWORD attributes = GetFileAttributesA(path.c_str());
  if (attributes == INVALID_FILE_ATTRIBUTES) return;
  if ((attributes & FILE_ATTRIBUTE_DIRECTORY) != 0) refuse("a directory");
  if ((attributes & FILE_ATTRIBUTE_DEVICE) != 0) refuse("a device");
#elif BITLINEAR_HAVE_FILE_MAPPING
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return;
  struct stat st {};
  const bool ok = ::fstat(fd, &st) == 0;
  ::close(fd);
  if (!ok || S_ISREG(st.st_mode)) return;
  if (S_ISFIFO(st.st_mode)) refuse("a FIFO (named pipe)");
  if (S_ISDIR(st.st_mode)) refuse("a directory");
  if (S_ISSOCK(st.st_mode)) refuse("a socket");
  refuse("a device or other special file");
#else
  if (is_windows_device_name(path)) refuse("a Windows device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9)");
#endif
}

// What advise_mapped_pages tells the OS about a range of a read-only file mapping.
enum class PageAdvice {
  will_need,  // read it soon: start reading it from disk now (POSIX MADV_WILLNEED; nothing on Windows)
  release,    // done with it: drop it from this process's resident set (POSIX MADV_DONTNEED, Windows VirtualUnlock)
};

// Hints about the pages of [data, data + size), which must lie inside a read-only MappedFile mapping (PROT_READ,
// MAP_PRIVATE, never written: no page of it is private to this process). The range is widened to whole pages,
// which stay inside the mapping (it covers whole pages). Releasing is safe for such a mapping: the file's pages
// stay in the page cache and a later read of the range faults them in again with the same bytes. On Windows,
// VirtualUnlock of pages that are not locked removes them from the working set (documented behaviour; the call
// then "fails" with ERROR_NOT_LOCKED, which is ignored). Errors are ignored: these are hints.
inline void advise_mapped_pages(const void* data, std::size_t size, PageAdvice advice) noexcept {
  if (data == nullptr || size == 0) return;
#if BITLINEAR_HAVE_FILE_MAPPING && defined(_WIN32)
  if (advice == PageAdvice::release) (void)VirtualUnlock(const_cast<void*>(data), size);
#elif BITLINEAR_HAVE_FILE_MAPPING
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  if (page == 0 || (page & (page - 1)) != 0) return;
  const auto begin = reinterpret_cast<std::uintptr_t>(data) & ~(page - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(data) + size + page - 1) & ~(page - 1);
  void* const start = reinterpret_cast<void*>(begin);
#if defined(MADV_WILLNEED) && defined(MADV_DONTNEED)
  (void)::madvise(start, end - begin, advice == PageAdvice::will_need ? MADV_WILLNEED : MADV_DONTNEED);
#else
  (void)start, (void)advice;
#endif
#else
  (void)advice;
#endif
}

}  // namespace detail

BITLINEAR_NAMESPACE_END
