// The bad-input catalogue: each case sends one malformed request to the real
// server and asserts the status code and a fragment of the message that names
// the field and the value. Every case starts from a request that is known to
// succeed (ValidRequestsSucceed) and breaks exactly one thing.
#include <cmath>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "api_fixture.h"
#include "gtest/gtest.h"
#include "standard_services_client.h"

namespace convnet::server_testing {
namespace {

constexpr int kMaxBatch = 8;

class BadInputTest : public ApiTest {
 protected:
  server::ServerOptions Options() const override {
    server::ServerOptions options = ApiTest::Options();
    options.max_batch = kMaxBatch;
    options.max_message_bytes = 1 << 20;
    return options;
  }

  void SetUp() override {
    ApiTest::SetUp();
    finished_job_ = SubmitJob(stub(), FreshTrainRequest("digits", 1, "tiny", 1, 10));
    ASSERT_EQ(WaitForJob(stub(), finished_job_).state(), v1::JOB_STATE_SUCCEEDED);
  }

 public:
  static v1::PredictRequest ValidPredict() {
    v1::PredictRequest request;
    request.set_model_name("digits");
    *request.add_images() = PixelImage(BundledMnist().test.image(0));
    return request;
  }
  static v1::TrainRequest ValidTrain() { return FreshTrainRequest("fresh", 1, "tiny", 1, 10); }
  static v1::TrainRequest ValidInlineTrain() {
    v1::TrainRequest request = ValidTrain();
    AddExamples(BundledMnist().train, 20, request.mutable_train_examples()->mutable_examples());
    AddExamples(BundledMnist().test, 5, request.mutable_eval_examples()->mutable_examples());
    return request;
  }
  static v1::GetGradientsRequest ValidGradients() {
    v1::GetGradientsRequest request;
    AddExamples(BundledMnist().train, 2, request.mutable_examples());
    request.mutable_model()->set_model_name("digits");
    request.set_cost(v1::COST_CROSS_ENTROPY);
    return request;
  }
  static v1::GetGradientsRequest ValidInlineGradients(int k) {
    v1::GetGradientsRequest request = ValidGradients();
    request.mutable_parameters()->set_feature_maps(k);
    request.mutable_parameters()->mutable_values()->Resize(static_cast<int>(ParameterCount(k)), 0.0f);
    return request;
  }

  grpc::Status Predict(const v1::PredictRequest& request) {
    v1::PredictResponse response;
    return stub().Predict(Context().get(), request, &response);
  }
  grpc::Status Train(const v1::TrainRequest& request) {
    v1::TrainResponse response;
    return stub().Train(Context().get(), request, &response);
  }
  grpc::Status Gradients(const v1::GetGradientsRequest& request) {
    v1::GetGradientsResponse response;
    return stub().GetGradients(Context().get(), request, &response);
  }
  grpc::Status GetModel(const v1::GetModelRequest& request) {
    v1::GetModelResponse response;
    return stub().GetModel(Context().get(), request, &response);
  }
  grpc::Status GetJob(const std::string& id) {
    v1::GetTrainingJobRequest request;
    request.set_job_id(id);
    v1::TrainingJob response;
    return stub().GetTrainingJob(Context().get(), request, &response);
  }
  grpc::Status CancelJob(const std::string& id) {
    v1::TrainingJob response;
    return Cancel(id, &response);
  }
  grpc::Status Watch(const std::string& id) {
    v1::WatchTrainingJobRequest request;
    request.set_job_id(id);
    auto context = Context();
    auto reader = stub().WatchTrainingJob(context.get(), request);
    v1::WatchTrainingJobResponse message;
    while (reader->Read(&message)) {
    }
    return reader->Finish();
  }
  grpc::Status ListJobs(const v1::ListTrainingJobsRequest& request) {
    v1::ListTrainingJobsResponse response;
    return stub().ListTrainingJobs(Context().get(), request, &response);
  }
  grpc::Status ListModels(const v1::ListModelsRequest& request) {
    v1::ListModelsResponse response;
    return stub().ListModels(Context().get(), request, &response);
  }

