// Every RPC of convnet.v1.ConvNet, plus the standard health and reflection
// services, against the real server over real gRPC. Numerical results are
// compared with the core called directly on the same parameters.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <vector>

#include "api_fixture.h"
#include "core/model_file.h"
#include "core/network.h"
#include "core/trainer.h"
#include "gtest/gtest.h"
#include "standard_services_client.h"

namespace convnet::server_testing {
namespace {

class ServiceTest : public ApiTest {};

std::vector<float> Outputs(const v1::ImagePrediction& prediction) {
  return std::vector<float>(prediction.outputs().begin(), prediction.outputs().end());
}

TEST_F(ServiceTest, HealthServiceReportsServingForTheServerAndTheConvNetService) {
  for (const std::string service : {"", "convnet.v1.ConvNet"}) {
    wire::HealthCheckResponse response;
    const grpc::Status status = HealthCheck(server_->channel(), service, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.status(), wire::HealthCheckResponse::SERVING) << "service \"" << service << "\"";
  }
  wire::HealthCheckResponse response;
  EXPECT_EQ(HealthCheck(server_->channel(), "no.such.Service", &response).error_code(),
            grpc::StatusCode::NOT_FOUND);
}

TEST_F(ServiceTest, ReflectionListsTheConvNetServiceAndServesItsDescriptor) {
  wire::ServerReflectionRequest request;
  request.set_list_services("");
  wire::ServerReflectionResponse response;
  grpc::Status status = Reflect(server_->channel(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<std::string> services;
  for (const auto& service : response.list_services_response().service()) services.push_back(service.name());
  EXPECT_NE(std::find(services.begin(), services.end(), "convnet.v1.ConvNet"), services.end());
  EXPECT_NE(std::find(services.begin(), services.end(), "grpc.health.v1.Health"), services.end());

  request.set_file_containing_symbol("convnet.v1.ConvNet");
  status = Reflect(server_->channel(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_GT(response.file_descriptor_response().file_descriptor_proto_size(), 0);
  EXPECT_NE(response.file_descriptor_response().file_descriptor_proto(0).find("convnet/v1/convnet.proto"),
            std::string::npos);
}

TEST_F(ServiceTest, TrainReturnsAJobAtOnceAndItsVersionIsWrittenToTheRepository) {
  v1::TrainResponse response;
  const grpc::Status status =
      stub().Train(Context().get(), FreshTrainRequest("digits", 1, "tiny", 2, 10), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(response.job_id().empty());
  EXPECT_EQ(response.job().job_id(), response.job_id());
  EXPECT_EQ(response.job().model_name(), "digits");
  EXPECT_TRUE(response.job().state() == v1::JOB_STATE_QUEUED || response.job().state() == v1::JOB_STATE_RUNNING);
  EXPECT_EQ(response.job().train_examples(), static_cast<int64_t>(kTinyTrain));

  const v1::TrainingJob job = WaitForJob(stub(), response.job_id());
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  EXPECT_EQ(job.version(), 1);
  EXPECT_EQ(job.epochs_size(), 2);
  EXPECT_GT(job.finished_unix_ms(), 0);
  EXPECT_TRUE(std::filesystem::is_regular_file(model_dir_.Join("digits/1/model.cnvn")));
}

TEST_F(ServiceTest, TrainingThroughTheApiGivesExactlyTheCoresTrainedParameters) {
  v1::TrainRequest request = FreshTrainRequest("k2", 2, "small", 2, 10);
  request.set_eval_dataset("small");
  const int64_t version = TrainToCompletion(stub(), request);
  ASSERT_EQ(version, 1);

  TrainOptions options;
  options.epochs = 2;
  options.batch_size = 10;
  options.learning_rate = 0.5;
  options.cost = Cost::kCrossEntropy;
  options.seed = 7;
  const Dataset train = SmallTrain();
  const Dataset test = SmallTest();
  auto expected = convnet::Train(*Parameters::Initialize(2, 7), train, &test, options, nullptr);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(ExportParameters(stub(), "k2", 1), expected->parameters);

  v1::GetModelRequest get;
  get.set_model_name("k2");
  v1::GetModelResponse model;
  ASSERT_TRUE(stub().GetModel(Context().get(), get, &model).ok());
  const v1::TrainingInfo& training = model.model().versions(0).training();
  ASSERT_EQ(training.epochs_size(), 2);
  for (int e = 0; e < 2; ++e) {
    EXPECT_EQ(training.epochs(e).epoch(), e + 1);
    EXPECT_EQ(training.epochs(e).test_accuracy(), expected->epochs[e].test_accuracy);
    EXPECT_NEAR(training.epochs(e).train_cost(), expected->epochs[e].train_cost, 1e-9);
  }
}

TEST_F(ServiceTest, ListModelsDescribesVersionsArchitectureHyperparametersAndMetrics) {
  v1::TrainRequest request = FreshTrainRequest("digits", 3, "tiny", 2, 5);
  request.set_eval_dataset("tiny");
  request.mutable_hyperparameters()->set_l2(0.25);
  ASSERT_EQ(TrainToCompletion(stub(), request), 1);
  v1::TrainRequest second = FreshTrainRequest("digits", 1, "tiny", 1, 10);
  second.mutable_init_from()->set_version(1);  // model_name "" = the same model
  ASSERT_EQ(TrainToCompletion(stub(), second), 2);
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("other", 1, "tiny", 1, 50)), 1);

  v1::ListModelsResponse response;
  ASSERT_TRUE(stub().ListModels(Context().get(), v1::ListModelsRequest(), &response).ok());
  ASSERT_EQ(response.models_size(), 2);
  const v1::Model& digits = response.models(0);
  EXPECT_EQ(digits.name(), "digits");
  EXPECT_EQ(digits.latest_version(), 2);
  ASSERT_EQ(digits.versions_size(), 2);
  const v1::ModelVersion& v1 = digits.versions(0);
  EXPECT_EQ(v1.version(), 1);
  EXPECT_EQ(v1.feature_maps(), 3);
  EXPECT_EQ(v1.parameter_count(), static_cast<int64_t>(ParameterCount(3)));
  EXPECT_GT(v1.created_unix_ms(), 0);
  EXPECT_FALSE(v1.has_parameters());
  EXPECT_TRUE(v1.training().trained());
  EXPECT_EQ(v1.training().hyperparameters().epochs(), 2);
  EXPECT_EQ(v1.training().hyperparameters().batch_size(), 5);
  EXPECT_EQ(v1.training().hyperparameters().l2(), 0.25);
  EXPECT_EQ(v1.training().hyperparameters().cost(), v1::COST_CROSS_ENTROPY);
  EXPECT_EQ(v1.training().hyperparameters().seed(), 7u);
  EXPECT_EQ(v1.training().train_dataset(), "tiny");
  EXPECT_EQ(v1.training().train_examples(), static_cast<int64_t>(kTinyTrain));
  EXPECT_EQ(v1.training().init_seed(), 7u);
  ASSERT_EQ(v1.training().epochs_size(), 2);
  EXPECT_EQ(v1.training().epochs(1).epoch(), 2);
  EXPECT_EQ(v1.training().epochs(1).test_examples(), static_cast<int64_t>(kTinyTest));
  EXPECT_GE(v1.training().train_finished_unix_ms(), v1.training().train_started_unix_ms());
  const v1::ModelVersion& v2 = digits.versions(1);
  EXPECT_EQ(v2.feature_maps(), 3);  // K comes from the version it started from
  EXPECT_EQ(v2.training().init_from(), "digits/1");
  EXPECT_EQ(response.models(1).name(), "other");
}

TEST_F(ServiceTest, GetModelExportsTheParametersStoredOnDisk) {
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("m", 2, "tiny", 1, 10)), 1);
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("m", 1, "tiny", 1, 10)), 2);

