// bitlinear internal: a copyable, 64-byte aligned byte buffer (packed weights, quantized activations).
#pragma once
#include "internal_only.hpp"

#include <cstddef>
#include <cstring>
#include <new>
#include <utility>

#include "../config.hpp"

BITLINEAR_NAMESPACE_BEGIN
namespace detail {

inline constexpr std::size_t buffer_alignment = 64;

class AlignedBytes {
 public:
  AlignedBytes() = default;
  explicit AlignedBytes(std::size_t size) : size_(size) {
    if (size_ != 0) {
      data_ = static_cast<unsigned char*>(::operator new(size_, std::align_val_t{buffer_alignment}));
    }
  }
  AlignedBytes(const AlignedBytes& other) : AlignedBytes(other.size_) {
    if (size_ != 0) std::memcpy(data_, other.data_, size_);
  }
  AlignedBytes(AlignedBytes&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  AlignedBytes& operator=(AlignedBytes other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }
  ~AlignedBytes() {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t{buffer_alignment});
  }

  unsigned char* data() noexcept { return data_; }
  const unsigned char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  unsigned char* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace detail
BITLINEAR_NAMESPACE_END
