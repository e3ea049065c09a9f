#include "server/request_decoding.h"

#include <functional>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/dataset.h"
#include "core/shape.h"
#include "core/status_macros.h"
#include "server/names.h"
#include "server/proto_conversion.h"

namespace convnet::server {
namespace {

// RESOURCE_EXHAUSTED when `count` is over the limit the server flag
// `limit_flag` sets.
absl::Status CheckCount(absl::string_view field, absl::string_view noun, size_t count, size_t max_count,
                        absl::string_view limit_flag) {
  if (count <= max_count) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(field, ": ", count, " ", noun, "s exceed the server's limit of ",
                                                   max_count, " per request (", limit_flag, ")"));
}

// The parameters' share of a served version: keeps the version alive.
std::shared_ptr<const Parameters> ParametersOf(const ServedVersion& served) {
  return std::shared_ptr<const Parameters>(served.model, &served.model->parameters);
}

// spec.initial (and init_seed or init_from) from the request's initialization.
absl::Status DecodeInitialization(const v1::TrainRequest& request, const ModelRepository& repository,
                                  JobSpec& spec) {
  switch (request.initialization_case()) {
    case v1::TrainRequest::kFeatureMaps: {
      const int k = request.feature_maps();
      CONVNET_RETURN_IF_ERROR(ValidateFeatureMaps(k));
      CONVNET_ASSIGN_OR_RETURN(Parameters initial, Parameters::Initialize(k, spec.options.seed));
      spec.initial = std::make_shared<const Parameters>(std::move(initial));
      spec.init_seed = spec.options.seed;
      return absl::OkStatus();
    }
    case v1::TrainRequest::kInitFrom: {
      const v1::ModelVersionRef& from = request.init_from();
      const std::string& name = from.model_name().empty() ? spec.model_name : from.model_name();
      CONVNET_RETURN_IF_ERROR(ValidateName("init_from.model_name", name));
      CONVNET_RETURN_IF_ERROR(ValidateVersion("init_from.version", from.version()));
      absl::StatusOr<ServedVersion> served = repository.Get(name, from.version());
      if (!served.ok()) {
        return absl::Status(served.status().code(), absl::StrCat("init_from: ", served.status().message()));
      }
      spec.initial = ParametersOf(*served);
      spec.init_from = absl::StrCat(served->model_name, "/", served->version);
      if (const std::optional<size_t> i = FindNonFinite(spec.initial->flat())) {
        return absl::FailedPreconditionError(absl::StrCat("init_from: version ", spec.init_from,
                                                          " holds a non-finite parameter (", *i,
                                                          "); train from another version"));
      }
      return absl::OkStatus();
    }
    case v1::TrainRequest::INITIALIZATION_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("initialization: set feature_maps (a new network) or init_from");
}

// The split `split` (&MnistDirectory::train or ::test) of the dataset `name`
// that the request's `field` names, loaded through `datasets`; it keeps the
// whole dataset alive.
absl::StatusOr<std::shared_ptr<const Dataset>> NamedDataset(DatasetRegistry& datasets, absl::string_view field,
                                                           const std::string& name, Dataset MnistDirectory::*split) {
  CONVNET_ASSIGN_OR_RETURN(std::shared_ptr<const MnistDirectory> dataset, datasets.Get(field, name));
  return std::shared_ptr<const Dataset>(dataset, &(dataset.get()->*split));
}

// A training or evaluation set sent inline in `field` ("train_examples"):
// its examples as pixels (a set is kept as uint8); `values_refused` is the
// message for examples sent as values.
absl::StatusOr<std::shared_ptr<const Dataset>> DecodeInlineDataset(absl::string_view field,
                                                                   const v1::Examples& inline_examples,
                                                                   size_t max_inline_examples,
                                                                   absl::string_view values_refused) {
  CONVNET_ASSIGN_OR_RETURN(DecodedExamples examples,
                           DecodeExamples(absl::StrCat(field, ".examples"), inline_examples.examples(),
                                          max_inline_examples, "--max_inline_examples"));
  if (examples.images.is_float()) return absl::InvalidArgumentError(values_refused);
  CONVNET_ASSIGN_OR_RETURN(Dataset dataset,
                           MakeDataset(std::move(examples.images).TakePixels(), std::move(examples.labels)));
  return std::make_shared<const Dataset>(std::move(dataset));
}

}  // namespace

std::vector<uint8_t> DecodedImages::TakePixels() && {
  if (owned_pixels_.empty()) owned_pixels_.assign(pixels_.begin(), pixels_.end());
  pixels_ = {};
  return std::move(owned_pixels_);
}

class ImageDecoder {
 public:
  // `image(i)` is the i-th image (null when absent); `path(i)` its field path.
  static absl::StatusOr<DecodedImages> Decode(absl::string_view field, absl::string_view noun, size_t count,
                                              const std::function<const v1::Image*(size_t)>& image,
                                              const std::function<std::string(size_t)>& path,
                                              size_t max_count, absl::string_view limit_flag) {
    if (count == 0) {
      return absl::InvalidArgumentError(absl::StrCat(field, " must hold at least one ", noun));
    }
    if (absl::Status within = CheckCount(field, noun, count, max_count, limit_flag); !within.ok()) return within;
    DecodedImages decoded;
    decoded.count_ = count;
    const v1::Image* first = image(0);
    if (first == nullptr || first->data_case() == v1::Image::DATA_NOT_SET) {
      return absl::InvalidArgumentError(absl::StrCat(path(0), " has no data: set pixels or values"));
    }
    decoded.is_float_ = first->data_case() == v1::Image::kValues;
    if (!decoded.is_float_ && count > 1) decoded.owned_pixels_.reserve(count * kPixels);
    if (decoded.is_float_ && count > 1) decoded.owned_values_.reserve(count * kPixels);

    for (size_t i = 0; i < count; ++i) {
      const v1::Image* current = image(i);
      if (current == nullptr || current->data_case() == v1::Image::DATA_NOT_SET) {
        return absl::InvalidArgumentError(absl::StrCat(path(i), " has no data: set pixels or values"));
      }
      const bool is_float = current->data_case() == v1::Image::kValues;
      if (is_float != decoded.is_float_) {
        return absl::InvalidArgumentError(absl::StrCat(
            path(i), " uses ", is_float ? "values" : "pixels", " but ", path(0), " uses ",
            decoded.is_float_ ? "values" : "pixels",
            ": all images of a request must use the same encoding"));
      }
      if (!is_float) {
        const std::string& pixels = current->pixels();
        if (pixels.size() != static_cast<size_t>(kPixels)) {
          return absl::InvalidArgumentError(absl::StrCat(path(i), ".pixels must hold ", kPixels,
                                                         " bytes (28x28), got ", pixels.size()));
        }
        const auto* bytes = reinterpret_cast<const uint8_t*>(pixels.data());
        if (count == 1) {
          decoded.pixels_ = absl::MakeConstSpan(bytes, pixels.size());
        } else {
          decoded.owned_pixels_.insert(decoded.owned_pixels_.end(), bytes, bytes + pixels.size());
        }
      } else {
        const auto& values = current->values().values();
        if (values.size() != kPixels) {
          return absl::InvalidArgumentError(absl::StrCat(path(i), ".values.values must hold ", kPixels,
                                                         " floats (28x28), got ", values.size()));
        }
        for (int j = 0; j < values.size(); ++j) {
          const float v = values.Get(j);
          if (!(v >= 0.0f && v <= 1.0f)) {  // also rejects NaN
            return absl::InvalidArgumentError(absl::StrCat(path(i), ".values.values[", j,
                                                           "] must be a finite number in [0, 1], got ", v));
          }
        }
        if (count == 1) {
          decoded.values_ = absl::MakeConstSpan(values.data(), values.size());
        } else {
          decoded.owned_values_.insert(decoded.owned_values_.end(), values.begin(), values.end());
        }
      }
    }
    if (count > 1) {
      decoded.pixels_ = decoded.owned_pixels_;
      decoded.values_ = decoded.owned_values_;
    }
    return decoded;
  }
};

absl::StatusOr<DecodedImages> DecodeImages(absl::string_view field,
                                           const google::protobuf::RepeatedPtrField<v1::Image>& images,
                                           size_t max_count, absl::string_view limit_flag) {
  return ImageDecoder::Decode(
      field, "image", static_cast<size_t>(images.size()),
      [&](size_t i) { return &images.Get(static_cast<int>(i)); },
      [&](size_t i) { return absl::StrCat(field, "[", i, "]"); }, max_count, limit_flag);
}

absl::StatusOr<DecodedExamples> DecodeExamples(
    absl::string_view field, const google::protobuf::RepeatedPtrField<v1::Example>& examples,
    size_t max_count, absl::string_view limit_flag) {
  // The limit first, so that an oversized set is refused before its labels are read.
  CONVNET_RETURN_IF_ERROR(
      CheckCount(field, "example", static_cast<size_t>(examples.size()), max_count, limit_flag));
  DecodedExamples decoded;
  decoded.labels.reserve(static_cast<size_t>(examples.size()));
  for (int i = 0; i < examples.size(); ++i) {
    const int32_t label = examples.Get(i).label();
    if (label < 0 || label >= kClasses) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, "[", i, "].label must be in 0..9, got ", label));
    }
    decoded.labels.push_back(static_cast<uint8_t>(label));
  }
  absl::StatusOr<DecodedImages> images = ImageDecoder::Decode(
      field, "example", static_cast<size_t>(examples.size()),
      [&](size_t i) -> const v1::Image* {
        const v1::Example& example = examples.Get(static_cast<int>(i));
        return example.has_image() ? &example.image() : nullptr;
      },
      [&](size_t i) { return absl::StrCat(field, "[", i, "].image"); }, max_count, limit_flag);
  if (!images.ok()) return images.status();
  decoded.images = *std::move(images);
  return decoded;
}