  v1::GetModelRequest request;
  request.set_model_name("m");
  request.set_include_parameters(true);
  v1::GetModelResponse all;
  ASSERT_TRUE(stub().GetModel(Context().get(), request, &all).ok());
  ASSERT_EQ(all.model().versions_size(), 2);
  EXPECT_EQ(all.model().latest_version(), 2);
  for (const v1::ModelVersion& version : all.model().versions()) {
    auto on_disk = ReadModelFile(model_dir_.Join("m/" + std::to_string(version.version()) + "/model.cnvn"));
    ASSERT_TRUE(on_disk.ok()) << on_disk.status();
    EXPECT_EQ(version.parameters().feature_maps(), on_disk->parameters.k());
    const absl::Span<const float> flat = on_disk->parameters.flat();
    EXPECT_EQ(std::vector<float>(version.parameters().values().begin(), version.parameters().values().end()),
              std::vector<float>(flat.begin(), flat.end()));
    EXPECT_EQ(version.created_unix_ms(), on_disk->metadata.created_unix_ms);
  }

  request.set_version(1);
  request.set_include_parameters(false);
  v1::GetModelResponse one;
  ASSERT_TRUE(stub().GetModel(Context().get(), request, &one).ok());
  ASSERT_EQ(one.model().versions_size(), 1);
  EXPECT_EQ(one.model().versions(0).version(), 1);
  EXPECT_EQ(one.model().latest_version(), 2);
  EXPECT_FALSE(one.model().versions(0).has_parameters());
}

TEST_F(ServiceTest, PredictReturnsTheCoresOutputsForPixelAndFloatImages) {
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("digits", 2, "small", 1, 10)), 1);
  const Parameters parameters = ExportParameters(stub(), "digits", 1);
  const Dataset test = SmallTest();
  constexpr size_t kImages = 16;

  v1::PredictRequest pixels;
  pixels.set_model_name("digits");
  v1::PredictRequest floats = pixels;
  std::vector<float> float_values;
  for (size_t i = 0; i < kImages; ++i) {
    *pixels.add_images() = PixelImage(test.image(i));
    std::vector<float> values;
    for (uint8_t p : test.image(i)) values.push_back(static_cast<float>(p) / 255.0f);
    *floats.add_images() = FloatImage(values);
    float_values.insert(float_values.end(), values.begin(), values.end());
  }
  auto expected_pixels = convnet::Predict(
      parameters, ImageBatch::FromPixels(absl::MakeConstSpan(test.images).subspan(0, kImages * kPixels)), nullptr);
  auto expected_floats = convnet::Predict(parameters, ImageBatch::FromFloats(float_values), nullptr);
  ASSERT_TRUE(expected_pixels.ok() && expected_floats.ok());

  for (const auto& [request, expected] :
       {std::pair{&pixels, &*expected_pixels}, std::pair{&floats, &*expected_floats}}) {
    v1::PredictResponse response;
    const grpc::Status status = stub().Predict(Context().get(), *request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.model_name(), "digits");
    EXPECT_EQ(response.version(), 1);
    ASSERT_EQ(response.predictions_size(), static_cast<int>(kImages));
    for (size_t i = 0; i < kImages; ++i) {
      const Prediction& want = (*expected)[i];
      EXPECT_EQ(Outputs(response.predictions(i)), std::vector<float>(want.a3.begin(), want.a3.end()));
      EXPECT_EQ(response.predictions(i).predicted_class(), want.predicted_class);
    }
  }

  // One image takes the no-copy path; it must give the same answer.
  v1::PredictRequest single;
  single.set_model_name("digits");
  *single.add_images() = pixels.images(3);
  v1::PredictResponse response;
  ASSERT_TRUE(stub().Predict(Context().get(), single, &response).ok());
  EXPECT_EQ(Outputs(response.predictions(0)),
            std::vector<float>((*expected_pixels)[3].a3.begin(), (*expected_pixels)[3].a3.end()));
}

