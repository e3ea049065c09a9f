// convnet_client predict: classify images from an IDX file or PGM files.
#include <algorithm>
#include <cstdio>
#include <set>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/ascii_art.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/flags.h"
#include "client/images.h"
#include "client/json.h"

ABSL_FLAG(bool, ascii, false, "predict: draw each image as ASCII art beside its prediction");
ABSL_FLAG(
    bool, invert, false,
    "predict: invert PGM images (for dark digits on a light background; MNIST is light on dark)");
ABSL_FLAG(bool, summary, false,
          "predict: print only the accuracy (needs --labels), not each image");
ABSL_FLAG(int64_t, images_per_request, 256,
          "predict: images sent per Predict call (the server caps a batch with --max_batch)");

namespace convnet::client {
namespace {

struct Prediction {
  int predicted_class = 0;
  // The predicted class's output activation a3 (the outputs are independent
  // sigmoids, so this is a score in [0, 1], not a probability).
  float confidence = 0;
  std::vector<float> outputs;
  int64_t version = 0;
};

std::string Verdict(const InputImage& image, const Prediction& prediction) {
  if (!image.label) return "";
  return absl::StrFormat("label %d %s", *image.label,
                         *image.label == prediction.predicted_class ? "(correct)" : "(WRONG)");
}

void PrintText(const std::vector<InputImage>& images, const std::vector<Prediction>& predictions,
               bool ascii) {
  size_t source_width = 0;
  for (const InputImage& image : images) source_width = std::max(source_width, image.source.size());
  for (size_t i = 0; i < images.size(); ++i) {
    const InputImage& image = images[i];
    const Prediction& prediction = predictions[i];
    if (!ascii) {
      std::string line = absl::StrFormat("%-*s  class %d  confidence %.3f", source_width,
                                         image.source, prediction.predicted_class,
                                         prediction.confidence);
      if (image.label) absl::StrAppend(&line, "  ", Verdict(image, prediction));
      absl::PrintF("%s\n", line);
      continue;
    }
    std::vector<std::string> notes = {
        image.source,
        absl::StrFormat("predicted class: %d", prediction.predicted_class),
        absl::StrFormat("confidence:      %.3f", prediction.confidence),
        Verdict(image, prediction),
    };
    const std::vector<std::string> art = RenderAsciiArt(image.pixels);
    std::string edge(art[0].size() + 2, '-');
    edge.front() = edge.back() = '+';
    absl::PrintF("%s\n", edge);
    for (size_t row = 0; row < art.size(); ++row) {
      const size_t note = row >= 4 ? row - 4 : notes.size();
      if (note < notes.size() && !notes[note].empty()) {
        absl::PrintF("|%s|   %s\n", art[row], notes[note]);
      } else {
        absl::PrintF("|%s|\n", art[row]);
      }
    }
    absl::PrintF("%s\n", edge);
  }
}

}  // namespace

int RunPredict(Connection& connection, const Arguments& arguments) {
  absl::StatusOr<std::vector<InputImage>> images =
      LoadInputImages(arguments, LabelsNeeded::kOptional);
  if (!images.ok()) return UsageError("predict", images.status().message());
  if (absl::GetFlag(FLAGS_invert)) {
    for (InputImage& image : *images) {
      for (uint8_t& pixel : image.pixels) pixel = 255 - pixel;
    }
  }
  const int64_t per_request = absl::GetFlag(FLAGS_images_per_request);
  if (per_request < 1) {
    return UsageError("predict",
                      absl::StrFormat("--images_per_request=%d must be at least 1", per_request));
  }
  const bool summary = absl::GetFlag(FLAGS_summary);
  if (summary && !(*images)[0].label) {
    return UsageError("predict", "--summary prints the accuracy and needs --labels");
  }

  std::vector<Prediction> predictions;
  predictions.reserve(images->size());
  std::set<int64_t> versions;
  for (size_t begin = 0; begin < images->size(); begin += per_request) {
    const size_t end = std::min(images->size(), begin + static_cast<size_t>(per_request));
    convnet::v1::PredictRequest request;
    request.set_model_name(ModelFlag());
    request.set_version(absl::GetFlag(FLAGS_version));
    for (size_t i = begin; i < end; ++i) *request.add_images() = ToProtoImage((*images)[i]);
    convnet::v1::PredictResponse response;
    auto context = connection.NewCallContext();
    grpc::Status status = connection.stub().Predict(context.get(), request, &response);
    if (!status.ok()) return connection.ReportError("Predict", status);
    if (response.predictions_size() != static_cast<int>(end - begin)) {
      absl::FPrintF(stderr, "error: Predict: the server answered %d predictions for %d images\n",
                    response.predictions_size(), end - begin);
      return kExitRefused;
    }
    versions.insert(response.version());
    for (const auto& answer : response.predictions()) {
      Prediction prediction;
      prediction.predicted_class = answer.predicted_class();
      prediction.outputs.assign(answer.outputs().begin(), answer.outputs().end());
      if (prediction.predicted_class >= 0 &&
          prediction.predicted_class < static_cast<int>(prediction.outputs.size())) {
        prediction.confidence = prediction.outputs[prediction.predicted_class];
      }
      prediction.version = response.version();
      predictions.push_back(std::move(prediction));
    }
  }

  int64_t labelled = 0, correct = 0;
  for (size_t i = 0; i < images->size(); ++i) {
    if (!(*images)[i].label) continue;
    ++labelled;
    if (*(*images)[i].label == predictions[i].predicted_class) ++correct;
  }
  const std::string model = ModelFlag();
  const std::string version_text = absl::StrJoin(versions, ", ");

  if (absl::GetFlag(FLAGS_json)) {
    JsonWriter json;
    json.BeginObject().Key("model").String(model).Key("versions").BeginArray();
    for (int64_t version : versions) json.Int(version);
    json.EndArray();
    if (!summary) {
      json.Key("predictions").BeginArray();
      for (size_t i = 0; i < images->size(); ++i) {
        const InputImage& image = (*images)[i];
        const Prediction& prediction = predictions[i];
        json.BeginObject()
            .Key("source").String(image.source)
            .Key("version").Int(prediction.version)
            .Key("predicted_class").Int(prediction.predicted_class)
            .Key("confidence").Float(prediction.confidence)
            .Key("outputs").BeginArray();
        for (float output : prediction.outputs) json.Float(output);
        json.EndArray();
        if (image.label) json.Key("label").Int(*image.label);
        json.EndObject();
      }
      json.EndArray();
    }
    if (labelled > 0) {
      json.Key("labelled").Int(labelled).Key("correct").Int(correct)
          .Key("accuracy").Double(static_cast<double>(correct) / labelled);
    }
    json.EndObject();
    absl::PrintF("%s\n", json.str());
    return kExitOk;
  }

  if (!summary) {
    absl::PrintF("model %s version %s\n", model, version_text);
    PrintText(*images, predictions, absl::GetFlag(FLAGS_ascii));
  }
  if (labelled > 0) {
    absl::PrintF("accuracy: %d/%d = %.2f%% (model %s version %s)\n", correct, labelled,
                 100.0 * correct / labelled, model, version_text);
  }
  return kExitOk;
}

}  // namespace convnet::client