  std::string finished_job_;
};

struct Case {
  std::string name;
  std::function<grpc::Status(BadInputTest&)> call;
  grpc::StatusCode code;
  std::string fragment;
};

using grpc::StatusCode;

// Helpers that break one thing in a valid request.
std::function<grpc::Status(BadInputTest&)> PredictWith(std::function<void(v1::PredictRequest&)> change) {
  return [change](BadInputTest& t) {
    v1::PredictRequest request = BadInputTest::ValidPredict();
    change(request);
    return t.Predict(request);
  };
}
std::function<grpc::Status(BadInputTest&)> TrainWith(std::function<void(v1::TrainRequest&)> change,
                                                     bool inline_data = false) {
  return [change, inline_data](BadInputTest& t) {
    v1::TrainRequest request = inline_data ? BadInputTest::ValidInlineTrain() : BadInputTest::ValidTrain();
    change(request);
    return t.Train(request);
  };
}
std::function<grpc::Status(BadInputTest&)> GradientsWith(std::function<void(v1::GetGradientsRequest&)> change,
                                                         int inline_k = 0) {
  return [change, inline_k](BadInputTest& t) {
    v1::GetGradientsRequest request =
        inline_k > 0 ? BadInputTest::ValidInlineGradients(inline_k) : BadInputTest::ValidGradients();
    change(request);
    return t.Gradients(request);
  };
}
v1::Image FloatImageWith(int index, float value) {
  std::vector<float> values(kPixels, 0.5f);
  values[index] = value;
  return FloatImage(values);
}

std::vector<Case> Catalogue() {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  return {
      // --- Predict --------------------------------------------------------
      {"PredictWithoutModelName", PredictWith([](auto& r) { r.clear_model_name(); }),
       StatusCode::INVALID_ARGUMENT, "model_name is required"},
      {"PredictModelNameWithUppercase", PredictWith([](auto& r) { r.set_model_name("Digits"); }),
       StatusCode::INVALID_ARGUMENT, "model_name must match [a-z0-9][a-z0-9_-]* (at most 64 characters), got \"Digits\""},
      {"PredictModelNameThatIsAPath", PredictWith([](auto& r) { r.set_model_name("../digits"); }),
       StatusCode::INVALID_ARGUMENT, "got \"../digits\""},
      {"PredictModelNameTooLong", PredictWith([](auto& r) { r.set_model_name(std::string(65, 'a')); }),
       StatusCode::INVALID_ARGUMENT, "model_name must match"},
      {"PredictUnknownModel", PredictWith([](auto& r) { r.set_model_name("nosuch"); }), StatusCode::NOT_FOUND,
       "model \"nosuch\" not found"},
      {"PredictUnknownVersion", PredictWith([](auto& r) { r.set_version(99); }), StatusCode::NOT_FOUND,
       "model \"digits\" has no version 99 (versions: 1)"},
      {"PredictNegativeVersion", PredictWith([](auto& r) { r.set_version(-1); }), StatusCode::INVALID_ARGUMENT,
       "version must be >= 0 (0 = latest), got -1"},
      {"PredictWithoutImages", PredictWith([](auto& r) { r.clear_images(); }), StatusCode::INVALID_ARGUMENT,
       "images must hold at least one image"},
      {"PredictTooFewPixels",
       PredictWith([](auto& r) { r.mutable_images(0)->mutable_pixels()->resize(783); }),
       StatusCode::INVALID_ARGUMENT, "images[0].pixels must hold 784 bytes (28x28), got 783"},
      {"PredictTooManyPixelsInTheSecondImage",
       PredictWith([](auto& r) {
         *r.add_images() = r.images(0);
         r.mutable_images(1)->mutable_pixels()->push_back('\0');
       }),
       StatusCode::INVALID_ARGUMENT, "images[1].pixels must hold 784 bytes (28x28), got 785"},
      {"PredictWrongFloatCount",
       PredictWith([](auto& r) { *r.mutable_images(0) = FloatImage(std::vector<float>(10, 0.5f)); }),
       StatusCode::INVALID_ARGUMENT, "images[0].values.values must hold 784 floats (28x28), got 10"},
      {"PredictNaNPixel", PredictWith([=](auto& r) { *r.mutable_images(0) = FloatImageWith(5, nan); }),
       StatusCode::INVALID_ARGUMENT, "images[0].values.values[5] must be a finite number in [0, 1], got nan"},
      {"PredictInfinitePixel", PredictWith([=](auto& r) { *r.mutable_images(0) = FloatImageWith(700, inf); }),
       StatusCode::INVALID_ARGUMENT, "images[0].values.values[700] must be a finite number in [0, 1], got inf"},
      {"PredictPixelAboveOne", PredictWith([](auto& r) { *r.mutable_images(0) = FloatImageWith(0, 1.5f); }),
       StatusCode::INVALID_ARGUMENT, "images[0].values.values[0] must be a finite number in [0, 1], got 1.5"},
      {"PredictNegativePixel", PredictWith([](auto& r) { *r.mutable_images(0) = FloatImageWith(783, -0.25f); }),
       StatusCode::INVALID_ARGUMENT, "images[0].values.values[783] must be a finite number in [0, 1], got -0.25"},
      {"PredictImageWithoutData", PredictWith([](auto& r) { r.add_images(); }), StatusCode::INVALID_ARGUMENT,
       "images[1] has no data: set pixels or values"},
      {"PredictMixedEncodings",
       PredictWith([](auto& r) { *r.add_images() = FloatImage(std::vector<float>(kPixels, 0.0f)); }),
       StatusCode::INVALID_ARGUMENT,
       "images[1] uses values but images[0] uses pixels: all images of a request must use the same encoding"},
      {"PredictBatchOverTheLimit",
       PredictWith([](auto& r) {
         for (int i = 0; i < kMaxBatch; ++i) *r.add_images() = r.images(0);
       }),
       StatusCode::RESOURCE_EXHAUSTED, "images: 9 images exceed the server's limit of 8 per request (--max_batch)"},
      {"PredictMessageOverTheSizeLimit",
       PredictWith([](auto& r) {
         for (int i = 0; i < 1400; ++i) *r.add_images() = r.images(0);
       }),
       StatusCode::RESOURCE_EXHAUSTED, "larger than max"},

      // --- Train ----------------------------------------------------------
      {"TrainModelNameWithSlash", TrainWith([](auto& r) { r.set_model_name("a/b"); }),
       StatusCode::INVALID_ARGUMENT, "model_name must match [a-z0-9][a-z0-9_-]* (at most 64 characters), got \"a/b\""},
      {"TrainModelNameStartingWithDash", TrainWith([](auto& r) { r.set_model_name("-x"); }),
       StatusCode::INVALID_ARGUMENT, "got \"-x\""},
      {"TrainZeroFeatureMaps", TrainWith([](auto& r) { r.set_feature_maps(0); }), StatusCode::INVALID_ARGUMENT,
       "feature_maps must be in 1..64, got 0"},
      {"TrainTooManyFeatureMaps", TrainWith([](auto& r) { r.set_feature_maps(65); }),
       StatusCode::INVALID_ARGUMENT, "feature_maps must be in 1..64, got 65"},
      {"TrainWithoutInitialization", TrainWith([](auto& r) { r.clear_initialization(); }),
       StatusCode::INVALID_ARGUMENT, "initialization: set feature_maps (a new network) or init_from"},
      {"TrainFromUnknownModel", TrainWith([](auto& r) { r.mutable_init_from()->set_model_name("nosuch"); }),
       StatusCode::NOT_FOUND, "init_from: model \"nosuch\" not found"},
      {"TrainFromUnknownVersion",
       TrainWith([](auto& r) {
         r.mutable_init_from()->set_model_name("digits");
         r.mutable_init_from()->set_version(7);
       }),
       StatusCode::NOT_FOUND, "init_from: model \"digits\" has no version 7"},
      {"TrainFromNegativeVersion",
       TrainWith([](auto& r) {
         r.mutable_init_from()->set_model_name("digits");
         r.mutable_init_from()->set_version(-3);
       }),
       StatusCode::INVALID_ARGUMENT, "init_from.version must be >= 0 (0 = latest), got -3"},
      {"TrainFromOwnModelThatDoesNotExistYet", TrainWith([](auto& r) { r.mutable_init_from(); }),
       StatusCode::NOT_FOUND, "init_from: model \"fresh\" not found"},
      {"TrainNegativeEpochs", TrainWith([](auto& r) { r.mutable_hyperparameters()->set_epochs(-1); }),
       StatusCode::INVALID_ARGUMENT, "hyperparameters.epochs must be in 1..1000, got -1"},
      {"TrainTooManyEpochs", TrainWith([](auto& r) { r.mutable_hyperparameters()->set_epochs(1001); }),
       StatusCode::INVALID_ARGUMENT, "hyperparameters.epochs must be in 1..1000, got 1001"},
      {"TrainNegativeBatchSize", TrainWith([](auto& r) { r.mutable_hyperparameters()->set_batch_size(-1); }),
       StatusCode::INVALID_ARGUMENT, "hyperparameters.batch_size must be >= 1, got -1"},
      {"TrainBatchLargerThanTheDataset", TrainWith([](auto& r) { r.mutable_hyperparameters()->set_batch_size(51); }),
       StatusCode::INVALID_ARGUMENT, "hyperparameters.batch_size must be at most the training-set size 50, got 51"},
      {"TrainBatchLargerThanTheInlineSet",
       TrainWith([](auto& r) { r.mutable_hyperparameters()->set_batch_size(21); }, true),
       StatusCode::INVALID_ARGUMENT, "hyperparameters.batch_size must be at most the training-set size 20, got 21"},
      {"TrainNegativeLearningRate",
       TrainWith([](auto& r) { r.mutable_hyperparameters()->set_learning_rate(-0.5); }),
       StatusCode::INVALID_ARGUMENT, "hyperparameters.learning_rate must be a finite number in (0, 100], got -0.5"},
      {"TrainNaNLearningRate",
       TrainWith([](auto& r) { r.mutable_hyperparameters()->set_learning_rate(std::nan("")); }),
       StatusCode::INVALID_ARGUMENT, "hyperparameters.learning_rate must be a finite number in (0, 100], got nan"},
      {"TrainInfiniteLearningRate",
       TrainWith([](auto& r) {
         r.mutable_hyperparameters()->set_learning_rate(std::numeric_limits<double>::infinity());
       }),
       StatusCode::INVALID_ARGUMENT, "hyperparameters.learning_rate must be a finite number in (0, 100], got inf"},
      {"TrainLearningRateOverTheBound",
       TrainWith([](auto& r) { r.mutable_hyperparameters()->set_learning_rate(1e300); }),
       StatusCode::INVALID_ARGUMENT, "hyperparameters.learning_rate must be a finite number in (0, 100], got 1e+300"},
      {"TrainNegativeL2", TrainWith([](auto& r) { r.mutable_hyperparameters()->set_l2(-1); }),
       StatusCode::INVALID_ARGUMENT, "hyperparameters.l2 must be a finite number in [0, 10000], got -1"},
      {"TrainL2OverTheBound", TrainWith([](auto& r) { r.mutable_hyperparameters()->set_l2(1e5); }),
       StatusCode::INVALID_ARGUMENT, "hyperparameters.l2 must be a finite number in [0, 10000], got 100000"},
      {"TrainUnknownCostValue",
       TrainWith([](auto& r) { r.mutable_hyperparameters()->set_cost(static_cast<v1::Cost>(7)); }),
       StatusCode::INVALID_ARGUMENT, "hyperparameters.cost must be COST_QUADRATIC or COST_CROSS_ENTROPY, got 7"},
      {"TrainNegativeProgressEvery",
       TrainWith([](auto& r) { r.mutable_hyperparameters()->set_progress_every(-1); }),
       StatusCode::INVALID_ARGUMENT, "hyperparameters.progress_every must be >= 0, got -1"},
      {"TrainWithoutTrainingData", TrainWith([](auto& r) { r.clear_training_data(); }),
       StatusCode::INVALID_ARGUMENT, "training_data: set train_dataset or train_examples"},
      {"TrainUnknownDataset", TrainWith([](auto& r) { r.set_train_dataset("nosuch"); }), StatusCode::NOT_FOUND,
       "train_dataset: dataset \"nosuch\" not found"},
      {"TrainDatasetNameThatIsAPath", TrainWith([](auto& r) { r.set_train_dataset("../tiny"); }),
       StatusCode::INVALID_ARGUMENT, "train_dataset must match [a-z0-9][a-z0-9_-]* (at most 64 characters), got \"../tiny\""},
      {"TrainUnknownEvalDataset", TrainWith([](auto& r) { r.set_eval_dataset("nosuch"); }), StatusCode::NOT_FOUND,
       "eval_dataset: dataset \"nosuch\" not found"},
      {"TrainInlineLabelTooLarge",
       TrainWith([](auto& r) { r.mutable_train_examples()->mutable_examples(1)->set_label(10); }, true),
       StatusCode::INVALID_ARGUMENT, "train_examples.examples[1].label must be in 0..9, got 10"},
      {"TrainInlineNegativeLabel",
       TrainWith([](auto& r) { r.mutable_train_examples()->mutable_examples(3)->set_label(-1); }, true),
       StatusCode::INVALID_ARGUMENT, "train_examples.examples[3].label must be in 0..9, got -1"},
      {"TrainInlineEmptySet", TrainWith([](auto& r) { r.mutable_train_examples()->clear_examples(); }, true),
       StatusCode::INVALID_ARGUMENT, "train_examples.examples must hold at least one example"},
      {"TrainInlineFloatImages",
       TrainWith([](auto& r) {
         for (auto& example : *r.mutable_train_examples()->mutable_examples()) {
           *example.mutable_image() = FloatImage(std::vector<float>(kPixels, 0.0f));
         }
       }, true),
       StatusCode::INVALID_ARGUMENT, "training examples must be sent as pixels"},
      {"TrainInlineExampleWithoutImage",
       TrainWith([](auto& r) { r.mutable_train_examples()->mutable_examples(2)->clear_image(); }, true),
       StatusCode::INVALID_ARGUMENT, "train_examples.examples[2].image has no data: set pixels or values"},
      {"TrainInlineEvalWrongPixelCount",
       TrainWith([](auto& r) {
         r.mutable_eval_examples()->mutable_examples(0)->mutable_image()->mutable_pixels()->resize(100);
       }, true),
       StatusCode::INVALID_ARGUMENT, "eval_examples.examples[0].image.pixels must hold 784 bytes (28x28), got 100"},
      {"TrainInlineEvalEmptySet", TrainWith([](auto& r) { r.mutable_eval_examples()->clear_examples(); }, true),
       StatusCode::INVALID_ARGUMENT, "eval_examples.examples must hold at least one example"},

      // --- GetGradients ---------------------------------------------------
      {"GradientsWithoutExamples", GradientsWith([](auto& r) { r.clear_examples(); }),
       StatusCode::INVALID_ARGUMENT, "examples must hold at least one example"},
      {"GradientsLabelOutOfRange", GradientsWith([](auto& r) { r.mutable_examples(1)->set_label(12); }),
       StatusCode::INVALID_ARGUMENT, "examples[1].label must be in 0..9, got 12"},
      {"GradientsExampleWithoutImage", GradientsWith([](auto& r) { r.mutable_examples(0)->clear_image(); }),
       StatusCode::INVALID_ARGUMENT, "examples[0].image has no data: set pixels or values"},
      {"GradientsWrongPixelCount",
       GradientsWith([](auto& r) { r.mutable_examples(1)->mutable_image()->mutable_pixels()->resize(28); }),
       StatusCode::INVALID_ARGUMENT, "examples[1].image.pixels must hold 784 bytes (28x28), got 28"},
      {"GradientsNaNPixel",
       GradientsWith([=](auto& r) {
         for (auto& example : *r.mutable_examples()) *example.mutable_image() = FloatImageWith(42, nan);
       }),
       StatusCode::INVALID_ARGUMENT, "examples[0].image.values.values[42] must be a finite number in [0, 1], got nan"},
      {"GradientsUnspecifiedCost", GradientsWith([](auto& r) { r.set_cost(v1::COST_UNSPECIFIED); }),
       StatusCode::INVALID_ARGUMENT, "cost must be COST_QUADRATIC or COST_CROSS_ENTROPY, got COST_UNSPECIFIED"},
      {"GradientsWithoutParameters", GradientsWith([](auto& r) { r.clear_parameters_source(); }),
       StatusCode::INVALID_ARGUMENT, "parameters_source: set model (a stored version) or parameters (inline)"},
      {"GradientsUnknownModel", GradientsWith([](auto& r) { r.mutable_model()->set_model_name("nosuch"); }),
       StatusCode::NOT_FOUND, "model \"nosuch\" not found"},
      {"GradientsUnknownVersion", GradientsWith([](auto& r) { r.mutable_model()->set_version(5); }),
       StatusCode::NOT_FOUND, "model \"digits\" has no version 5"},
      {"GradientsBadModelName", GradientsWith([](auto& r) { r.mutable_model()->set_model_name("a b"); }),
       StatusCode::INVALID_ARGUMENT, "model.model_name must match"},
      {"GradientsInlineZeroFeatureMaps",
       GradientsWith([](auto& r) { r.mutable_parameters()->set_feature_maps(0); }, 1), StatusCode::INVALID_ARGUMENT,
       "parameters.feature_maps must be in 1..64, got 0"},
      {"GradientsInlineTooManyFeatureMaps",
       GradientsWith([](auto& r) { r.mutable_parameters()->set_feature_maps(65); }, 1),
       StatusCode::INVALID_ARGUMENT, "parameters.feature_maps must be in 1..64, got 65"},
      {"GradientsInlineVectorTooShort",
       GradientsWith([](auto& r) { r.mutable_parameters()->mutable_values()->RemoveLast(); }, 1),
       StatusCode::INVALID_ARGUMENT, "parameters.values must hold 1476 floats for feature_maps 1, got 1475"},
      {"GradientsInlineVectorOfAnotherK",
       GradientsWith([](auto& r) { r.mutable_parameters()->set_feature_maps(2); }, 1), StatusCode::INVALID_ARGUMENT,
       "parameters.values must hold 2942 floats for feature_maps 2, got 1476"},
      {"GradientsInlineNaNParameter",
       GradientsWith([=](auto& r) { r.mutable_parameters()->set_values(3, nan); }, 1),
       StatusCode::INVALID_ARGUMENT, "parameters.values[3] must be finite, got nan"},
      {"GradientsInlineInfiniteParameter",
       GradientsWith([=](auto& r) { r.mutable_parameters()->set_values(1475, -inf); }, 1),
       StatusCode::INVALID_ARGUMENT, "parameters.values[1475] must be finite, got -inf"},
      {"GradientsBatchOverTheLimit",
       GradientsWith([](auto& r) {
         while (r.examples_size() <= kMaxBatch) *r.add_examples() = r.examples(0);
       }),
       StatusCode::RESOURCE_EXHAUSTED, "examples: 9 examples exceed the server's limit of 8 per request (--max_batch)"},
      {"GradientsDeltasOverTheMessageLimit",
       GradientsWith([](auto& r) {
         while (r.examples_size() < kMaxBatch) *r.add_examples() = r.examples(0);
         r.set_include_deltas(true);
       }, 64),
       StatusCode::RESOURCE_EXHAUSTED, "include_deltas: the response for 8 examples with feature_maps 64"},

      // --- Jobs -----------------------------------------------------------
      {"GetJobWithoutId", [](BadInputTest& t) { return t.GetJob(""); }, StatusCode::INVALID_ARGUMENT,
       "job_id is required"},
      {"GetUnknownJob", [](BadInputTest& t) { return t.GetJob("no-such-job"); }, StatusCode::NOT_FOUND,
       "training job \"no-such-job\" not found"},
      {"CancelUnknownJob", [](BadInputTest& t) { return t.CancelJob("nope"); }, StatusCode::NOT_FOUND,
       "training job \"nope\" not found"},
      {"CancelFinishedJob", [](BadInputTest& t) { return t.CancelJob(t.finished_job_); },
       StatusCode::FAILED_PRECONDITION, "has already finished (SUCCEEDED)"},
      {"WatchUnknownJob", [](BadInputTest& t) { return t.Watch("nope"); }, StatusCode::NOT_FOUND,
       "training job \"nope\" not found"},
      {"WatchWithoutId", [](BadInputTest& t) { return t.Watch(""); }, StatusCode::INVALID_ARGUMENT,
       "job_id is required"},
      {"ListJobsUnknownState",
       [](BadInputTest& t) {
         v1::ListTrainingJobsRequest request;
         request.set_state(static_cast<v1::JobState>(42));
         return t.ListJobs(request);
       },
       StatusCode::INVALID_ARGUMENT, "state must be a JobState (0..5), got 42"},
      {"ListJobsBadModelName",
       [](BadInputTest& t) {
         v1::ListTrainingJobsRequest request;
         request.set_model_name("UPPER");
         return t.ListJobs(request);
       },
       StatusCode::INVALID_ARGUMENT, "model_name must match"},
      {"ListJobsNegativePageSize",
       [](BadInputTest& t) {
         v1::ListTrainingJobsRequest request;
         request.set_page_size(-1);
         return t.ListJobs(request);
       },
       StatusCode::INVALID_ARGUMENT, "page_size must be >= 0 (0 = the default of 100), got -1"},
      {"ListJobsMalformedPageToken",
       [](BadInputTest& t) {
         v1::ListTrainingJobsRequest request;
         request.set_page_token("not a token");
         return t.ListJobs(request);
       },
       StatusCode::INVALID_ARGUMENT, "page_token: not a page token of this server"},

      // --- Models ---------------------------------------------------------
      {"ListModelsNegativePageSize",
       [](BadInputTest& t) {
         v1::ListModelsRequest request;
         request.set_page_size(-5);
         return t.ListModels(request);
       },
       StatusCode::INVALID_ARGUMENT, "page_size must be >= 0 (0 = the default of 100), got -5"},
      {"ListModelsMalformedPageToken",
       [](BadInputTest& t) {
         v1::ListModelsRequest request;
         request.set_page_token("bm90IG91cnM");  // base64 of "not ours"
         return t.ListModels(request);
       },
       StatusCode::INVALID_ARGUMENT, "page_token: not a page token of this server"},
      {"GetModelNegativePageSize",
       [](BadInputTest& t) {
         v1::GetModelRequest request;
         request.set_model_name("digits");
         request.set_page_size(-2147483647 - 1);
         return t.GetModel(request);
       },
       StatusCode::INVALID_ARGUMENT, "page_size must be >= 0 (0 = the default of 100), got -2147483648"},
      {"GetModelMalformedPageToken",
       [](BadInputTest& t) {
         v1::GetModelRequest request;
         request.set_model_name("digits");
         request.set_page_token("%%%");
         return t.GetModel(request);
       },
       StatusCode::INVALID_ARGUMENT, "page_token: not a page token of this server"},
      {"GetModelPageTokenWithAVersion",
       [](BadInputTest& t) {
         v1::GetModelRequest request;
         request.set_model_name("digits");
         request.set_version(1);
         request.set_page_token("cDEKR2V0TW9kZWw");
         return t.GetModel(request);
       },
       StatusCode::INVALID_ARGUMENT, "page_token: pages are of every version (version 0), got version 1"},
      {"GetUnknownModel",
       [](BadInputTest& t) {
         v1::GetModelRequest request;
         request.set_model_name("nosuch");
         return t.GetModel(request);
       },
       StatusCode::NOT_FOUND, "model \"nosuch\" not found"},
      {"GetUnknownModelVersion",
       [](BadInputTest& t) {
         v1::GetModelRequest request;
         request.set_model_name("digits");
         request.set_version(3);
         return t.GetModel(request);
       },
       StatusCode::NOT_FOUND, "model \"digits\" has no version 3"},
      {"GetModelNegativeVersion",
       [](BadInputTest& t) {
         v1::GetModelRequest request;
         request.set_model_name("digits");
         request.set_version(-2);
         return t.GetModel(request);
       },
       StatusCode::INVALID_ARGUMENT, "version must be >= 0 (0 = latest), got -2"},
      {"GetModelWithoutName", [](BadInputTest& t) { return t.GetModel(v1::GetModelRequest()); },
       StatusCode::INVALID_ARGUMENT, "model_name is required"},
  };
}

class BadInputCatalogueTest : public BadInputTest, public ::testing::WithParamInterface<Case> {};

TEST_P(BadInputCatalogueTest, IsRejectedWithItsCodeAndAMessageNamingFieldAndValue) {
  const Case& c = GetParam();
  const grpc::Status status = c.call(*this);
  EXPECT_EQ(status.error_code(), c.code) << "message: " << status.error_message();
  EXPECT_NE(status.error_message().find(c.fragment), std::string::npos)
      << "expected a message containing \"" << c.fragment << "\", got \"" << status.error_message() << "\"";
  // Nothing a client sends takes the server down.
  wire::HealthCheckResponse health;
  ASSERT_TRUE(HealthCheck(server_->channel(), "", &health).ok());
  EXPECT_EQ(health.status(), wire::HealthCheckResponse::SERVING);
}

INSTANTIATE_TEST_SUITE_P(Catalogue, BadInputCatalogueTest, ::testing::ValuesIn(Catalogue()),
                         [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(BadInputCatalogueSize, HasAtLeastThirtyDistinctCases) {
  const std::vector<Case> cases = Catalogue();
  EXPECT_GE(cases.size(), 30u);
  std::set<std::string> names;
  for (const Case& c : cases) names.insert(c.name);
  EXPECT_EQ(names.size(), cases.size());
}

// The unbroken requests the catalogue starts from all succeed, so each case
// fails for the one thing it breaks.
TEST_F(BadInputTest, ValidRequestsSucceed) {
  EXPECT_TRUE(Predict(ValidPredict()).ok());
  EXPECT_TRUE(Gradients(ValidGradients()).ok());
  EXPECT_TRUE(Gradients(ValidInlineGradients(1)).ok());
  v1::GetGradientsRequest deltas = ValidInlineGradients(64);
  deltas.set_include_deltas(true);
  EXPECT_TRUE(Gradients(deltas).ok()) << "two examples with K = 64 deltas fit in 1 MiB";
  for (const v1::TrainRequest& request : {ValidTrain(), ValidInlineTrain()}) {
    v1::TrainResponse response;
    const grpc::Status status = stub().Train(Context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(WaitForJob(stub(), response.job_id()).state(), v1::JOB_STATE_SUCCEEDED);
  }
  v1::TrainRequest from = ValidTrain();
  from.mutable_init_from()->set_model_name("digits");
  EXPECT_TRUE(Train(from).ok());
  v1::GetModelRequest model;
  model.set_model_name("digits");
  EXPECT_TRUE(GetModel(model).ok());
  EXPECT_TRUE(GetJob(finished_job_).ok());
  EXPECT_TRUE(Watch(finished_job_).ok());
  EXPECT_TRUE(ListJobs(v1::ListTrainingJobsRequest()).ok());
  EXPECT_TRUE(ListModels(v1::ListModelsRequest()).ok());
}

}  // namespace
}  // namespace convnet::server_testing
