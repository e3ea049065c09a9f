#include "core/reference.h"

#include <cmath>

#include "core/parameters.h"
#include "core/sigmoid.h"

namespace convnet {
namespace {

// Position (j, k) of window entry `p` (0..3, row-major) of pool cell (pj, pk).
inline int WindowRow(int pj, int p) { return 2 * pj + p / 2; }
inline int WindowCol(int pk, int p) { return 2 * pk + p % 2; }

// log(1 + e^x) without overflow.
template <typename T>
T Softplus(T x) {
  return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
}

}  // namespace

template <typename T>
void conv_forward(int k, const T* a0, const T* w1, const T* b1, T* z1, T* a1) {
  for (int f = 0; f < k; ++f) {
    for (int j = 0; j < kConvSide; ++j) {
      for (int c = 0; c < kConvSide; ++c) {
        // z1[f,j,k] = b1[f] + sum_{l,m} w1[f,l,m] a0[j+l, k+m]
        T z = b1[f];
        for (int l = 0; l < kKernelSide; ++l) {
          for (int m = 0; m < kKernelSide; ++m) {
            z = z + w1[(f * kKernelSide + l) * kKernelSide + m] * a0[(j + l) * kInputSide + c + m];
          }
        }
        z1[(f * kConvSide + j) * kConvSide + c] = z;
        a1[(f * kConvSide + j) * kConvSide + c] = Sigmoid(z);
      }
    }
  }
}

template <typename T>
void maxpool_forward(int k, const T* a1, T* a2, uint8_t* argmax) {
  for (int f = 0; f < k; ++f) {
    const T* map = a1 + f * kConvSize;
    for (int pj = 0; pj < kPoolSide; ++pj) {
      for (int pk = 0; pk < kPoolSide; ++pk) {
        // a2[f,j',k'] = max of the window; ties go to the first in row-major order.
        int best = 0;
        T best_value = map[WindowRow(pj, 0) * kConvSide + WindowCol(pk, 0)];
        for (int p = 1; p < 4; ++p) {
          const T v = map[WindowRow(pj, p) * kConvSide + WindowCol(pk, p)];
          if (v > best_value) {
            best_value = v;
            best = p;
          }
        }
        a2[(f * kPoolSide + pj) * kPoolSide + pk] = best_value;
        argmax[(f * kPoolSide + pj) * kPoolSide + pk] = static_cast<uint8_t>(best);
      }
    }
  }
}

template <typename T>
void dense_forward(int k, const T* a2, const T* w3, const T* b3, T* z3, T* a3) {
  const int n = k * kPoolSize;
  for (int l = 0; l < kClasses; ++l) {
    // z3[l] = b3[l] + sum_{f,j,k} w3[l; f,j,k] a2[f,j,k]
    T z = b3[l];
    for (int i = 0; i < n; ++i) z = z + w3[l * n + i] * a2[i];
    z3[l] = z;
    a3[l] = Sigmoid(z);
  }
}

template <typename T>
void output_delta(Cost cost, const T* z3, const T* a3, int label, T* delta3) {
  (void)z3;
  for (int l = 0; l < kClasses; ++l) {
    const T y = l == label ? T(1) : T(0);
    if (cost == Cost::kQuadratic) {
      delta3[l] = (a3[l] - y) * SigmoidPrimeFromActivation(a3[l]);  // BP1: (a3 - y) sigma'(z3)
    } else {
      delta3[l] = a3[l] - y;  // BP1 for cross-entropy: sigma' cancels
    }
  }
}

template <typename T>
void dense_backward(int k, const T* delta3, const T* a2, const T* w3, T* dw3, T* db3, T* da2) {
  const int n = k * kPoolSize;
  for (int l = 0; l < kClasses; ++l) {
    db3[l] += delta3[l];                                            // BP3
    for (int i = 0; i < n; ++i) dw3[l * n + i] += a2[i] * delta3[l];  // BP4
  }
  // In the forward pass z3[l] = b3[l] + sum_i w3[l;i] a2[i], so dC/da2[i] = sum_l delta3[l] w3[l;i].
  for (int i = 0; i < n; ++i) {
    T s = 0;
    for (int l = 0; l < kClasses; ++l) s = s + delta3[l] * w3[l * n + i];
    da2[i] = s;
  }
}

template <typename T>
void maxpool_backward(int k, const T* da2, const uint8_t* argmax, const T* a1, T* delta1) {
  for (int i = 0; i < k * kConvSize; ++i) delta1[i] = 0;
  for (int f = 0; f < k; ++f) {
    for (int pj = 0; pj < kPoolSide; ++pj) {
      for (int pk = 0; pk < kPoolSide; ++pk) {
        // In the forward pass a2[f,j',k'] = a1[f,j,k] for the argmax (j,k) only,
        // so delta1[f,j,k] = da2[f,j',k'] sigma'(z1[f,j,k]) there and 0 elsewhere (BP2).
        const int cell = (f * kPoolSide + pj) * kPoolSide + pk;
        const int p = argmax[cell];
        const int pos = (f * kConvSide + WindowRow(pj, p)) * kConvSide + WindowCol(pk, p);
        delta1[pos] = da2[cell] * SigmoidPrimeFromActivation(a1[pos]);
      }
    }
  }
}

template <typename T>
void conv_backward(int k, const T* delta1, const T* a0, T* dw1, T* db1) {
  for (int f = 0; f < k; ++f) {
    for (int j = 0; j < kConvSide; ++j) {
      for (int c = 0; c < kConvSide; ++c) {
        const T d = delta1[(f * kConvSide + j) * kConvSide + c];
        db1[f] += d;  // BP3, shared bias: sum over every position of the map
        for (int l = 0; l < kKernelSide; ++l) {
          for (int m = 0; m < kKernelSide; ++m) {
            // BP4, shared weights: z1[f,j,k] used w1[f,l,m] with a0[j+l, k+m]
            dw1[(f * kKernelSide + l) * kKernelSide + m] += d * a0[(j + l) * kInputSide + c + m];
          }
        }
      }
    }
  }
}

template <typename T>
T example_cost(Cost cost, const T* z3, const T* a3, int label) {
  T c = 0;
  for (int l = 0; l < kClasses; ++l) {
    if (cost == Cost::kQuadratic) {
      const T diff = a3[l] - (l == label ? T(1) : T(0));
      c += T(0.5) * diff * diff;
    } else {
      // -[y ln a + (1-y) ln(1-a)] = softplus(-z) when y = 1, softplus(z) when y = 0.
      c += l == label ? Softplus(-z3[l]) : Softplus(z3[l]);
    }
  }
  return c;
}

template <typename T>
ReferenceTrace<T> ReferenceBackprop(int k, absl::Span<const T> params, const T* a0, int label,
                                    Cost cost) {
  const T* w1 = params.data() + Parameters::W1Offset(k);
  const T* b1 = params.data() + Parameters::B1Offset(k);
  const T* w3 = params.data() + Parameters::W3Offset(k);
  const T* b3 = params.data() + Parameters::B3Offset(k);
  ReferenceTrace<T> t;
  t.z1.assign(k * kConvSize, 0);
  t.a1.assign(k * kConvSize, 0);
  t.a2.assign(k * kPoolSize, 0);
  t.da2.assign(k * kPoolSize, 0);
  t.delta1.assign(k * kConvSize, 0);
  t.argmax.assign(k * kPoolSize, 0);
  t.gradient.assign(ParameterCount(k), 0);
  T* dw1 = t.gradient.data() + Parameters::W1Offset(k);
  T* db1 = t.gradient.data() + Parameters::B1Offset(k);
  T* dw3 = t.gradient.data() + Parameters::W3Offset(k);
  T* db3 = t.gradient.data() + Parameters::B3Offset(k);

  conv_forward(k, a0, w1, b1, t.z1.data(), t.a1.data());
  maxpool_forward(k, t.a1.data(), t.a2.data(), t.argmax.data());
  dense_forward(k, t.a2.data(), w3, b3, t.z3.data(), t.a3.data());
  t.cost = example_cost(cost, t.z3.data(), t.a3.data(), label);

  output_delta(cost, t.z3.data(), t.a3.data(), label, t.delta3.data());
  dense_backward(k, t.delta3.data(), t.a2.data(), w3, dw3, db3, t.da2.data());
  maxpool_backward(k, t.da2.data(), t.argmax.data(), t.a1.data(), t.delta1.data());
  conv_backward(k, t.delta1.data(), a0, dw1, db1);
  return t;
}

template <typename T>
T ReferenceCost(int k, absl::Span<const T> params, const T* a0, int label, Cost cost) {
  std::vector<T> z1(k * kConvSize), a1(k * kConvSize), a2(k * kPoolSize);
  std::vector<uint8_t> argmax(k * kPoolSize);
  std::array<T, kClasses> z3{}, a3{};
  conv_forward(k, a0, params.data() + Parameters::W1Offset(k), params.data() + Parameters::B1Offset(k),
               z1.data(), a1.data());
  maxpool_forward(k, a1.data(), a2.data(), argmax.data());
  dense_forward(k, a2.data(), params.data() + Parameters::W3Offset(k),
                params.data() + Parameters::B3Offset(k), z3.data(), a3.data());
  return example_cost(cost, z3.data(), a3.data(), label);
}

std::vector<uint8_t> ArgmaxToMask(int k, const uint8_t* argmax) {
  std::vector<uint8_t> mask(k * kConvSize, 0);
  for (int f = 0; f < k; ++f) {
    for (int pj = 0; pj < kPoolSide; ++pj) {
      for (int pk = 0; pk < kPoolSide; ++pk) {
        const int p = argmax[(f * kPoolSide + pj) * kPoolSide + pk];
        mask[(f * kConvSide + WindowRow(pj, p)) * kConvSide + WindowCol(pk, p)] = 1;
      }
    }
  }
  return mask;
}

#define CONVNET_INSTANTIATE_REFERENCE(T)                                                        \
  template void conv_forward<T>(int, const T*, const T*, const T*, T*, T*);                    \
  template void maxpool_forward<T>(int, const T*, T*, uint8_t*);                               \
  template void dense_forward<T>(int, const T*, const T*, const T*, T*, T*);                   \
  template void output_delta<T>(Cost, const T*, const T*, int, T*);                            \
  template void dense_backward<T>(int, const T*, const T*, const T*, T*, T*, T*);              \
  template void maxpool_backward<T>(int, const T*, const uint8_t*, const T*, T*);              \
  template void conv_backward<T>(int, const T*, const T*, T*, T*);                             \
  template T example_cost<T>(Cost, const T*, const T*, int);                                   \
  template ReferenceTrace<T> ReferenceBackprop<T>(int, absl::Span<const T>, const T*, int, Cost); \
  template T ReferenceCost<T>(int, absl::Span<const T>, const T*, int, Cost);

CONVNET_INSTANTIATE_REFERENCE(float)
CONVNET_INSTANTIATE_REFERENCE(double)

}  // namespace convnet
