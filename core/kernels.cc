#include "core/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/kernel_table.h"
#include "core/parameters.h"
#include "core/sigmoid.h"

namespace convnet {

Workspace::Workspace(int k)
    : k(k),
      a0(kInputSide * kPaddedInputStride, 0.0f),
      z1(static_cast<size_t>(k) * kConvSize + 8),
      z1_max(static_cast<size_t>(k) * kPoolSize + 8),
      a2(static_cast<size_t>(k) * kPoolSize + 8),
      argmax(static_cast<size_t>(k) * kPoolSize + 8),
      da2(static_cast<size_t>(k) * kPoolSize),
      delta1(static_cast<size_t>(k) * kPoolSize),
      nonzero_columns(kInputSide, (1u << kInputSide) - 1) {}

void LoadInput(const float* a0, Workspace& ws) {
  for (int r = 0; r < kInputSide; ++r) {
    float* dst = ws.a0.data() + r * kPaddedInputStride;
    std::memcpy(dst, a0 + r * kInputSide, kInputSide * sizeof(float));
    uint32_t columns = 0;
    for (int c = 0; c < kInputSide; ++c) columns |= static_cast<uint32_t>(dst[c] != 0.0f) << c;
    ws.nonzero_columns[r] = columns;
  }
}

void LoadImage(const ImageBatch& images, size_t i, Workspace& ws) {
  if (images.is_float()) {
    LoadInput(images.floats().data() + i * kPixels, ws);
  } else {
    Kernels().pixels_to_padded_rows(images.pixels().data() + i * kPixels, ws.a0.data(), ws.nonzero_columns.data());
  }
}

void PrefetchImage(const ImageBatch& images, size_t i) {
  const char* begin = images.is_float() ? reinterpret_cast<const char*>(images.floats().data() + i * kPixels)
                                        : reinterpret_cast<const char*>(images.pixels().data() + i * kPixels);
  const size_t bytes = images.is_float() ? kPixels * sizeof(float) : kPixels;
  for (size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(begin + offset);
}

namespace {

// The forward kernel on the image loaded in ws, z3 and a3 (when not null) to
// the given arrays.
void ForwardLoaded(const float* w1, const float* b1, const float* w3, const float* b3, Workspace& ws, float* z3,
                   float* a3) {
  Kernels().forward(ws.k, ws.a0.data(), ws.nonzero_columns.data(), w1, b1, w3, b3, ws.z1.data(), ws.z1_max.data(),
                    ws.a2.data(), z3, a3);
}

}  // namespace

void ForwardExample(const float* w1, const float* b1, const float* w3, const float* b3, Workspace& ws) {
  ForwardLoaded(w1, b1, w3, b3, ws, ws.z3.data(), ws.a3.data());
}

size_t ForwardImagesPerCall(int k) { return std::max<size_t>(1, 16 / static_cast<size_t>(k)); }

void ForwardImagesToZ3(const ImageBatch& images, size_t begin, size_t count, const float* w1, const float* b1,
                       const float* w3, const float* b3, Workspace& ws, float* z3) {
  if (images.is_float()) {
    for (size_t j = 0; j < count; ++j) {
      if (j + 1 < count) PrefetchImage(images, begin + j + 1);
      LoadImage(images, begin + j, ws);
      ForwardLoaded(w1, b1, w3, b3, ws, z3 + j * kClasses, nullptr);
    }
    return;
  }
  const KernelTable& kernels = Kernels();
  const size_t per_call = ForwardImagesPerCall(ws.k);
  const size_t values = std::min(count, per_call) * ws.k * kPoolSize;
  if (ws.images_z1_max.size() < values) {
    ws.images_z1_max.resize(values);
    ws.images_a2.resize(values);
  }
  for (size_t j = 0; j < count; j += per_call) {
    kernels.forward_images(ws.k, static_cast<int>(std::min(per_call, count - j)),
                           images.pixels().data() + (begin + j) * kPixels, ws.a0.data(),
                           ws.nonzero_columns.data(), w1, b1, w3, b3, ws.z1.data(), ws.images_z1_max.data(),
                           ws.images_a2.data(), z3 + j * kClasses);
  }
}

void OutputActivations(size_t images, const float* z3, float* a3) {
  const int values = static_cast<int>(images * kClasses);
  Kernels().activate((values + 7) / 8 * 8, z3, a3);
}

void PoolArgmax(Workspace& ws) {
  Kernels().pool_argmax(ws.k, ws.z1.data(), ws.z1_max.data(), ws.a2.data(), ws.argmax.data());
}

float BackwardExample(const float* w3, int label, Cost cost, Workspace& ws, float* gradient) {
  const float estimate = BackwardExampleButDenseWeights(w3, label, cost, ws, gradient);
  const float* a2 = ws.a2.data();
  AddDenseWeightGradients(ws.k, 1, &a2, ws.delta3.data(), gradient);
  return estimate;
}

void AddDenseWeightGradients(int k, size_t m, const float* const* a2, const float* delta3, float* gradient) {
  Kernels().dense_weight_gradients(k * kPoolSize, static_cast<int>(m), a2, delta3,
                                   gradient + Parameters::W3Offset(k));
}

float BackwardExampleButDenseWeights(const float* w3, int label, Cost cost, Workspace& ws, float* gradient) {
  PoolArgmax(ws);
  const int k = ws.k, n = k * kPoolSize;
  float* dw1 = gradient + Parameters::W1Offset(k);
  float* db1 = gradient + Parameters::B1Offset(k);
  float* db3 = gradient + Parameters::B3Offset(k);
  float estimate = 0.0f;
  float product = 1.0f;
  for (int l = 0; l < kClasses; ++l) {
    const float y = l == label ? 1.0f : 0.0f;
    const float a3 = ws.a3[l];
    if (cost == Cost::kQuadratic) {
      ws.delta3[l] = (a3 - y) * SigmoidPrimeFromActivation(a3);  // BP1
      estimate += 0.5f * (a3 - y) * (a3 - y);
    } else {
      ws.delta3[l] = a3 - y;  // BP1, cross-entropy: sigma'(z3) cancels
      // C_x = sum_l softplus(x_l), x = z3 when y = 0 and -z3 when y = 1;
      // softplus(x) = max(x, 0) + log(1 + e^-|x|), the ten logs taken as one.
      const float x = l == label ? -ws.z3[l] : ws.z3[l];
      estimate += x > 0.0f ? x : 0.0f;
      product *= 1.0f + std::exp(-std::fabs(x));
    }
    db3[l] += ws.delta3[l];  // BP3
  }
  if (cost == Cost::kCrossEntropy) estimate += std::log(product);
  const KernelTable& kernels = Kernels();
  kernels.dense_backward_input(n, ws.delta3.data(), w3, ws.da2.data());
  kernels.conv_backward(k, ws.a0.data(), ws.nonzero_columns.data(), ws.a2.data(), ws.da2.data(),
                        ws.argmax.data(), ws.delta1.data(), dw1, db1);
  return estimate;
}

void Delta1(const Workspace& ws, float* delta1) {
  std::memset(delta1, 0, sizeof(float) * ws.k * kConvSize);
  for (int f = 0; f < ws.k; ++f) {
    for (int pj = 0; pj < kPoolSide; ++pj) {
      for (int pk = 0; pk < kPoolSide; ++pk) {
        const int cell = (f * kPoolSide + pj) * kPoolSide + pk;
        const int p = ws.argmax[cell];
        delta1[(f * kConvSide + 2 * pj + p / 2) * kConvSide + 2 * pk + p % 2] = ws.delta1[cell];
      }
    }
  }
}

int PredictedClass(const float* a3) {
  int best = 0;
  for (int l = 1; l < kClasses; ++l) {
    if (a3[l] > a3[best]) best = l;
  }
  return best;
}

}  // namespace convnet
