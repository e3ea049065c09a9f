// Writes the seed corpora of the fuzz targets: small valid IDX files (plain
// and gzip), valid model files and valid serialized requests (with the request
// fuzzer's selector byte). Usage: make_seeds OUTPUT_DIR; it creates
// OUTPUT_DIR/<target>/<seed> for each target. The committed corpora in
// tests/fuzz/corpus/ were made with it:
//   build-fuzz/tests/fuzz/make_seeds tests/fuzz/corpus
#include <zlib.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "convnet/v1/convnet.pb.h"
#include "core/idx.h"
#include "core/model_file.h"
#include "core/parameters.h"
#include "core/shape.h"
#include "fuzz_service.h"

namespace convnet::fuzz {
namespace {

void Write(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
}

std::string Gzip(const std::string& bytes) {
  z_stream stream;
  std::memset(&stream, 0, sizeof stream);
  if (deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    std::exit(1);
  }
  std::string out(deflateBound(&stream, bytes.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  stream.avail_in = static_cast<uInt>(bytes.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  if (deflate(&stream, Z_FINISH) != Z_STREAM_END) std::exit(1);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

std::vector<uint8_t> Pixels(size_t images) {
  std::vector<uint8_t> pixels(images * kPixels);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>((i * 37) % 256);
  return pixels;
}

v1::Image PixelImage(int seed) {
  v1::Image image;
  std::string pixels(static_cast<size_t>(kPixels), '\0');
  for (int i = 0; i < kPixels; ++i) pixels[i] = static_cast<char>((i * 13 + seed) % 256);
  image.set_pixels(pixels);
  return image;
}

v1::Image FloatImage() {
  v1::Image image;
  for (int i = 0; i < kPixels; ++i) image.mutable_values()->add_values(static_cast<float>(i % 10) / 10.0f);
  return image;
}

Parameters MustInitialize(int k) {
  absl::StatusOr<Parameters> parameters = Parameters::Initialize(k, 3);
  if (!parameters.ok()) std::exit(1);
  return *std::move(parameters);
}

void WriteIdxSeeds(const std::filesystem::path& dir) {
  const std::string images = EncodeIdxImages(Pixels(2));
  const std::string labels = EncodeIdxLabels({3, 1, 4});
  Write(dir / "images.idx", images);
  Write(dir / "labels.idx", labels);
  Write(dir / "images.idx.gz", Gzip(images));
  Write(dir / "labels.idx.gz", Gzip(labels));
  Write(dir / "two-members.idx.gz", Gzip(labels.substr(0, 5)) + Gzip(labels.substr(5)));
}

void WriteModelSeeds(const std::filesystem::path& dir) {
  Write(dir / "fresh-k1.cnvn", EncodeModel(Model{MustInitialize(1), ModelMetadata{}}).value());
  Model trained{MustInitialize(2), ModelMetadata{}};
  trained.metadata.trained = true;
  trained.metadata.options.epochs = 2;
  trained.metadata.options.batch_size = 10;
  trained.metadata.options.learning_rate = 0.5;
  trained.metadata.options.cost = Cost::kCrossEntropy;
  trained.metadata.train_dataset = "mnist";
  trained.metadata.train_examples = 60000;
  trained.metadata.init_from = "mnist/1";
  trained.metadata.epochs = {EpochMetrics{1, 0.9, 0.91, 0.6, 10000, 1.5},
                             EpochMetrics{2, 0.5, 0.93, 0.4, 10000, 1.4}};
  trained.metadata.created_unix_ms = 1795847768413;
  Write(dir / "trained-k2.cnvn", EncodeModel(trained).value());
}

void WriteRequestSeeds(const std::filesystem::path& dir) {
  v1::PredictRequest predict;
  predict.set_model_name(kModelName);
  *predict.add_images() = PixelImage(0);
  Write(dir / "predict-pixels", FuzzInput(Rpc::kPredict, predict));
  predict.set_version(2);
  predict.clear_images();
  *predict.add_images() = FloatImage();
  Write(dir / "predict-values", FuzzInput(Rpc::kPredict, predict));

  v1::TrainRequest train;
  train.set_model_name(kModelName);
  train.set_feature_maps(1);
  train.set_train_dataset(kDatasetName);
  train.set_eval_dataset(kDatasetName);
  v1::Hyperparameters* hyper = train.mutable_hyperparameters();
  hyper->set_epochs(1);
  hyper->set_batch_size(10);
  hyper->set_learning_rate(0.5);
  hyper->set_cost(v1::COST_CROSS_ENTROPY);
  hyper->set_seed(7);
  Write(dir / "train-dataset", FuzzInput(Rpc::kTrain, train));
  v1::TrainRequest inline_train = train;
  inline_train.mutable_init_from()->set_model_name(kModelName);
  inline_train.mutable_init_from()->set_version(1);
  for (int i = 0; i < 4; ++i) {
    v1::Example* example = inline_train.mutable_train_examples()->add_examples();
    *example->mutable_image() = PixelImage(i);
    example->set_label(i);
  }
  v1::Example* eval = inline_train.mutable_eval_examples()->add_examples();
  *eval->mutable_image() = PixelImage(9);
  eval->set_label(9);
  inline_train.mutable_hyperparameters()->set_batch_size(2);
  inline_train.mutable_hyperparameters()->set_l2(0.001);
  inline_train.mutable_hyperparameters()->set_cost(v1::COST_QUADRATIC);
  Write(dir / "train-inline", FuzzInput(Rpc::kTrain, inline_train));

  v1::GetTrainingJobRequest get_job;
  get_job.set_job_id("1795847768413-1");
  Write(dir / "get-job", FuzzInput(Rpc::kGetTrainingJob, get_job));
  v1::ListTrainingJobsRequest list_jobs;
  list_jobs.set_model_name(kModelName);
  list_jobs.set_state(v1::JOB_STATE_CANCELLED);
  Write(dir / "list-jobs", FuzzInput(Rpc::kListTrainingJobs, list_jobs));
  v1::CancelTrainingJobRequest cancel;
  cancel.set_job_id("1795847768413-1");
  Write(dir / "cancel-job", FuzzInput(Rpc::kCancelTrainingJob, cancel));

  v1::GetGradientsRequest gradients;
  for (int i = 0; i < 2; ++i) {
    v1::Example* example = gradients.add_examples();
    *example->mutable_image() = PixelImage(i);
    example->set_label(i + 3);
  }
  gradients.mutable_model()->set_model_name(kModelName);
  gradients.mutable_model()->set_version(1);
  gradients.set_cost(v1::COST_CROSS_ENTROPY);
  gradients.set_include_deltas(true);
  Write(dir / "gradients-model", FuzzInput(Rpc::kGetGradients, gradients));
  v1::GetGradientsRequest inline_gradients;
  v1::Example* example = inline_gradients.add_examples();
  *example->mutable_image() = FloatImage();
  example->set_label(5);
  inline_gradients.mutable_parameters()->set_feature_maps(1);
  const Parameters parameters = MustInitialize(1);
  for (float value : parameters.flat()) inline_gradients.mutable_parameters()->add_values(value);
  inline_gradients.set_cost(v1::COST_QUADRATIC);
  Write(dir / "gradients-inline", FuzzInput(Rpc::kGetGradients, inline_gradients));

  Write(dir / "list-models", FuzzInput(Rpc::kListModels, v1::ListModelsRequest()));
  v1::GetModelRequest get_model;
  get_model.set_model_name(kModelName);
  get_model.set_version(1);
  get_model.set_include_parameters(true);
  Write(dir / "get-model", FuzzInput(Rpc::kGetModel, get_model));

  Write(dir / "server-stats", FuzzInput(Rpc::kGetServerStats, v1::GetServerStatsRequest()));
  v1::WatchTrainingJobRequest watch;
  watch.set_job_id(kLastJobId);
  Write(dir / "watch-last-job", FuzzInput(Rpc::kWatchTrainingJob, watch));
  watch.set_job_id("1795847768413-1");
  Write(dir / "watch-unknown-job", FuzzInput(Rpc::kWatchTrainingJob, watch));
  get_job.set_job_id(kLastJobId);
  Write(dir / "get-last-job", FuzzInput(Rpc::kGetTrainingJob, get_job));
}

}  // namespace
}  // namespace convnet::fuzz

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTPUT_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path out = argv[1];
  convnet::fuzz::WriteIdxSeeds(out / "idx_fuzzer");
  convnet::fuzz::WriteModelSeeds(out / "model_file_fuzzer");
  convnet::fuzz::WriteRequestSeeds(out / "request_fuzzer");
  return 0;
}