absl::StatusOr<Cost> DecodeCost(absl::string_view field, int cost) {
  if (std::optional<Cost> decoded = CostFromProto(cost)) return *decoded;
  const std::string name = v1::Cost_IsValid(cost) ? v1::Cost_Name(static_cast<v1::Cost>(cost))
                                                  : absl::StrCat(cost);
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be COST_QUADRATIC or COST_CROSS_ENTROPY, got ", name));
}

absl::StatusOr<Parameters> DecodeParameters(absl::string_view field, const v1::Parameters& parameters) {
  const int k = parameters.feature_maps();
  CONVNET_RETURN_IF_ERROR(WithFieldPath(field, ValidateFeatureMaps(k)));
  const auto& values = parameters.values();
  if (static_cast<size_t>(values.size()) != ParameterCount(k)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".values must hold ", ParameterCount(k),
                                                   " floats for feature_maps ", k, ", got ", values.size()));
  }
  const absl::Span<const float> flat = absl::MakeConstSpan(values.data(), values.size());
  if (const std::optional<size_t> i = FindNonFinite(flat)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".values[", *i, "] must be finite, got ", flat[*i]));
  }
  absl::StatusOr<Parameters> decoded = Parameters::FromFlat(k, flat);
  if (!decoded.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", decoded.status().message()));
  }
  return decoded;
}

