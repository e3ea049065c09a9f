// Throughput of the core on the bundled MNIST: training samples/s and
// inference images/s, for K maps, a mini-batch or batch size, and a thread count.
//
//   build/bench/core_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// items_per_second is samples/s (training) or images/s (inference).
#include <cstdlib>
#include <iostream>

#include "benchmark/benchmark.h"
#include "core/dataset.h"
#include "core/image_batch.h"
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
