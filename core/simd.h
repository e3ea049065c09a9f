// Eight-lane float vectors for the fast kernels (GCC vector extensions: one
// AVX register, or two SSE registers). Internal to core/.
#ifndef CONVNET_CORE_SIMD_H_
#define CONVNET_CORE_SIMD_H_

#include <cstdint>
#include <cstring>

#ifdef __AVX__
#include <immintrin.h>
#endif

#define CONVNET_INLINE inline __attribute__((always_inline))

namespace convnet::simd {

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef uint8_t v8u8 __attribute__((vector_size(8)));

CONVNET_INLINE v8f Load(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
CONVNET_INLINE void Store(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }
CONVNET_INLINE v8f Splat(float x) { return v8f{x, x, x, x, x, x, x, x}; }
CONVNET_INLINE v8i SplatInt(int32_t x) { return v8i{x, x, x, x, x, x, x, x}; }

// Sum of the eight lanes in a fixed order.
CONVNET_INLINE float Sum(v8f v) {
  return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}

// True when any lane of a comparison mask is set.
CONVNET_INLINE bool Any(v8i mask) {
#ifdef __AVX__
  return _mm256_movemask_ps(reinterpret_cast<__m256>(mask)) != 0;
#else
  uint64_t words[4];
  std::memcpy(words, &mask, sizeof words);
  return (words[0] | words[1] | words[2] | words[3]) != 0;
#endif
}

}  // namespace convnet::simd

#endif  // CONVNET_CORE_SIMD_H_