absl::Status WithFieldPath(absl::string_view field, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(field, ".", status.message()));
}

absl::StatusOr<TrainOptions> DecodeHyperparameters(absl::string_view field,
                                                   const v1::Hyperparameters& hyperparameters) {
  // A field left at its zero value takes the default of TrainOptions; the seed
  // has none (0 is a seed like any other).
  const TrainOptions defaults;
  TrainOptions options;
  options.epochs = hyperparameters.epochs() != 0 ? hyperparameters.epochs() : defaults.epochs;
  options.batch_size = hyperparameters.batch_size() != 0 ? hyperparameters.batch_size() : defaults.batch_size;
  options.learning_rate =
      hyperparameters.learning_rate() != 0 ? hyperparameters.learning_rate() : defaults.learning_rate;
  options.l2 = hyperparameters.l2() != 0 ? hyperparameters.l2() : defaults.l2;
  if (hyperparameters.cost() != v1::COST_UNSPECIFIED) {
    CONVNET_ASSIGN_OR_RETURN(options.cost, DecodeCost(absl::StrCat(field, ".cost"), hyperparameters.cost()));
  } else {
    options.cost = defaults.cost;
  }
  options.seed = hyperparameters.seed();
  options.progress_every =
      hyperparameters.progress_every() != 0 ? hyperparameters.progress_every() : defaults.progress_every;
  CONVNET_RETURN_IF_ERROR(WithFieldPath(field, ValidateTrainOptions(options)));
  return options;
}

absl::Status CheckBatchSize(absl::string_view field, const TrainOptions& options, size_t training_examples) {
  return WithFieldPath(field, ValidateTrainOptions(options, training_examples));
}

absl::Status ValidateVersion(absl::string_view field, int64_t version) {
  if (version < 0) {
    return absl::InvalidArgumentError(absl::StrCat(field, " must be >= 0 (0 = latest), got ", version));
  }
  return absl::OkStatus();
}

