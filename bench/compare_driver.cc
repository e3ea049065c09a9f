// The convnet side of bench/compare_pytorch: exports what the PyTorch side
// needs to start from the same point (initial parameters, the trainer's data
// order) and measures convnet's core on the same work. Every command that
// measures prints one line of JSON on stdout.
//
//   compare_driver init     --k=K --seed=S --out=params.f32
//   compare_driver order    --n=N --epochs=E --seed=S --out=order.u32
//   compare_driver gradient --params=params.f32 --k=K --order=order.u32 --examples=M --out=grad.f32
//   compare_driver train    --params=params.f32 --k=K --n=N --batch=M --threads=T [--evaluate]
//   compare_driver predict  --params=params.f32 --k=K --n=N --batch=B --threads=T
//
// File formats (all little-endian, no header):
//   *.f32  float32 values in the flat layout of NETWORK.md ("Parameter layout"):
//          w1 [K][5][5], b1 [K], w3 [10][K][12][12] (index order l, f, j, k), b3 [10].
//          numpy: np.fromfile(path, dtype="<f4").
//   *.u32  uint32 training-set indices: E permutations of 0..N-1, one after the
//          other, exactly the order in which Train() visits the examples in
//          epochs 1..E (the trainer shuffles one index array in place with
//          Random(seed) at the start of every epoch; core/random.h).
//
// The training set of `train` and `order` is the first N examples of the
// bundled MNIST training set; `predict` uses the first N test images.
#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/dataset.h"
#include "core/image_batch.h"
#include "core/network.h"
#include "core/parameters.h"
#include "core/random.h"
#include "core/thread_pool.h"
#include "core/trainer.h"

ABSL_FLAG(std::string, data, std::string(CONVNET_DATA_DIR) + "/mnist", "MNIST directory");
ABSL_FLAG(int, k, 1, "feature maps K");
ABSL_FLAG(uint64_t, seed, 1, "init: initialisation seed; order/train: the trainer's shuffle seed");
ABSL_FLAG(std::string, out, "", "output file (init, order, gradient); train: final parameters");
ABSL_FLAG(std::string, params, "", "initial parameters (.f32, NETWORK.md layout)");
ABSL_FLAG(std::string, order, "", "gradient: index file whose first --examples entries form the batch");
ABSL_FLAG(int64_t, n, 60000, "training examples (train, order) or test images (predict)");
ABSL_FLAG(int, epochs, 1, "order: permutations to write; train --evaluate: epochs to train");
ABSL_FLAG(int, examples, 10, "gradient: mini-batch size");
ABSL_FLAG(int, batch, 10, "train: mini-batch size; predict: images per Predict call");
ABSL_FLAG(double, lr, 0.5, "train: learning rate eta");
ABSL_FLAG(int, threads, 1, "ThreadPool size (the caller included)");
ABSL_FLAG(int, repeats, 1, "speed measurements to take (after one warm-up)");
ABSL_FLAG(double, min_seconds, 0.5, "each speed measurement repeats whole passes until it lasts this long");
ABSL_FLAG(bool, evaluate, false, "train: train --epochs epochs and report test accuracy per epoch "
                                 "instead of measuring speed");

namespace convnet {
namespace {

static_assert(std::endian::native == std::endian::little, "the .f32/.u32 files are little-endian");

template <typename T>
absl::Status WriteRaw(const std::string& path, const T* data, size_t count) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(count * sizeof(T)));
  out.close();
  if (!out) return absl::InternalError(absl::StrFormat("cannot write %s", path));
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<std::vector<T>> ReadRaw(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrFormat("cannot open %s", path));
  const auto bytes = static_cast<size_t>(in.tellg());
  if (bytes % sizeof(T) != 0) {
    return absl::DataLossError(absl::StrFormat("%s: %d bytes is not a whole number of values", path, bytes));
  }
  std::vector<T> values(bytes / sizeof(T));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(values.data()), static_cast<std::streamsize>(bytes));
  if (!in) return absl::DataLossError(absl::StrFormat("cannot read %s", path));
  return values;
}

