// Throughput of the core on the bundled MNIST: training samples/s and
// inference images/s, for K maps, a mini-batch or batch size, and a thread
// count; and the time of each stage of a K = 1 forward pass.
//
//   build/bench/core_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// items_per_second is samples/s (training) or images/s (inference).
#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <optional>

#include "benchmark/benchmark.h"
#include "core/dataset.h"
#include "core/image_batch.h"
#include "core/kernel_table.h"
#include "core/kernels.h"
#include "core/network.h"
#include "core/parameters.h"
#include "core/reference.h"
#include "core/thread_pool.h"
#include "core/trainer.h"

namespace convnet {
namespace {

const MnistDirectory& Mnist() {
  static const MnistDirectory* mnist = [] {
    auto loaded = LoadMnistDirectory(std::string(CONVNET_DATA_DIR) + "/mnist");
    if (!loaded.ok()) {
      std::cerr << loaded.status() << "\n";
      std::exit(1);
    }
    return new MnistDirectory(*std::move(loaded));
  }();
  return *mnist;
}

// Args: K, mini-batch size, threads. One iteration = one epoch over a fixed
// slice of the training set (the real Train path: shuffle, gradient, SGD step).
void BM_Train(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  const Dataset train = Mnist().train.Prefix(k == 1 ? 20000 : 2000);
  ThreadPool pool(static_cast<int>(state.range(2)));
  auto params = Parameters::Initialize(k, 1);
  TrainOptions options;
  options.batch_size = static_cast<int>(state.range(1));
  options.learning_rate = 0.5;
  options.progress_every = 0;
  for (auto _ : state) {
    auto result = Train(*params, train, nullptr, options, &pool);
    benchmark::DoNotOptimize(result);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(train.size()));
}
BENCHMARK(BM_Train)
    ->ArgNames({"K", "batch", "threads"})
    ->Args({1, 10, 1})->Args({1, 10, 2})
    ->Args({20, 10, 1})->Args({20, 10, 2})
    ->Args({1, 256, 1})->Args({1, 256, 2})
    ->Args({20, 256, 1})->Args({20, 256, 2})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

// Args: K, batch size, threads. One iteration = one Predict call.
void BM_Predict(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  const size_t batch = static_cast<size_t>(state.range(1));
  ThreadPool pool(static_cast<int>(state.range(2)));
  auto params = Parameters::Initialize(k, 1);
  const Dataset& test = Mnist().test;
  size_t offset = 0;
  for (auto _ : state) {
    if (offset + batch > test.size()) offset = 0;
    const ImageBatch images =
        ImageBatch::FromPixels(absl::MakeConstSpan(test.images).subspan(offset * kPixels, batch * kPixels));
    auto predictions = Predict(*params, images, &pool);
    benchmark::DoNotOptimize(predictions);
    offset += batch;
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(batch));
}
BENCHMARK(BM_Predict)
    ->ArgNames({"K", "batch", "threads"})
    ->Args({1, 1, 1})->Args({1, 256, 1})->Args({1, 256, 2})
    ->Args({20, 256, 1})->Args({20, 256, 2})
    ->UseRealTime();

// The stages of the forward pass on their own (the kernels of
// core/kernel_table.h, this processor's instruction set), for where the time
// of an inference goes. One iteration = one stage on one image, the first 256
// test images in turn, each stage's inputs computed beforehand (in the real
// pass they come straight from the previous stage, hot in the cache, and
// neighbouring stages overlap, so the stages add up to more than the pass).
enum class Stage { kPixels, kConvPool, kActivate, kDense };

void BM_ForwardStage(benchmark::State& state, Stage stage) {
  constexpr int kImages = 256;
  auto params = Parameters::Initialize(1, 1);
  const KernelTable& kernels = Kernels();
  const std::vector<uint8_t>& pixels = Mnist().test.images;
  Workspace ws(1);
  // Each stage's inputs, image after image.
  std::vector<float> a0(kImages * ws.a0.size()), z1_max(kImages * ws.z1_max.size()), a2(kImages * ws.a2.size());
  std::vector<uint32_t> nonzero_columns(kImages * kInputSide);
  for (int i = 0; i < kImages; ++i) {
    LoadImage(ImageBatch::FromPixels(absl::MakeConstSpan(pixels).subspan(i * kPixels, kPixels)), 0, ws);
    ForwardExample(params->w1(), params->b1(), params->w3(), params->b3(), ws);
    std::copy(ws.a0.begin(), ws.a0.end(), a0.begin() + i * ws.a0.size());
    std::copy(ws.nonzero_columns.begin(), ws.nonzero_columns.end(), nonzero_columns.begin() + i * kInputSide);
    std::copy(ws.z1_max.begin(), ws.z1_max.end(), z1_max.begin() + i * ws.z1_max.size());
    std::copy(ws.a2.begin(), ws.a2.end(), a2.begin() + i * ws.a2.size());
  }
  int i = 0;
  for (auto _ : state) {
    switch (stage) {
      case Stage::kPixels:
        kernels.pixels_to_padded_rows(pixels.data() + i * kPixels, ws.a0.data(), ws.nonzero_columns.data());
        break;
      case Stage::kConvPool:
        kernels.conv_pool_forward(1, a0.data() + i * ws.a0.size(), nonzero_columns.data() + i * kInputSide,
                                  params->w1(), params->b1(), ws.z1.data(), ws.z1_max.data());
        break;
      case Stage::kActivate:
        kernels.activate(kPoolSize, z1_max.data() + i * ws.z1_max.size(), ws.a2.data());
        break;
      case Stage::kDense:
        kernels.dense_forward(kPoolSize, a2.data() + i * ws.a2.size(), params->w3(), params->b3(), ws.z3.data(),
                              ws.a3.data());
        break;
    }
    benchmark::ClobberMemory();
    if (++i == kImages) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(KernelsName());
}
BENCHMARK_CAPTURE(BM_ForwardStage, pixels, Stage::kPixels);
BENCHMARK_CAPTURE(BM_ForwardStage, conv_pool, Stage::kConvPool);
BENCHMARK_CAPTURE(BM_ForwardStage, activate, Stage::kActivate);
BENCHMARK_CAPTURE(BM_ForwardStage, dense, Stage::kDense);

// What each stage costs inside the whole pass: the K = 1 forward pass of one
// image (pixels, conv_pool, activate, dense to z3; Predict runs the same
// stages over 16 images at a time), image after image over the whole test
// set, with one stage left out (its outputs keep
// the previous image's values, so the later stages still run on real data).
// The pass's time minus a left-out run's time is that stage's share. (Left
// without the pixel stage, the convolution sees the same image every time and
// its branches at the blank rows are always predicted: that share includes them.)
void BM_ForwardPassWithout(benchmark::State& state, std::optional<Stage> left_out) {
  auto params = Parameters::Initialize(1, 1);
  const KernelTable& kernels = Kernels();
  const Dataset& test = Mnist().test;
  Workspace ws(1);
  LoadImage(ImageBatch::FromPixels(test.images), 0, ws);
  ForwardExample(params->w1(), params->b1(), params->w3(), params->b3(), ws);
  size_t i = 0;
  for (auto _ : state) {
    if (left_out != Stage::kPixels) {
      kernels.pixels_to_padded_rows(test.images.data() + i * kPixels, ws.a0.data(), ws.nonzero_columns.data());
    }
    if (left_out != Stage::kConvPool) {
      kernels.conv_pool_forward(1, ws.a0.data(), ws.nonzero_columns.data(), params->w1(), params->b1(), ws.z1.data(),
                                ws.z1_max.data());
    }
    if (left_out != Stage::kActivate) kernels.activate(kPoolSize, ws.z1_max.data(), ws.a2.data());
    if (left_out != Stage::kDense) {
      kernels.dense_forward(kPoolSize, ws.a2.data(), params->w3(), params->b3(), ws.z3.data(), nullptr);
    }
    benchmark::ClobberMemory();
    if (++i == test.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(KernelsName());
}
// Besides the median, the fastest repetition: run with many repetitions,
// randomly interleaved, it is the pass in the machine's quiet moments.
double Fastest(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }
BENCHMARK_CAPTURE(BM_ForwardPassWithout, nothing, std::nullopt)->ComputeStatistics("min", Fastest);
BENCHMARK_CAPTURE(BM_ForwardPassWithout, pixels, Stage::kPixels)->ComputeStatistics("min", Fastest);
BENCHMARK_CAPTURE(BM_ForwardPassWithout, conv_pool, Stage::kConvPool)->ComputeStatistics("min", Fastest);
BENCHMARK_CAPTURE(BM_ForwardPassWithout, activate, Stage::kActivate)->ComputeStatistics("min", Fastest);
BENCHMARK_CAPTURE(BM_ForwardPassWithout, dense, Stage::kDense)->ComputeStatistics("min", Fastest);

// The plain reference (reference.h) on the same examples, for the ratio to the
// fast path measured in the same run. Args: K. One iteration = one example's
// forward and backward pass.
void BM_ReferenceBackprop(benchmark::State& state) {
  const int k = static_cast<int>(state.range(0));
  auto params = Parameters::Initialize(k, 1);
  const Dataset& train = Mnist().train;
  const ImageBatch images = ImageBatch::FromPixels(train.images);
  float a0[kPixels];
  size_t i = 0;
  for (auto _ : state) {
    images.InputActivations(i % train.size(), a0);
    auto trace = ReferenceBackprop<float>(k, params->flat(), a0, train.labels[i % train.size()],
                                          Cost::kCrossEntropy);
    benchmark::DoNotOptimize(trace);
    ++i;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReferenceBackprop)->ArgNames({"K"})->Arg(1)->Arg(20)->UseRealTime();

}  // namespace
}  // namespace convnet

BENCHMARK_MAIN();
