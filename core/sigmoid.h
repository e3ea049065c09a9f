// sigma(z) = 1 / (1 + e^(-z)) and sigma'(z) = sigma(z)(1 - sigma(z)).
//
// The float version uses our own exp (Cephes' expf polynomial, ~2 ulp) written
// with plain arithmetic so that GCC vectorises loops over it, and so that a
// value computed in a vector loop is bit-identical to the same value computed
// one at a time (core/ is built with -ffp-contract=off). The fast kernels and
// the float reference share it, so they agree exactly on ties in a1.
#ifndef CONVNET_CORE_SIGMOID_H_
#define CONVNET_CORE_SIGMOID_H_

#include <bit>
#include <cmath>
#include <cstdint>

namespace convnet {

// e^x for float x; inputs are clamped to [-87.3, 88.3], where e^x is a normal float.
inline float ExpFloat(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.3f ? 88.3f : x;
  // n = round(x / ln 2) with the 1.5 * 2^23 trick (round to nearest even).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  // r = x - n ln 2, with ln 2 split into an exact high part and a low part.
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  // e^r on |r| <= ln(2)/2.
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * (r * r) + r + 1.0f;
  // Times 2^n, built in the exponent bits (n is in [-126, 127]).
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return er * std::bit_cast<float>(bits);
}

inline float Sigmoid(float z) { return 1.0f / (1.0f + ExpFloat(-z)); }
inline double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// sigma'(z) written from a = sigma(z).
template <typename T>
inline T SigmoidPrimeFromActivation(T a) { return a * (T(1) - a); }

}  // namespace convnet

#endif  // CONVNET_CORE_SIGMOID_H_
