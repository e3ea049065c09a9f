// convnet_client train: submit a training job (and follow it with --wait);
// convnet_client watch ID: follow a job already submitted.
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/flags.h"
#include "client/format.h"
#include "client/images.h"
#include "client/job_watch.h"
#include "client/json.h"

ABSL_FLAG(int32_t, maps, 1, "train: K, the number of feature maps of a fresh network (1..64)");
ABSL_FLAG(
    std::string, init_from, "",
    "train: start from an existing version, NAME or NAME/VERSION, instead of a fresh network");
ABSL_FLAG(std::string, dataset, "mnist",
          "train: server-side training dataset (ignored when --images sends examples inline)");
ABSL_FLAG(std::string, eval_dataset, "",
          "train: server-side evaluation dataset; default: --dataset's test split (none for "
          "inline examples); \"none\" = no evaluation");
ABSL_FLAG(int32_t, epochs, 1, "train: passes over the training set");
ABSL_FLAG(int32_t, batch_size, 10, "train: mini-batch size");
ABSL_FLAG(double, learning_rate, 0.5, "train: learning rate eta");
ABSL_FLAG(double, l2, 0.0, "train: L2 regularisation strength lambda");
ABSL_FLAG(uint64_t, seed, 1, "train: seed of the initialisation and the shuffle order");
ABSL_FLAG(int32_t, progress_every, 0,
          "train: progress updates every this many samples (0 = the server's default)");
ABSL_FLAG(bool, wait, false,
          "train: follow the job to its end (progress bar, a line per epoch); exit status 4 if it "
          "fails or is cancelled");

namespace convnet::client {
namespace {

// Parses "NAME" or "NAME/VERSION".
absl::StatusOr<convnet::v1::ModelVersionRef> ParseVersionRef(absl::string_view text) {
  convnet::v1::ModelVersionRef ref;
  std::vector<std::string> parts = absl::StrSplit(text, '/');
  int64_t version = 0;
  if (parts.size() > 2 || parts[0].empty() ||
      (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &version) || version < 1))) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--init_from=%s: expected NAME or NAME/VERSION (a version number from 1)", text));
  }
  ref.set_model_name(parts[0]);
  ref.set_version(version);
  return ref;
}

}  // namespace

int RunTrain(Connection& connection, const Arguments& arguments) {
  if (!arguments.empty()) {
    return UsageError("train", absl::StrFormat("unexpected argument \"%s\"", arguments[0]));
  }
  // Training adds a version to a model: which one is never guessed (--model's
  // default serves the reading commands).
  if (absl::GetFlag(FLAGS_model).empty()) {
    return UsageError("train", "--model=NAME is required: the model the new version is added to");
  }
  convnet::v1::TrainRequest request;
  request.set_model_name(absl::GetFlag(FLAGS_model));

  const std::string init_from = absl::GetFlag(FLAGS_init_from);
  if (init_from.empty()) {
    request.set_feature_maps(absl::GetFlag(FLAGS_maps));
  } else {
    absl::StatusOr<convnet::v1::ModelVersionRef> ref = ParseVersionRef(init_from);
    if (!ref.ok()) return UsageError("train", ref.status().message());
    *request.mutable_init_from() = *std::move(ref);
  }

  const bool inline_examples = !absl::GetFlag(FLAGS_images).empty();
  const std::string dataset = absl::GetFlag(FLAGS_dataset);
  if (inline_examples) {
    absl::StatusOr<std::vector<InputImage>> images = LoadInputImages({}, LabelsNeeded::kRequired);
    if (!images.ok()) return UsageError("train", images.status().message());
    auto* examples = request.mutable_train_examples();
    for (const InputImage& image : *images) {
      auto* example = examples->add_examples();
      *example->mutable_image() = ToProtoImage(image);
      example->set_label(*image.label);
    }
  } else {
    request.set_train_dataset(dataset);
  }
  std::string eval_dataset = absl::GetFlag(FLAGS_eval_dataset);
  if (eval_dataset.empty() && !inline_examples) eval_dataset = dataset;
  if (!eval_dataset.empty() && eval_dataset != "none") request.set_eval_dataset(eval_dataset);

  absl::StatusOr<convnet::v1::Cost> cost = ParseCost(absl::GetFlag(FLAGS_cost));
  if (!cost.ok()) return UsageError("train", cost.status().message());
  auto* hyperparameters = request.mutable_hyperparameters();
  hyperparameters->set_epochs(absl::GetFlag(FLAGS_epochs));
  hyperparameters->set_batch_size(absl::GetFlag(FLAGS_batch_size));
  hyperparameters->set_learning_rate(absl::GetFlag(FLAGS_learning_rate));
  hyperparameters->set_l2(absl::GetFlag(FLAGS_l2));
  hyperparameters->set_cost(*cost);
  hyperparameters->set_seed(absl::GetFlag(FLAGS_seed));
  hyperparameters->set_progress_every(absl::GetFlag(FLAGS_progress_every));

  convnet::v1::TrainResponse response;
  auto context = connection.NewCallContext();
  grpc::Status status = connection.stub().Train(context.get(), request, &response);
  if (!status.ok()) return connection.ReportError("Train", status);

  const bool json = absl::GetFlag(FLAGS_json);
  if (absl::GetFlag(FLAGS_wait)) return WatchJob(connection, response.job_id(), json);
  if (json) {
    absl::PrintF("%s\n", ProtoToJson(response));
  } else {
    absl::PrintF("submitted job %s (model %s, %s)\nfollow it with: convnet_client watch %s\n",
                 response.job_id(), response.job().model_name(),
                 JobStateName(response.job().state()), response.job_id());
  }
  return kExitOk;
}

int RunWatch(Connection& connection, const Arguments& arguments) {
  if (arguments.size() != 1) return UsageError("watch", "expected one job ID");
  return WatchJob(connection, arguments[0], absl::GetFlag(FLAGS_json));
}

}  // namespace convnet::client
