// End to end through the API: the seed network (K = 1) trained on the bundled
// MNIST (60,000 training examples, 3 epochs, cross-entropy, eta 0.5, mini-batch
// 10), evaluated on the 10,000 test examples after every epoch, reaches at
// least 91% test accuracy; the served version then classifies the test set
// through Predict exactly as the job reported.
#include <string>

#include "gtest/gtest.h"
#include "test_support.h"

namespace convnet::server_testing {
namespace {

TEST(MnistEndToEndTest, SeedNetworkTrainedThroughTheApiReachesNinetyOnePercent) {
  TempDir model_dir;
  server::ServerOptions options;
  options.model_dir = model_dir.path();
  options.data_dir = CONVNET_DATA_DIR;  // the bundled data/, dataset "mnist"
  options.threads = 2;
  options.max_batch = 1000;
  std::unique_ptr<TestServer> server = TestServer::Start(options);
  ASSERT_NE(server, nullptr);

  v1::TrainRequest request;
  request.set_model_name("mnist-k1");
  request.set_feature_maps(1);
  request.set_train_dataset("mnist");
  request.set_eval_dataset("mnist");
  v1::Hyperparameters* h = request.mutable_hyperparameters();
  h->set_epochs(3);
  h->set_batch_size(10);
  h->set_learning_rate(0.5);
  h->set_cost(v1::COST_CROSS_ENTROPY);
  h->set_seed(1);
  h->set_progress_every(10000);
  v1::TrainResponse submitted;
  const grpc::Status status = server->stub().Train(Context().get(), request, &submitted);
  ASSERT_TRUE(status.ok()) << status.error_message();

  // Follow the job on the watch stream, as a client would.
  v1::WatchTrainingJobRequest watch;
  watch.set_job_id(submitted.job_id());
  auto context = Context(absl::Minutes(10));
  auto reader = server->stub().WatchTrainingJob(context.get(), watch);
  v1::WatchTrainingJobResponse message;
  v1::TrainingJob final_job;
  int epoch_messages = 0;
  while (reader->Read(&message)) {
    if (message.has_epoch()) {
      ++epoch_messages;
      EXPECT_EQ(message.epoch().epoch(), epoch_messages);
      std::cout << "epoch " << message.epoch().epoch() << ": test accuracy "
                << 100 * message.epoch().test_accuracy() << "%, train cost " << message.epoch().train_cost()
                << ", " << message.epoch().seconds() << " s" << std::endl;
    }
    if (message.has_job()) final_job = message.job();
  }
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_EQ(final_job.state(), v1::JOB_STATE_SUCCEEDED) << final_job.error();
  EXPECT_EQ(epoch_messages, 3);
  ASSERT_EQ(final_job.epochs_size(), 3);
  EXPECT_EQ(final_job.train_examples(), 60000);
  EXPECT_EQ(final_job.epochs(2).test_examples(), 10000);
  const double accuracy = final_job.epochs(2).test_accuracy();
  EXPECT_GE(accuracy, 0.91);

  // Predict over the whole test set through the API: the served version is
  // the one the job evaluated.
  const Dataset& test = BundledMnist().test;
  int correct = 0;
  for (size_t start = 0; start < test.size(); start += 1000) {
    v1::PredictRequest predict;
    predict.set_model_name("mnist-k1");
    for (size_t i = start; i < start + 1000 && i < test.size(); ++i) *predict.add_images() = PixelImage(test.image(i));
    v1::PredictResponse response;
    const grpc::Status predicted = server->stub().Predict(Context().get(), predict, &response);
    ASSERT_TRUE(predicted.ok()) << predicted.error_message();
    EXPECT_EQ(response.version(), final_job.version());
    for (int i = 0; i < response.predictions_size(); ++i) {
      if (response.predictions(i).predicted_class() == test.labels[start + i]) ++correct;
    }
  }
  EXPECT_EQ(correct, static_cast<int>(std::lround(accuracy * test.size())));
}

}  // namespace
}  // namespace convnet::server_testing
