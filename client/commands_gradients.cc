// convnet_client gradients: the exact gradient of the mean cost over labelled
// examples, at a stored model version or at parameters read from a file.
#include <cmath>
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/flags.h"
#include "client/format.h"
#include "client/images.h"
#include "client/json.h"
#include "client/parameter_layout.h"
#include "core/file_util.h"
#include "google/protobuf/util/json_util.h"

ABSL_FLAG(std::string, parameters_file, "",
          "gradients: differentiate at these parameters instead of --model: a JSON export "
          "(`convnet_client model NAME/VERSION --parameters --json`) or "
          "{\"feature_maps\": K, \"values\": [...]}");
ABSL_FLAG(bool, deltas, false,
          "gradients: also ask for the per-example deltas (always on with --json)");

namespace convnet::client {
namespace {

// Reads inline parameters from a GetModel export (its first version) or a
// bare Parameters message, both as proto3 JSON.
absl::StatusOr<convnet::v1::Parameters> ReadParametersFile(const std::string& path) {
  absl::StatusOr<std::string> contents = ReadFile(path);
  if (!contents.ok()) return contents.status();
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  convnet::v1::GetModelResponse export_response;
  if (google::protobuf::util::JsonStringToMessage(*contents, &export_response, options).ok() &&
      export_response.has_model()) {
    for (const auto& version : export_response.model().versions()) {
      if (version.has_parameters()) return version.parameters();
    }
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        ": the export holds no parameters (export with `model NAME/VERSION --parameters --json`)"));
  }
  convnet::v1::Parameters parameters;
  if (auto status =
          google::protobuf::util::JsonStringToMessage(*contents, &parameters, options);
      !status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": neither a GetModel export nor {\"feature_maps\", \"values\"} JSON: ",
        status.ToString()));
  }
  return parameters;
}

}  // namespace

int RunGradients(Connection& connection, const Arguments& arguments) {
  if (!arguments.empty()) {
    return UsageError("gradients", absl::StrFormat("unexpected argument \"%s\"", arguments[0]));
  }
  absl::StatusOr<std::vector<InputImage>> images = LoadInputImages({}, LabelsNeeded::kRequired);
  if (!images.ok()) return UsageError("gradients", images.status().message());
  absl::StatusOr<convnet::v1::Cost> cost = ParseCost(absl::GetFlag(FLAGS_cost));
  if (!cost.ok()) return UsageError("gradients", cost.status().message());
  const bool json = absl::GetFlag(FLAGS_json);

  convnet::v1::GetGradientsRequest request;
  for (const InputImage& image : *images) {
    auto* example = request.add_examples();
    *example->mutable_image() = ToProtoImage(image);
    example->set_label(*image.label);
  }
  const std::string parameters_file = absl::GetFlag(FLAGS_parameters_file);
  if (parameters_file.empty()) {
    request.mutable_model()->set_model_name(ModelFlag());
    request.mutable_model()->set_version(absl::GetFlag(FLAGS_version));
  } else {
    absl::StatusOr<convnet::v1::Parameters> parameters = ReadParametersFile(parameters_file);
    if (!parameters.ok()) return UsageError("gradients", parameters.status().message());
    *request.mutable_parameters() = *std::move(parameters);
  }
  request.set_cost(*cost);
  request.set_include_deltas(json || absl::GetFlag(FLAGS_deltas));

  convnet::v1::GetGradientsResponse response;
  auto context = connection.NewCallContext();
  grpc::Status status = connection.stub().GetGradients(context.get(), request, &response);
  if (!status.ok()) return connection.ReportError("GetGradients", status);
  if (json) {
    absl::PrintF("%s\n", ProtoToJson(response));
    return kExitOk;
  }

  const int k = response.feature_maps();
  const std::string at = response.model_name().empty()
                             ? absl::StrCat("the parameters of ", parameters_file)
                             : absl::StrFormat("%s version %d", response.model_name(),
                                               response.version());
  absl::PrintF("gradient of the mean %s cost over %d example(s) at %s (K=%d, %d parameters)\n",
               CostName(*cost), images->size(), at, k, response.gradient_size());
  for (size_t i = 0; i < images->size(); ++i) {
    const InputImage& image = (*images)[i];
    absl::PrintF("  %s  label %d  predicted %s  cost %.6f\n", image.source, *image.label,
                 static_cast<int>(i) < response.predicted_classes_size()
                     ? absl::StrCat(response.predicted_classes(i))
                     : "?",
                 static_cast<int>(i) < response.costs_size() ? response.costs(i) : 0.0);
  }
  absl::PrintF("mean cost %.6f\n", response.mean_cost());
  absl::Span<const float> gradient(response.gradient().data(), response.gradient_size());
  const BlockSummary all = SummarizeAll(k, gradient);
  absl::PrintF("gradient: |g| %.6g, max |g_i| %.6g at %s\n", all.l2_norm, all.max_abs,
               all.max_abs_at);
  for (const BlockSummary& block : SummarizeBlocks(k, gradient)) {
    absl::PrintF("  %-2s %6d values  |g| %.6g  max |g_i| %.6g at %s\n", block.name, block.size,
                 block.l2_norm, block.max_abs, block.max_abs_at);
  }
  for (int i = 0; i < response.deltas_size(); ++i) {
    const auto& deltas = response.deltas(i);
    int routed = 0;
    for (char bit : deltas.argmax_mask()) routed += bit != 0;
    absl::Span<const float> delta1(deltas.delta1().data(), deltas.delta1_size());
    double delta1_norm = 0;
    for (float value : delta1) delta1_norm += static_cast<double>(value) * value;
    std::string delta3;
    for (float value : deltas.delta3()) absl::StrAppendFormat(&delta3, " %.3g", value);
    absl::PrintF("  example %d: delta3 [%s ], |delta1| %.6g, %d pool argmax positions\n", i,
                 delta3, std::sqrt(delta1_norm), routed);
  }
  return kExitOk;
}

}  // namespace convnet::client