TEST_F(ServiceTest, PredictUsesTheLatestVersionUnlessOneIsNamed) {
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("digits", 1, "tiny", 1, 10)), 1);
  v1::TrainRequest again = FreshTrainRequest("digits", 1, "tiny", 1, 10);
  again.mutable_hyperparameters()->set_seed(99);
  ASSERT_EQ(TrainToCompletion(stub(), again), 2);

  v1::PredictRequest request;
  request.set_model_name("digits");
  *request.add_images() = PixelImage(SmallTest().image(0));
  std::vector<std::vector<float>> outputs;
  for (int64_t version : {0, 1, 2}) {
    request.set_version(version);
    v1::PredictResponse response;
    ASSERT_TRUE(stub().Predict(Context().get(), request, &response).ok());
    EXPECT_EQ(response.version(), version == 0 ? 2 : version);
    outputs.push_back(Outputs(response.predictions(0)));
  }
  EXPECT_EQ(outputs[0], outputs[2]);
  EXPECT_NE(outputs[1], outputs[2]);
}

TEST_F(ServiceTest, GetGradientsForAStoredVersionEqualsTheCoresGradient) {
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("digits", 2, "tiny", 1, 10)), 1);
  const Parameters parameters = ExportParameters(stub(), "digits", 1);
  const Dataset train = SmallTrain();
  constexpr size_t kExamples = 12;

  for (v1::Cost cost : {v1::COST_QUADRATIC, v1::COST_CROSS_ENTROPY}) {
    v1::GetGradientsRequest request;
    AddExamples(train, kExamples, request.mutable_examples());
    request.mutable_model()->set_model_name("digits");
    request.set_cost(cost);
    v1::GetGradientsResponse response;
    const grpc::Status status = stub().GetGradients(Context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();

    const Cost core_cost = cost == v1::COST_QUADRATIC ? Cost::kQuadratic : Cost::kCrossEntropy;
    auto expected = ComputeGradient(
        parameters, ImageBatch::FromPixels(absl::MakeConstSpan(train.images).subspan(0, kExamples * kPixels)),
        absl::MakeConstSpan(train.labels).subspan(0, kExamples), core_cost, nullptr);
    ASSERT_TRUE(expected.ok()) << expected.status();
    EXPECT_EQ(response.model_name(), "digits");
    EXPECT_EQ(response.version(), 1);
    EXPECT_EQ(response.feature_maps(), 2);
    EXPECT_EQ(response.mean_cost(), expected->mean_cost);
    EXPECT_EQ(std::vector<double>(response.costs().begin(), response.costs().end()), expected->costs);
    EXPECT_EQ(std::vector<float>(response.gradient().begin(), response.gradient().end()), expected->gradient);
    ASSERT_EQ(response.predicted_classes_size(), static_cast<int>(kExamples));
    for (size_t i = 0; i < kExamples; ++i) EXPECT_EQ(response.predicted_classes(i), expected->predicted[i]);
    EXPECT_EQ(response.deltas_size(), 0);
  }
}