absl::StatusOr<Parameters> ReadParameters(const std::string& path, int k) {
  auto flat = ReadRaw<float>(path);
  if (!flat.ok()) return flat.status();
  return Parameters::FromFlat(k, *flat);
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// Runs `pass` (which processes `items_per_pass` items) once to warm up, picks
// the number of passes that lasts about --min_seconds, then takes --repeats
// measurements of that many passes. Returns items/s per measurement.
template <typename Pass>
std::vector<double> MeasureRate(double items_per_pass, Pass pass) {
  const auto warm_start = std::chrono::steady_clock::now();
  pass(1);
  const double warm = std::max(Seconds(warm_start), 1e-6);
  const int passes = std::clamp(static_cast<int>(std::ceil(absl::GetFlag(FLAGS_min_seconds) / warm)), 1, 1000);
  std::vector<double> rates;
  for (int r = 0; r < std::max(1, absl::GetFlag(FLAGS_repeats)); ++r) {
    const auto start = std::chrono::steady_clock::now();
    pass(passes);
    rates.push_back(items_per_pass * passes / Seconds(start));
  }
  return rates;
}

std::string JsonList(const std::vector<double>& values) {
  std::string out = "[";
  for (size_t i = 0; i < values.size(); ++i) absl::StrAppendFormat(&out, "%s%.6g", i > 0 ? ", " : "", values[i]);
  out += "]";
  return out;
}

absl::StatusOr<MnistDirectory> LoadMnist() { return LoadMnistDirectory(absl::GetFlag(FLAGS_data)); }

absl::Status RunInit() {
  auto params = Parameters::Initialize(absl::GetFlag(FLAGS_k), absl::GetFlag(FLAGS_seed));
  if (!params.ok()) return params.status();
  return WriteRaw(absl::GetFlag(FLAGS_out), params->flat().data(), params->size());
}

// The trainer's order (trainer.cc): iota, then one in-place Random(seed).Shuffle per epoch.
absl::Status RunOrder() {
  const auto n = static_cast<size_t>(absl::GetFlag(FLAGS_n));
  std::vector<uint32_t> order(n), all;
  std::iota(order.begin(), order.end(), 0u);
  Random random(absl::GetFlag(FLAGS_seed));
  for (int epoch = 1; epoch <= absl::GetFlag(FLAGS_epochs); ++epoch) {
    random.Shuffle(order.data(), n);
    all.insert(all.end(), order.begin(), order.end());
  }
  return WriteRaw(absl::GetFlag(FLAGS_out), all.data(), all.size());
}

absl::Status RunGradient() {
  const int k = absl::GetFlag(FLAGS_k);
  auto params = ReadParameters(absl::GetFlag(FLAGS_params), k);
  if (!params.ok()) return params.status();
  auto order = ReadRaw<uint32_t>(absl::GetFlag(FLAGS_order));
  if (!order.ok()) return order.status();
  auto mnist = LoadMnist();
  if (!mnist.ok()) return mnist.status();
  const auto m = static_cast<size_t>(absl::GetFlag(FLAGS_examples));
  if (order->size() < m) return absl::InvalidArgumentError("the order file holds fewer than --examples indices");
  std::vector<uint8_t> pixels, labels;
  for (size_t e = 0; e < m; ++e) {
    const uint32_t i = (*order)[e];
    if (i >= mnist->train.size()) return absl::InvalidArgumentError(absl::StrFormat("index %d out of range", i));
    const auto image = mnist->train.image(i);
    pixels.insert(pixels.end(), image.begin(), image.end());
    labels.push_back(mnist->train.labels[i]);
  }
  auto gradient = ComputeGradient(*params, ImageBatch::FromPixels(pixels), labels, Cost::kCrossEntropy, nullptr);
  if (!gradient.ok()) return gradient.status();
  if (auto s = WriteRaw(absl::GetFlag(FLAGS_out), gradient->gradient.data(), gradient->gradient.size()); !s.ok()) {
    return s;
  }
  std::cout << absl::StrFormat("{\"k\": %d, \"examples\": %d, \"mean_cost\": %.10g}\n", k, m, gradient->mean_cost);
  return absl::OkStatus();
}

absl::Status RunTrain() {
  const int k = absl::GetFlag(FLAGS_k);
  auto params = ReadParameters(absl::GetFlag(FLAGS_params), k);
  if (!params.ok()) return params.status();
  auto mnist = LoadMnist();
  if (!mnist.ok()) return mnist.status();
  const Dataset train = mnist->train.Prefix(static_cast<size_t>(absl::GetFlag(FLAGS_n)));
  const int threads = absl::GetFlag(FLAGS_threads);
  ThreadPool pool(threads);
  TrainOptions options;
  options.batch_size = absl::GetFlag(FLAGS_batch);
  options.learning_rate = absl::GetFlag(FLAGS_lr);
  options.l2 = 0.0;
  options.cost = Cost::kCrossEntropy;
  options.seed = absl::GetFlag(FLAGS_seed);
  options.progress_every = 0;

  if (absl::GetFlag(FLAGS_evaluate)) {
    options.epochs = absl::GetFlag(FLAGS_epochs);
    std::vector<std::string> epochs;
    TrainCallbacks callbacks;
    callbacks.on_epoch = [&](const EpochMetrics& m) {
      epochs.push_back(absl::StrFormat(
          "{\"epoch\": %d, \"train_cost\": %.8g, \"test_accuracy\": %.6f, \"test_cost\": %.8g, \"seconds\": %.4f}",
          m.epoch, m.train_cost, m.test_accuracy, m.test_cost, m.seconds));
    };
    auto result = Train(*params, train, &mnist->test, options, &pool, callbacks);
    if (!result.ok()) return result.status();
    if (const std::string out = absl::GetFlag(FLAGS_out); !out.empty()) {
      if (auto s = WriteRaw(out, result->parameters.flat().data(), result->parameters.size()); !s.ok()) return s;
    }
    std::cout << absl::StrFormat("{\"k\": %d, \"n\": %d, \"batch\": %d, \"threads\": %d, \"epochs\": [%s]}\n", k,
                                 train.size(), options.batch_size, threads, absl::StrJoin(epochs, ", "));
    return absl::OkStatus();
  }

  absl::Status failure;
  const std::vector<double> rates = MeasureRate(static_cast<double>(train.size()), [&](int passes) {
    options.epochs = passes;
    auto result = Train(*params, train, nullptr, options, &pool);
    if (!result.ok()) failure = result.status();
  });
  if (!failure.ok()) return failure;
  std::cout << absl::StrFormat(
      "{\"k\": %d, \"n\": %d, \"batch\": %d, \"threads\": %d, \"samples_per_second\": %s, \"median\": %.6g}\n", k,
      train.size(), options.batch_size, threads, JsonList(rates), Median(rates));
  return absl::OkStatus();
}

absl::Status RunPredict() {
  const int k = absl::GetFlag(FLAGS_k);
  auto params = ReadParameters(absl::GetFlag(FLAGS_params), k);
  if (!params.ok()) return params.status();
  auto mnist = LoadMnist();
  if (!mnist.ok()) return mnist.status();
  const auto batch = static_cast<size_t>(std::max(1, absl::GetFlag(FLAGS_batch)));
  const size_t n = std::min(static_cast<size_t>(absl::GetFlag(FLAGS_n)), mnist->test.size()) / batch * batch;
  if (n == 0) return absl::InvalidArgumentError("--n must hold at least one whole batch of test images");
  const int threads = absl::GetFlag(FLAGS_threads);
  ThreadPool pool(threads);
  const auto pixels = absl::MakeConstSpan(mnist->test.images);
  absl::Status failure;
  int64_t checksum = 0;  // keeps the predictions observable
  const std::vector<double> rates = MeasureRate(static_cast<double>(n), [&](int passes) {
    for (int p = 0; p < passes; ++p) {
      for (size_t offset = 0; offset < n; offset += batch) {
        auto predictions =
            Predict(*params, ImageBatch::FromPixels(pixels.subspan(offset * kPixels, batch * kPixels)), &pool);
        if (!predictions.ok()) {
          failure = predictions.status();
          return;
        }
        checksum += (*predictions)[0].predicted_class;
      }
    }
  });
  if (!failure.ok()) return failure;
  std::cout << absl::StrFormat(
      "{\"k\": %d, \"n\": %d, \"batch\": %d, \"threads\": %d, \"images_per_second\": %s, \"median\": %.6g, "
      "\"checksum\": %d}\n",
      k, n, batch, threads, JsonList(rates), Median(rates), checksum);
  return absl::OkStatus();
}

}  // namespace
}  // namespace convnet

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("compare_driver init|order|gradient|train|predict [--flags]; see bench/compare_driver.cc");
  const std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::cerr << "usage: compare_driver init|order|gradient|train|predict [--flags]\n";
    return 2;
  }
  const std::string command = args[1];
  absl::Status status;
  if (command == "init") {
    status = convnet::RunInit();
  } else if (command == "order") {
    status = convnet::RunOrder();
  } else if (command == "gradient") {
    status = convnet::RunGradient();
  } else if (command == "train") {
    status = convnet::RunTrain();
  } else if (command == "predict") {
    status = convnet::RunPredict();
  } else {
    std::cerr << "unknown command '" << command << "'\n";
    return 2;
  }
  if (!status.ok()) {
    std::cerr << "compare_driver " << command << ": " << status << "\n";
    return 1;
  }
  return 0;
}
