// Shared fixtures for the core tests: the bundled MNIST, loaded once.
#ifndef CONVNET_TESTS_CORE_TEST_DATA_H_
#define CONVNET_TESTS_CORE_TEST_DATA_H_

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/types/span.h"

#include "core/dataset.h"
#include "gtest/gtest.h"

namespace convnet::testing {

inline std::string BundledMnistDir() { return std::string(CONVNET_DATA_DIR) + "/mnist"; }

// The bundled MNIST (data/mnist), loaded on first use; aborts the test binary
// with the loader's message if it cannot be read.
inline const MnistDirectory& BundledMnist() {
  static const MnistDirectory* mnist = [] {
    auto loaded = LoadMnistDirectory(BundledMnistDir());
    if (!loaded.ok()) {
      ADD_FAILURE() << loaded.status();
      std::abort();
    }
    return new MnistDirectory(*std::move(loaded));
  }();
  return *mnist;
}

// The images' pixels p as the floats p / 255: float images that must give
// the same results as their pixels.
inline std::vector<float> PixelsAsFloats(absl::Span<const uint8_t> pixels) {
  std::vector<float> floats(pixels.size());
  for (size_t p = 0; p < pixels.size(); ++p) floats[p] = static_cast<float>(pixels[p]) / 255.0f;
  return floats;
}

}  // namespace convnet::testing

#endif  // CONVNET_TESTS_CORE_TEST_DATA_H_