// The gradient the server returns for inline parameters agrees with central
// finite differences of the mean cost, each cost obtained from the same RPC
// with one parameter perturbed (float parameters: a loose tolerance).
// Max-pooling makes the cost piecewise smooth: where a pool window's maximum
// switches position within the step, the one-sided differences disagree and
// the central one is no reference; there the gradient must match the side
// that does not cross the switch. Such parameters must stay rare.
void ExpectGradientMatchesFiniteDifferences(v1::ConvNet::Stub& stub, v1::Cost cost) {
  const Parameters parameters = *Parameters::Initialize(1, 3);
  const Dataset train = BundledMnist().train.Prefix(4);
  v1::GetGradientsRequest request;
  AddExamples(train, train.size(), request.mutable_examples());
  request.set_cost(cost);
  v1::Parameters* inline_parameters = request.mutable_parameters();
  inline_parameters->set_feature_maps(1);
  inline_parameters->mutable_values()->Assign(parameters.flat().begin(), parameters.flat().end());

  v1::GetGradientsResponse at_point;
  ASSERT_TRUE(stub.GetGradients(Context().get(), request, &at_point).ok());
  ASSERT_EQ(at_point.gradient_size(), static_cast<int>(ParameterCount(1)));
  EXPECT_EQ(at_point.version(), 0);
  EXPECT_TRUE(at_point.model_name().empty());

  // All of w1 and b1, all of b3, and the 20 largest entries of w3.
  std::vector<size_t> indices(Parameters::W3Offset(1));
  std::iota(indices.begin(), indices.end(), 0);
  for (size_t i = Parameters::B3Offset(1); i < ParameterCount(1); ++i) indices.push_back(i);
  std::vector<size_t> w3(Parameters::B3Offset(1) - Parameters::W3Offset(1));
  std::iota(w3.begin(), w3.end(), Parameters::W3Offset(1));
  std::partial_sort(w3.begin(), w3.begin() + 20, w3.end(), [&](size_t a, size_t b) {
    return std::abs(at_point.gradient(a)) > std::abs(at_point.gradient(b));
  });
  indices.insert(indices.end(), w3.begin(), w3.begin() + 20);

  constexpr float kStep = 1e-3f;
  double largest = 0;
  int switches = 0;
  for (size_t index : indices) {
    const float value = parameters.flat()[index];
    auto cost_at = [&](float shifted) {
      v1::GetGradientsRequest perturbed = request;
      perturbed.mutable_parameters()->set_values(static_cast<int>(index), shifted);
      v1::GetGradientsResponse response;
      EXPECT_TRUE(stub.GetGradients(Context().get(), perturbed, &response).ok());
      return response.mean_cost();
    };
    const float plus = value + kStep;
    const float minus = value - kStep;
    const double cost_plus = cost_at(plus);
    const double cost_minus = cost_at(minus);
    const double central = (cost_plus - cost_minus) / (static_cast<double>(plus) - minus);
    const double right = (cost_plus - at_point.mean_cost()) / (static_cast<double>(plus) - value);
    const double left = (at_point.mean_cost() - cost_minus) / (static_cast<double>(value) - minus);
    const double analytic = at_point.gradient(static_cast<int>(index));
    const double tolerance = 2e-3 + 2e-2 * std::abs(analytic);
    largest = std::max(largest, std::abs(analytic));
    if (std::abs(central - analytic) <= tolerance) continue;
    if (std::abs(right - left) > tolerance &&
        (std::abs(right - analytic) <= tolerance || std::abs(left - analytic) <= tolerance)) {
      ++switches;  // a max-pool switch within the step, on the other side
      continue;
    }
    ADD_FAILURE() << "parameter " << index << ": gradient " << analytic << ", central difference " << central
                  << " (one-sided " << left << " / " << right << ")";
  }
  EXPECT_GT(largest, 1e-2) << "the check must include gradients large enough to matter";
  EXPECT_LE(switches, static_cast<int>(indices.size()) / 10) << "too few parameters were checked centrally";
}

