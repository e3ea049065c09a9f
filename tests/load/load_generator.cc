#include "load_generator.h"

#include <algorithm>
#include <functional>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"
#include "response_checks.h"

namespace convnet::load_testing {

LoadGenerator::LoadGenerator(LoadOptions options, ReferenceModels& reference, CallLog& log)
    : options_(std::move(options)), reference_(reference), log_(log), versions_(options_.initial_versions) {
  std::sort(versions_.begin(), versions_.end());
  for (int i = 0; i < options_.channels; ++i) {
    grpc::ChannelArguments arguments;
    // Channels with equal arguments share one connection (gRPC's global
    // subchannel pool); a local pool per channel gives each its own.
    arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    arguments.SetMaxReceiveMessageSize(-1);
    channels_.push_back(
        grpc::CreateCustomChannel(options_.target, grpc::InsecureChannelCredentials(), arguments));
    stubs_.push_back(v1::ConvNet::NewStub(channels_.back()));
  }
}

LoadGenerator::~LoadGenerator() { Stop(); }

void LoadGenerator::Start() {
  for (int client = 0; client < options_.clients; ++client) {
    v1::ConvNet::Stub& stub = *stubs_[client % stubs_.size()];
    threads_.emplace_back([this, client, &stub] { RunClient(client, stub); });
  }
}

void LoadGenerator::Stop() {
  stop_.store(true);
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
}

std::vector<int64_t> LoadGenerator::VersionsSeen() const {
  absl::MutexLock lock(&mutex_);
  return versions_;
}

int64_t LoadGenerator::PickVersion(uint64_t random) const {
  absl::MutexLock lock(&mutex_);
  return versions_[random % versions_.size()];
}

void LoadGenerator::AddVersion(int64_t version) {
  absl::MutexLock lock(&mutex_);
  if (std::find(versions_.begin(), versions_.end(), version) != versions_.end()) return;
  versions_.push_back(version);
  std::sort(versions_.begin(), versions_.end());
}

void LoadGenerator::NoteAnswer(int64_t version) {
  AddVersion(version);
  absl::MutexLock lock(&mutex_);
  ++answered_[version];
}

std::map<int64_t, int64_t> LoadGenerator::AnsweredByVersion() const {
  absl::MutexLock lock(&mutex_);
  return answered_;
}

bool LoadGenerator::Finish(const std::string& method, const std::string& request_text, const grpc::Status& status,
                           absl::Time start) {
  const absl::Time end = absl::Now();
  log_.Record(method, status, start, end);
  if (!options_.allowed_codes.contains(status.error_code()) && !status.ok()) {
    log_.AddProblem(absl::StrCat(method, " (", request_text, "): ", CodeName(status.error_code()), ": ",
                                 status.error_message(), " after ", absl::FormatDuration(end - start)));
  }
  if (!status.ok()) absl::SleepFor(options_.pause_after_error);
  return status.ok();
}

void LoadGenerator::CheckAgainstReference(const std::string& method, int64_t version,
                                          const std::string& request_text,
                                          const std::function<absl::Status(const VersionReference&)>& check) {
  absl::StatusOr<std::shared_ptr<const VersionReference>> reference = reference_.Get(version);
  absl::Status checked = reference.ok() ? check(**reference) : reference.status();
  if (!checked.ok()) log_.AddProblem(absl::StrCat(method, " (", request_text, "): ", checked.message()));
}

void LoadGenerator::RunClient(int client, v1::ConvNet::Stub& stub) {
  std::mt19937_64 random(0x5eed0000u + static_cast<uint64_t>(client));
  const Dataset& images = reference_.images();
  std::uniform_int_distribution<size_t> pick_image(0, images.size() - 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<size_t> indices;
  while (!stop_.load()) {
    const bool predict = unit(random) < options_.predict_share;
    const int64_t asked_version = unit(random) < options_.latest_share ? 0 : PickVersion(random());
    const int most = predict ? options_.max_predict_images : options_.max_gradient_examples;
    indices.resize(std::uniform_int_distribution<int>(1, most)(random));
    for (size_t& index : indices) index = pick_image(random);
    const std::string request_text = absl::StrCat("client ", client, ", version ", asked_version, ", ",
                                                  indices.size(), predict ? " images" : " examples");
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + options_.call_timeout));
    int64_t answered_version = 0;
    if (predict) {
      v1::PredictRequest request;
      request.set_model_name(options_.model_name);
      request.set_version(asked_version);
      for (size_t index : indices) {
        absl::Span<const uint8_t> pixels = images.image(index);
        request.add_images()->set_pixels(pixels.data(), pixels.size());
      }
      v1::PredictResponse response;
      const absl::Time start = absl::Now();
      const grpc::Status status = stub.Predict(&context, request, &response);
      if (!Finish("Predict", request_text, status, start)) continue;
      answered_version = response.version();
      NoteAnswer(answered_version);
      CheckAgainstReference("Predict", response.version(), request_text, [&](const VersionReference& reference) {
        return CheckPredictResponse(reference, indices, response);
      });
    } else {
      v1::GetGradientsRequest request;
      request.mutable_model()->set_model_name(options_.model_name);
      request.mutable_model()->set_version(asked_version);
      request.set_cost(v1::COST_CROSS_ENTROPY);
      for (size_t index : indices) {
        v1::Example* example = request.add_examples();
        absl::Span<const uint8_t> pixels = images.image(index);
        example->mutable_image()->set_pixels(pixels.data(), pixels.size());
        example->set_label(images.labels[index]);
      }
      v1::GetGradientsResponse response;
      const absl::Time start = absl::Now();
      const grpc::Status status = stub.GetGradients(&context, request, &response);
      if (!Finish("GetGradients", request_text, status, start)) continue;
      answered_version = response.version();
      NoteAnswer(answered_version);
      CheckAgainstReference("GetGradients", response.version(), request_text,
                            [&](const VersionReference& reference) {
                              return CheckGradientsResponse(reference, images, indices, response);
                            });
    }
    if (asked_version != 0 && answered_version != asked_version) {
      log_.AddProblem(absl::StrCat(predict ? "Predict" : "GetGradients", " (", request_text,
                                   "): answered by version ", answered_version));
    }
    images_checked_.fetch_add(static_cast<int64_t>(indices.size()));
  }
}

}  // namespace convnet::load_testing
