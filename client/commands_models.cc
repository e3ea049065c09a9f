// convnet_client models: the model repository; model NAME[/VERSION]: one
// model's versions in detail (and their parameters with --parameters).
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/flags.h"
#include "client/format.h"
#include "client/json.h"
#include "client/parameter_layout.h"
#include "client/table.h"

ABSL_FLAG(
    bool, parameters, false,
    "model: include the parameters (export; with --json, every value in NETWORK.md's layout)");

namespace convnet::client {
namespace {

std::string LastAccuracy(const convnet::v1::ModelVersion& version) {
  const auto& epochs = version.training().epochs();
  if (epochs.empty() || epochs.rbegin()->test_examples() == 0) return "-";
  return FormatPercent(epochs.rbegin()->test_accuracy());
}

std::string DescribeVersion(const std::string& model, const convnet::v1::ModelVersion& version) {
  std::string text = absl::StrFormat("%s/%d  K=%d, %d parameters, created %s\n", model,
                                     version.version(), version.feature_maps(),
                                     version.parameter_count(),
                                     FormatTimestamp(version.created_unix_ms()));
  const auto& training = version.training();
  if (!training.trained()) {
    absl::StrAppendFormat(&text, "  initial parameters (not trained), seed %d\n",
                          training.init_seed());
  } else {
    absl::StrAppendFormat(
        &text, "  trained on %s (%d examples), %s\n", training.train_dataset(),
        training.train_examples(),
        training.init_from().empty()
            ? absl::StrFormat("from a fresh network (seed %d)", training.init_seed())
            : absl::StrCat("starting from ", training.init_from()));
    absl::StrAppendFormat(&text, "  %s\n", FormatHyperparameters(training.hyperparameters()));
    for (const auto& epoch : training.epochs()) {
      absl::StrAppendFormat(&text, "  %s\n",
                            FormatEpoch(epoch, training.hyperparameters().epochs()));
    }
  }
  if (version.has_parameters()) {
    const auto& values = version.parameters().values();
    absl::Span<const float> span(values.data(), values.size());
    for (const BlockSummary& block : SummarizeBlocks(version.feature_maps(), span)) {
      absl::StrAppendFormat(&text, "  %-2s %6d values  |w| %.4f  max |w| %.4f at %s\n", block.name,
                            block.size, block.l2_norm, block.max_abs, block.max_abs_at);
    }
  }
  return text;
}

}  // namespace

int RunModels(Connection& connection, const Arguments& arguments) {
  if (!arguments.empty()) {
    return UsageError("models", "no arguments (use `model NAME` for one model)");
  }
  // Every page, joined into one response: a model split across two pages
  // (its versions did not fit in one) becomes one entry again.
  convnet::v1::ListModelsResponse response;
  convnet::v1::ListModelsRequest request;
  do {
    convnet::v1::ListModelsResponse page;
    auto context = connection.NewCallContext();
    grpc::Status status = connection.stub().ListModels(context.get(), request, &page);
    if (!status.ok()) return connection.ReportError("ListModels", status);
    for (auto& model : *page.mutable_models()) {
      const int last = response.models_size() - 1;
      if (last >= 0 && response.models(last).name() == model.name()) {
        convnet::v1::Model* joined = response.mutable_models(last);
        joined->set_latest_version(model.latest_version());
        for (auto& version : *model.mutable_versions()) *joined->add_versions() = std::move(version);
      } else {
        *response.add_models() = std::move(model);
      }
    }
    request.set_page_token(page.next_page_token());
  } while (!request.page_token().empty());
  if (absl::GetFlag(FLAGS_json)) {
    absl::PrintF("%s\n", ProtoToJson(response));
    return kExitOk;
  }
  if (response.models().empty()) {
    absl::PrintF("no models yet (train one: convnet_client train --model=NAME --wait)\n");
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"MODEL", "LATEST", "VERSIONS", "K", "TRAINED ON", "EPOCHS", "TEST ACCURACY", "CREATED"}};
  for (const auto& model : response.models()) {
    const convnet::v1::ModelVersion* latest = nullptr;
    for (const auto& version : model.versions()) {
      if (version.version() == model.latest_version()) latest = &version;
    }
    if (latest == nullptr) {
      rows.push_back({model.name(), absl::StrCat(model.latest_version()),
                      absl::StrCat(model.versions_size()), "-", "-", "-", "-", "-"});
      continue;
    }
    const auto& training = latest->training();
    rows.push_back({model.name(), absl::StrCat(model.latest_version()),
                    absl::StrCat(model.versions_size()), absl::StrCat(latest->feature_maps()),
                    training.trained() ? training.train_dataset() : "(untrained)",
                    absl::StrCat(training.epochs_size()), LastAccuracy(*latest),
                    FormatTimestamp(latest->created_unix_ms())});
  }
  PrintTable(rows);
  return kExitOk;
}

int RunModel(Connection& connection, const Arguments& arguments) {
  if (arguments.size() != 1) return UsageError("model", "expected one NAME or NAME/VERSION");
  std::vector<std::string> parts = absl::StrSplit(arguments[0], '/');
  convnet::v1::GetModelRequest request;
  request.set_model_name(parts[0]);
  int64_t version = absl::GetFlag(FLAGS_version);
  if (parts.size() > 2 ||
      (parts.size() == 2 && (!absl::SimpleAtoi(parts[1], &version) || version < 1))) {
    return UsageError("model",
                      absl::StrFormat("\"%s\": expected NAME or NAME/VERSION", arguments[0]));
  }
  request.set_version(version);
  request.set_include_parameters(absl::GetFlag(FLAGS_parameters));

  // Every page of the versions, joined into one response.
  convnet::v1::GetModelResponse response;
  do {
    convnet::v1::GetModelResponse page;
    auto context = connection.NewCallContext();
    grpc::Status status = connection.stub().GetModel(context.get(), request, &page);
    if (!status.ok()) return connection.ReportError("GetModel", status);
    const bool first_page = request.page_token().empty();
    request.set_page_token(page.next_page_token());
    if (first_page) {
      response = std::move(page);
    } else {
      response.mutable_model()->set_latest_version(page.model().latest_version());
      for (auto& version : *page.mutable_model()->mutable_versions()) {
        *response.mutable_model()->add_versions() = std::move(version);
      }
    }
  } while (!request.page_token().empty());
  response.clear_next_page_token();
  if (absl::GetFlag(FLAGS_json)) {
    absl::PrintF("%s\n", ProtoToJson(response));
    return kExitOk;
  }
  const auto& model = response.model();
  absl::PrintF("model %s: latest version %d, %d version(s) shown\n", model.name(),
               model.latest_version(), model.versions_size());
  for (const auto& model_version : model.versions()) {
    absl::PrintF("%s", DescribeVersion(model.name(), model_version));
  }
  return kExitOk;
}

}  // namespace convnet::client