TEST_F(ServiceTest, GetGradientsWithInlineParametersMatchesFiniteDifferencesForQuadraticCost) {
  ExpectGradientMatchesFiniteDifferences(stub(), v1::COST_QUADRATIC);
}

TEST_F(ServiceTest, GetGradientsWithInlineParametersMatchesFiniteDifferencesForCrossEntropy) {
  ExpectGradientMatchesFiniteDifferences(stub(), v1::COST_CROSS_ENTROPY);
}

TEST_F(ServiceTest, GetGradientsWithInlineParametersEqualsTheCore) {
  const Parameters parameters = *Parameters::Initialize(3, 11);
  const Dataset train = SmallTrain();
  v1::GetGradientsRequest request;
  AddExamples(train, 7, request.mutable_examples());
  request.set_cost(v1::COST_CROSS_ENTROPY);
  request.mutable_parameters()->set_feature_maps(3);
  request.mutable_parameters()->mutable_values()->Assign(parameters.flat().begin(), parameters.flat().end());
  v1::GetGradientsResponse response;
  ASSERT_TRUE(stub().GetGradients(Context().get(), request, &response).ok());
  auto expected = ComputeGradient(parameters,
                                  ImageBatch::FromPixels(absl::MakeConstSpan(train.images).subspan(0, 7 * kPixels)),
                                  absl::MakeConstSpan(train.labels).subspan(0, 7), Cost::kCrossEntropy, nullptr);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(response.feature_maps(), 3);
  EXPECT_EQ(response.mean_cost(), expected->mean_cost);
  EXPECT_EQ(std::vector<float>(response.gradient().begin(), response.gradient().end()), expected->gradient);
}

