// A std::vector whose data starts on a 64-byte cache line: the kernels' 32-byte
// loads and stores then cross a line at the same offsets on every run (with
// malloc's 16-byte alignment, where they cross changes with the heap, and so
// does the speed; docs/BENCHMARKS.md, "Code and data alignment").
#ifndef CONVNET_CORE_ALIGNED_VECTOR_H_
#define CONVNET_CORE_ALIGNED_VECTOR_H_

#include <cstddef>
#include <new>
#include <vector>

namespace convnet {

inline constexpr std::size_t kCacheLine = 64;

template <typename T>
struct CacheLineAllocator {
  using value_type = T;

  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}

  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kCacheLine}));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t{kCacheLine}); }

  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
};

template <typename T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

}  // namespace convnet

#endif  // CONVNET_CORE_ALIGNED_VECTOR_H_