absl::StatusOr<JobSpec> DecodeTrainRequest(const v1::TrainRequest& request, const TrainSources& sources) {
  JobSpec spec;
  spec.model_name = request.model_name();
  CONVNET_RETURN_IF_ERROR(ValidateName("model_name", spec.model_name));
  // Everything that does not need the training set first, so that a bad
  // request does not load a dataset.
  CONVNET_ASSIGN_OR_RETURN(spec.options, DecodeHyperparameters("hyperparameters", request.hyperparameters()));
  CONVNET_RETURN_IF_ERROR(DecodeInitialization(request, *sources.repository, spec));

  switch (request.training_data_case()) {
    case v1::TrainRequest::kTrainDataset: {
      CONVNET_ASSIGN_OR_RETURN(spec.train, NamedDataset(*sources.datasets, "train_dataset", request.train_dataset(),
                                                        &MnistDirectory::train));
      spec.train_dataset = request.train_dataset();
      break;
    }
    case v1::TrainRequest::kTrainExamples: {
      CONVNET_ASSIGN_OR_RETURN(
          spec.train, DecodeInlineDataset("train_examples", request.train_examples(), sources.max_inline_examples,
                                          "train_examples.examples[0].image: training examples must be sent as "
                                          "pixels (a training set is kept as uint8), got values"));
      spec.train_dataset = "inline";
      break;
    }
    case v1::TrainRequest::TRAINING_DATA_NOT_SET:
      return absl::InvalidArgumentError("training_data: set train_dataset or train_examples");
  }
  if (spec.train->size() == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("train_dataset ", Quote(spec.train_dataset), " has no training examples"));
  }

  switch (request.evaluation_data_case()) {
    case v1::TrainRequest::kEvalDataset: {
      CONVNET_ASSIGN_OR_RETURN(spec.eval, NamedDataset(*sources.datasets, "eval_dataset", request.eval_dataset(),
                                                       &MnistDirectory::test));
      spec.eval_dataset = request.eval_dataset();
      break;
    }
    case v1::TrainRequest::kEvalExamples: {
      CONVNET_ASSIGN_OR_RETURN(
          spec.eval, DecodeInlineDataset("eval_examples", request.eval_examples(), sources.max_inline_examples,
                                         "eval_examples.examples[0].image: evaluation examples must be sent as "
                                         "pixels (an evaluation set is kept as uint8), got values"));
      spec.eval_dataset = "inline";
      break;
    }
    case v1::TrainRequest::EVALUATION_DATA_NOT_SET:
      break;
  }

  CONVNET_RETURN_IF_ERROR(CheckBatchSize("hyperparameters", spec.options, spec.train->size()));
  return spec;
}

absl::StatusOr<DecodedGradientsRequest> DecodeGradientsRequest(const v1::GetGradientsRequest& request,
                                                               const ModelRepository& repository,
                                                               size_t max_batch) {
  DecodedGradientsRequest decoded;
  CONVNET_ASSIGN_OR_RETURN(decoded.examples, DecodeExamples("examples", request.examples(), max_batch, "--max_batch"));
  CONVNET_ASSIGN_OR_RETURN(decoded.cost, DecodeCost("cost", request.cost()));
  switch (request.parameters_source_case()) {
    case v1::GetGradientsRequest::kModel: {
      const v1::ModelVersionRef& ref = request.model();
      CONVNET_RETURN_IF_ERROR(ValidateName("model.model_name", ref.model_name()));
      CONVNET_RETURN_IF_ERROR(ValidateVersion("model.version", ref.version()));
      CONVNET_ASSIGN_OR_RETURN(ServedVersion served, repository.Get(ref.model_name(), ref.version()));
      decoded.parameters = ParametersOf(served);
      decoded.model_name = served.model_name;
      decoded.version = served.version;
      return decoded;
    }
    case v1::GetGradientsRequest::kParameters: {
      CONVNET_ASSIGN_OR_RETURN(Parameters parameters, DecodeParameters("parameters", request.parameters()));
      decoded.parameters = std::make_shared<const Parameters>(std::move(parameters));
      return decoded;
    }
    case v1::GetGradientsRequest::PARAMETERS_SOURCE_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError("parameters_source: set model (a stored version) or parameters (inline)");
}

}  // namespace convnet::server