TEST_F(ServiceTest, GetGradientsWithDeltasReturnsTheCoresPerExampleExplanation) {
  const Parameters parameters = *Parameters::Initialize(2, 5);
  const Dataset train = SmallTrain();
  constexpr size_t kExamples = 3;
  v1::GetGradientsRequest request;
  AddExamples(train, kExamples, request.mutable_examples());
  request.set_cost(v1::COST_CROSS_ENTROPY);
  request.set_include_deltas(true);
  request.mutable_parameters()->set_feature_maps(2);
  request.mutable_parameters()->mutable_values()->Assign(parameters.flat().begin(), parameters.flat().end());
  v1::GetGradientsResponse response;
  const grpc::Status status = stub().GetGradients(Context().get(), request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();

  auto expected = ExplainGradient(
      parameters, ImageBatch::FromPixels(absl::MakeConstSpan(train.images).subspan(0, kExamples * kPixels)),
      absl::MakeConstSpan(train.labels).subspan(0, kExamples), Cost::kCrossEntropy, nullptr);
  ASSERT_TRUE(expected.ok()) << expected.status();
  EXPECT_EQ(std::vector<float>(response.gradient().begin(), response.gradient().end()), expected->first.gradient);
  ASSERT_EQ(response.deltas_size(), static_cast<int>(kExamples));
  for (size_t i = 0; i < kExamples; ++i) {
    const v1::ExampleDeltas& deltas = response.deltas(i);
    const Explanation& want = expected->second[i];
    EXPECT_EQ(std::vector<float>(deltas.z3().begin(), deltas.z3().end()),
              std::vector<float>(want.z3.begin(), want.z3.end()));
    EXPECT_EQ(std::vector<float>(deltas.a3().begin(), deltas.a3().end()),
              std::vector<float>(want.a3.begin(), want.a3.end()));
    EXPECT_EQ(std::vector<float>(deltas.delta3().begin(), deltas.delta3().end()),
              std::vector<float>(want.delta3.begin(), want.delta3.end()));
    EXPECT_EQ(std::vector<float>(deltas.delta1().begin(), deltas.delta1().end()), want.delta1);
    ASSERT_EQ(deltas.argmax_mask().size(), 2u * kConvSize);
    EXPECT_EQ(std::vector<uint8_t>(deltas.argmax_mask().begin(), deltas.argmax_mask().end()), want.argmax_mask);
    // The contract of NETWORK.md, checked on the wire: one routed position per
    // 2x2 window, delta1 zero elsewhere, delta3 = a3 - y for cross-entropy.
    EXPECT_EQ(std::count(deltas.argmax_mask().begin(), deltas.argmax_mask().end(), 1), 2 * kPoolSize);
    for (int j = 0; j < 2 * kConvSize; ++j) {
      if (deltas.argmax_mask()[j] == 0) {
        EXPECT_EQ(deltas.delta1(j), 0.0f) << "position " << j;
      }
    }
    for (int l = 0; l < kClasses; ++l) {
      const float y = l == train.labels[i] ? 1.0f : 0.0f;
      EXPECT_FLOAT_EQ(deltas.delta3(l), deltas.a3(l) - y);
    }
    EXPECT_DOUBLE_EQ(response.costs(i), ExampleCost(Cost::kCrossEntropy, want.z3.data(), train.labels[i]));
  }
}

TEST_F(ServiceTest, TrainOnInlineExamplesWithAnInlineEvaluationSet) {
  const Dataset train = SmallTrain();
  const Dataset test = SmallTest();
  v1::TrainRequest request;
  request.set_model_name("inline-model");
  request.set_feature_maps(1);
  AddExamples(train, 100, request.mutable_train_examples()->mutable_examples());
  AddExamples(test, 30, request.mutable_eval_examples()->mutable_examples());
  v1::Hyperparameters* h = request.mutable_hyperparameters();
  h->set_epochs(2);
  h->set_batch_size(10);
  h->set_learning_rate(0.5);
  h->set_cost(v1::COST_QUADRATIC);
  const std::string id = SubmitJob(stub(), request);
  const v1::TrainingJob job = WaitForJob(stub(), id);
  ASSERT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  EXPECT_EQ(job.train_dataset(), "inline");
  EXPECT_EQ(job.eval_dataset(), "inline");
  EXPECT_EQ(job.train_examples(), 100);
  EXPECT_EQ(job.eval_examples(), 30);
  ASSERT_EQ(job.epochs_size(), 2);
  EXPECT_EQ(job.epochs(1).test_examples(), 30);
  EXPECT_EQ(job.hyperparameters().cost(), v1::COST_QUADRATIC);
  EXPECT_EQ(job.hyperparameters().progress_every(), 1000);  // 0 = the server default

  TrainOptions options;
  options.epochs = 2;
  options.batch_size = 10;
  options.learning_rate = 0.5;
  options.cost = Cost::kQuadratic;
  options.seed = 0;
  auto expected = convnet::Train(*Parameters::Initialize(1, 0), train.Prefix(100), nullptr, options, nullptr);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(ExportParameters(stub(), "inline-model", 1), expected->parameters);
}

TEST_F(ServiceTest, DatasetsAreFoundWhenFirstNamedAndCorruptOnesAreDataLoss) {
  // Added while the server runs: found by the first request that names it.
  const std::string late = "late-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed());
  WriteDataset(data_dir_->path(), late, BundledMnist().train.Prefix(30), BundledMnist().test.Prefix(10));
  v1::TrainRequest request = FreshTrainRequest("late", 1, late, 1, 10);
  request.set_eval_dataset(late);
  ASSERT_EQ(TrainToCompletion(stub(), request), 1);

  // A dataset whose images file is truncated: the server's data is at fault.
  const std::string broken = "broken-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed());
  WriteDataset(data_dir_->path(), broken, BundledMnist().train.Prefix(30), BundledMnist().test.Prefix(10));
  const std::string images = data_dir_->Join(broken + "/train-images-idx3-ubyte");
  std::filesystem::resize_file(images, std::filesystem::file_size(images) - 100);
  v1::TrainResponse response;
  const grpc::Status status =
      stub().Train(Context().get(), FreshTrainRequest("broken", 1, broken, 1, 10), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_NE(status.error_message().find("dataset \"" + broken + "\" cannot be loaded"), std::string::npos)
      << status.error_message();
  wire::HealthCheckResponse health;
  ASSERT_TRUE(HealthCheck(server_->channel(), "", &health).ok());
  EXPECT_EQ(health.status(), wire::HealthCheckResponse::SERVING);
}

TEST_F(ServiceTest, GetTrainingJobAndListTrainingJobsNewestFirstWithFilters) {
  const std::string first = SubmitJob(stub(), FreshTrainRequest("a", 1, "tiny", 1, 10));
  ASSERT_EQ(WaitForJob(stub(), first).state(), v1::JOB_STATE_SUCCEEDED);
  const std::string second = SubmitJob(stub(), FreshTrainRequest("b", 1, "tiny", 1, 10));
  ASSERT_EQ(WaitForJob(stub(), second).state(), v1::JOB_STATE_SUCCEEDED);
  const std::string blocker = SubmitBlockingJob("a");

  v1::GetTrainingJobRequest get;
  get.set_job_id(first);
  v1::TrainingJob job;
  ASSERT_TRUE(stub().GetTrainingJob(Context().get(), get, &job).ok());
  EXPECT_EQ(job.job_id(), first);
  EXPECT_EQ(job.model_name(), "a");
  EXPECT_EQ(job.version(), 1);
  EXPECT_EQ(job.train_dataset(), "tiny");
  EXPECT_EQ(job.feature_maps(), 1);

  auto list = [&](const std::string& model, v1::JobState state) {
    v1::ListTrainingJobsRequest request;
    request.set_model_name(model);
    request.set_state(state);
    v1::ListTrainingJobsResponse response;
    EXPECT_TRUE(stub().ListTrainingJobs(Context().get(), request, &response).ok());
    std::vector<std::string> ids;
    for (const v1::TrainingJob& j : response.jobs()) ids.push_back(j.job_id());
    return ids;
  };
  EXPECT_EQ(list("", v1::JOB_STATE_UNSPECIFIED), (std::vector<std::string>{blocker, second, first}));
  EXPECT_EQ(list("a", v1::JOB_STATE_UNSPECIFIED), (std::vector<std::string>{blocker, first}));
  EXPECT_EQ(list("", v1::JOB_STATE_SUCCEEDED), (std::vector<std::string>{second, first}));
  EXPECT_EQ(list("b", v1::JOB_STATE_FAILED), std::vector<std::string>{});

  v1::TrainingJob cancelled;
  ASSERT_TRUE(Cancel(blocker, &cancelled).ok());
  EXPECT_EQ(list("", v1::JOB_STATE_CANCELLED), std::vector<std::string>{blocker});
}

TEST_F(ServiceTest, AnUnknownDatasetIsNotFoundListingTheSkippedFoldersWithTheirReasons) {
  TempDir data_dir;
  const Dataset train = SmallTrain().Prefix(20), test = SmallTest().Prefix(5);
  WriteDataset(data_dir.path(), "mnist", train, test);
  WriteDataset(data_dir.path(), "Fashion", train, test);
  WriteDataset(data_dir.path(), "emnist", train, test);
  std::filesystem::remove(data_dir.Join("emnist/t10k-labels-idx1-ubyte"));
  server::ServerOptions options = Options();
  options.data_dir = data_dir.path();
  StartServer(options);

  v1::TrainResponse response;
  const grpc::Status status =
      stub().Train(Context().get(), FreshTrainRequest("digits", 1, "fashion", 1, 10), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(status.error_message().find("dataset \"fashion\" not found in " + data_dir.path() +
                                        " (available: mnist; skipped: Fashion (bad name: "),
            std::string::npos)
      << status.error_message();
  EXPECT_NE(status.error_message().find("emnist (missing t10k-labels-idx1-ubyte[.gz]))"), std::string::npos)
      << status.error_message();
}

}  // namespace
}  // namespace convnet::server_testing
