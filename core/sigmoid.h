// sigma(z) = 1 / (1 + e^(-z)) and sigma'(z) = sigma(z)(1 - sigma(z)).
//
// The float version uses our own exp (Cephes' expf polynomial, ~2 ulp)
// written with explicit fused multiply-adds (std::fma: one rounding each), so
// that a vector lane doing the same fused operations (the fast kernels, on
// processors with FMA) is bit-identical to this function; core/ is built with
// -ffp-contract=off, so nothing else is fused. The fast kernels and the float
// reference share it, so they agree exactly on ties in a1. Fused, the
// polynomial takes a third fewer operations than with separate multiplies
// and adds; where std::fma is not an instruction it is a (slower) library
// call, still exact.
#ifndef CONVNET_CORE_SIGMOID_H_
#define CONVNET_CORE_SIGMOID_H_

#include <bit>
#include <cmath>
#include <cstdint>

namespace convnet {

// e^x for float x as er * 2^n, the two factors apart (Sigmoid adds 1 to
// their product in one rounding); inputs are clamped to [-87.3, 88.3], where
// e^x is a normal float.
struct ExpFactors {
  float er;     // e^r, r = x - n ln 2 in [-ln(2)/2, ln(2)/2]
  float scale;  // 2^n
};
inline ExpFactors ExpFloatFactors(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.3f ? 88.3f : x;
  // n = round(x / ln 2) with the 1.5 * 2^23 trick (round to nearest even).
  const float n = std::fma(x, 1.44269504088896341f, 12582912.0f) - 12582912.0f;
  // r = x - n ln 2, with ln 2 split into an exact high part and a low part.
  float r = std::fma(-n, 0.693359375f, x);
  r = std::fma(-n, -2.12194440e-4f, r);
  // e^r on |r| <= ln(2)/2.
  float p = std::fma(1.9875691500e-4f, r, 1.3981999507e-3f);
  p = std::fma(p, r, 8.3334519073e-3f);
  p = std::fma(p, r, 4.1665795894e-2f);
  p = std::fma(p, r, 1.6666665459e-1f);
  p = std::fma(p, r, 5.0000001201e-1f);
  const float er = std::fma(p, r * r, r) + 1.0f;
  // 2^n, built in the exponent bits (n is in [-126, 127]).
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  return {er, std::bit_cast<float>(bits)};
}

inline float Sigmoid(float z) {
  const ExpFactors e = ExpFloatFactors(-z);
  return 1.0f / std::fma(e.er, e.scale, 1.0f);
}
inline double Sigmoid(double z) { return 1.0 / (1.0 + std::exp(-z)); }

// sigma'(z) written from a = sigma(z).
template <typename T>
inline T SigmoidPrimeFromActivation(T a) { return a * (T(1) - a); }

}  // namespace convnet

#endif  // CONVNET_CORE_SIGMOID_H_
