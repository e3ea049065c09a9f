// GetServerStats: per-method counts, errors by code and latencies after known
// calls; images per model version; jobs by state; and the latency histogram
// behind the percentiles.
#include <cmath>
#include <map>
#include <tuple>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "api_fixture.h"
#include "gtest/gtest.h"
#include "server/server_stats.h"

namespace convnet::server_testing {
namespace {

class StatsTest : public ApiTest {
 protected:
  v1::GetServerStatsResponse Stats() {
    v1::GetServerStatsResponse response;
    const grpc::Status status = stub().GetServerStats(Context().get(), v1::GetServerStatsRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  static const v1::MethodStats& Method(const v1::GetServerStatsResponse& stats, const std::string& name) {
    for (const v1::MethodStats& method : stats.methods()) {
      if (method.method() == name) return method;
    }
    ADD_FAILURE() << "no method " << name;
    static const v1::MethodStats kNone;
    return kNone;
  }

  static std::map<std::string, int64_t> ErrorsByCode(const v1::MethodStats& method) {
    std::map<std::string, int64_t> errors;
    for (const v1::StatusCodeCount& code : method.errors_by_code()) errors[code.code_name()] = code.count();
    return errors;
  }

  grpc::Status PredictImages(const std::string& model, int64_t version, size_t n) {
    v1::PredictRequest request;
    request.set_model_name(model);
    request.set_version(version);
    for (size_t i = 0; i < n; ++i) *request.add_images() = PixelImage(SmallTest().image(i));
    v1::PredictResponse response;
    return stub().Predict(Context().get(), request, &response);
  }

  void WaitUntilRunning(const std::string& job_id) {
    for (int i = 0; i < 2000; ++i) {
      v1::GetTrainingJobRequest request;
      request.set_job_id(job_id);
      v1::TrainingJob job;
      ASSERT_TRUE(stub().GetTrainingJob(Context().get(), request, &job).ok());
      if (job.state() == v1::JOB_STATE_RUNNING) return;
      absl::SleepFor(absl::Milliseconds(5));
    }
    FAIL() << "job " << job_id << " never started";
  }
};

TEST_F(StatsTest, ListsEveryMethodInServiceOrderAndNothingBeforeTheFirstCall) {
  const v1::GetServerStatsResponse stats = Stats();
  const std::vector<std::string> expected = {"Predict",          "Train",        "GetTrainingJob",
                                             "ListTrainingJobs", "CancelTrainingJob", "WatchTrainingJob",
                                             "GetGradients",     "ListModels",   "GetModel",
                                             "GetServerStats"};
  ASSERT_EQ(stats.methods_size(), static_cast<int>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    const v1::MethodStats& method = stats.methods(static_cast<int>(i));
    EXPECT_EQ(method.method(), expected[i]);
    EXPECT_EQ(method.count(), 0) << method.method();
    EXPECT_EQ(method.errors(), 0) << method.method();
    EXPECT_EQ(method.latency_p50_us(), 0) << method.method();
  }
  EXPECT_TRUE(stats.model_versions().empty());
  const int64_t now_ms = absl::ToUnixMillis(absl::Now());
  EXPECT_EQ(stats.thread_pool_threads(), 2);
  EXPECT_EQ(stats.thread_pool_queue_length(), 0);  // idle: no task waits for a worker
  EXPECT_EQ(stats.calls_in_flight(), 1);           // this call
  // Started by this test's fixture, and the uptime is the time since then.
  EXPECT_LE(stats.started_unix_ms(), now_ms);
  EXPECT_GT(stats.started_unix_ms(), now_ms - 60'000);
  EXPECT_NEAR(stats.uptime_seconds(), static_cast<double>(now_ms - stats.started_unix_ms()) / 1000.0, 1.0);
}

TEST_F(StatsTest, CountsCallsAndErrorsByStatusCode) {
  EXPECT_EQ(PredictImages("nosuchmodel", 0, 1).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(PredictImages("nosuchmodel", 3, 2).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(PredictImages("Bad Name", 0, 1).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  for (int i = 0; i < 3; ++i) {
    v1::ListModelsResponse response;
    ASSERT_TRUE(stub().ListModels(Context().get(), v1::ListModelsRequest(), &response).ok());
  }
  v1::GetTrainingJobRequest get;
  get.set_job_id("no-such-job");
  v1::TrainingJob job;
  EXPECT_EQ(stub().GetTrainingJob(Context().get(), get, &job).error_code(), grpc::StatusCode::NOT_FOUND);

  const v1::GetServerStatsResponse first = Stats();
  const v1::MethodStats& predict = Method(first, "Predict");
  EXPECT_EQ(predict.count(), 3);
  EXPECT_EQ(predict.errors(), 3);
  EXPECT_EQ(ErrorsByCode(predict), (std::map<std::string, int64_t>{{"INVALID_ARGUMENT", 1}, {"NOT_FOUND", 2}}));
  ASSERT_EQ(predict.errors_by_code_size(), 2);
  EXPECT_EQ(predict.errors_by_code(0).code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
  EXPECT_EQ(predict.errors_by_code(1).code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_GT(predict.latency_p50_us(), 0);
  EXPECT_GE(predict.latency_p99_us(), predict.latency_p50_us());
  EXPECT_GT(predict.latency_mean_us(), 0);

  const v1::MethodStats& list = Method(first, "ListModels");
  EXPECT_EQ(list.count(), 3);
  EXPECT_EQ(list.errors(), 0);
  EXPECT_TRUE(list.errors_by_code().empty());
  EXPECT_GT(list.latency_p50_us(), 0);
  EXPECT_EQ(Method(first, "GetTrainingJob").count(), 1);
  EXPECT_EQ(ErrorsByCode(Method(first, "GetTrainingJob")), (std::map<std::string, int64_t>{{"NOT_FOUND", 1}}));
  EXPECT_EQ(Method(first, "Train").count(), 0);
  // A call is counted when it ends: the first GetServerStats sees none of itself.
  EXPECT_EQ(Method(first, "GetServerStats").count(), 0);
  EXPECT_EQ(Method(Stats(), "GetServerStats").count(), 1);
  // Failed Predicts predict no images.
  EXPECT_TRUE(first.model_versions().empty());
}

TEST_F(StatsTest, CountsImagesPerModelVersionForSuccessfulPredictsOnly) {
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("digits", 1, "tiny", 1, 10)), 1);
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("digits", 1, "tiny", 1, 10)), 2);
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("other", 1, "tiny", 1, 10)), 1);
  ASSERT_TRUE(PredictImages("digits", 1, 3).ok());
  ASSERT_TRUE(PredictImages("digits", 0, 5).ok());  // the latest: version 2
  ASSERT_TRUE(PredictImages("digits", 2, 4).ok());
  ASSERT_TRUE(PredictImages("other", 1, 1).ok());
  EXPECT_EQ(PredictImages("digits", 9, 7).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::PredictRequest bad;
  bad.set_model_name("digits");
  bad.add_images()->set_pixels(std::string(783, '\0'));
  v1::PredictResponse response;
  EXPECT_EQ(stub().Predict(Context().get(), bad, &response).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  const v1::GetServerStatsResponse stats = Stats();
  ASSERT_EQ(stats.model_versions_size(), 3);
  const auto row = [](const v1::ModelVersionStats& v) {
    return std::make_tuple(v.model_name(), v.version(), v.predict_requests(), v.images_predicted());
  };
  EXPECT_EQ(row(stats.model_versions(0)), std::make_tuple(std::string("digits"), int64_t{1}, int64_t{1}, int64_t{3}));
  EXPECT_EQ(row(stats.model_versions(1)), std::make_tuple(std::string("digits"), int64_t{2}, int64_t{2}, int64_t{9}));
  EXPECT_EQ(row(stats.model_versions(2)), std::make_tuple(std::string("other"), int64_t{1}, int64_t{1}, int64_t{1}));
  const v1::MethodStats& predict = Method(stats, "Predict");
  EXPECT_EQ(predict.count(), 6);
  EXPECT_EQ(predict.errors(), 2);
  EXPECT_EQ(Method(stats, "Train").count(), 3);
}

TEST_F(StatsTest, CountsJobsByState) {
  ASSERT_EQ(TrainToCompletion(stub(), FreshTrainRequest("done", 1, "tiny", 1, 10)), 1);
  const std::string blocker = SubmitBlockingJob();
  WaitUntilRunning(blocker);
  const std::string queued = SubmitJob(stub(), FreshTrainRequest("q", 1, "tiny", 1, 10));
  const std::string cancelled = SubmitJob(stub(), FreshTrainRequest("c", 1, "tiny", 1, 10));
  v1::TrainingJob job;
  ASSERT_TRUE(Cancel(cancelled, &job).ok());

  const v1::GetServerStatsResponse stats = Stats();
  std::map<v1::JobState, int64_t> by_state;
  for (const v1::JobStateCount& count : stats.jobs()) by_state[count.state()] = count.count();
  EXPECT_EQ(stats.jobs_size(), 5);
  EXPECT_EQ(by_state, (std::map<v1::JobState, int64_t>{{v1::JOB_STATE_QUEUED, 1},
                                                       {v1::JOB_STATE_RUNNING, 1},
                                                       {v1::JOB_STATE_SUCCEEDED, 1},
                                                       {v1::JOB_STATE_FAILED, 0},
                                                       {v1::JOB_STATE_CANCELLED, 1}}));
  EXPECT_EQ(Method(stats, "CancelTrainingJob").count(), 1);
  ASSERT_TRUE(Cancel(queued, &job).ok());
  ASSERT_TRUE(Cancel(blocker, &job).ok());
}

TEST(StatsHistogramTest, BucketsAreContiguousAndIncreasing) {
  using server::LatencyHistogram;
  EXPECT_EQ(LatencyHistogram::BucketOf(0), 0);
  EXPECT_EQ(LatencyHistogram::BucketOf(1023), 0);
  EXPECT_EQ(LatencyHistogram::BucketOf(1024), 1);
  EXPECT_EQ(LatencyHistogram::BucketOf(int64_t{1} << 40), LatencyHistogram::kBuckets - 1);
  for (int b = 1; b < LatencyHistogram::kBuckets - 1; ++b) {
    const auto [lower, upper] = LatencyHistogram::BucketRange(b);
    EXPECT_EQ(LatencyHistogram::BucketOf(static_cast<int64_t>(lower)), b);
    EXPECT_EQ(LatencyHistogram::BucketOf(static_cast<int64_t>(upper) - 1), b);
    EXPECT_LE(upper / lower, 1.126);  // 8 buckets per doubling
  }
}

TEST(StatsHistogramTest, QuantilesAreWithinTheBucketResolution) {
  server::LatencyHistogram histogram;
  // 1..1000 microseconds, once each: p50 = 500 us, p99 = 990 us.
  for (int us = 1; us <= 1000; ++us) histogram.Add(int64_t{us} * 1000);
  const server::LatencyHistogram::Snapshot snapshot = histogram.Read();
  EXPECT_EQ(snapshot.total, 1000u);
  EXPECT_NEAR(snapshot.Quantile(0.50), 500e3, 500e3 * 0.07);
  EXPECT_NEAR(snapshot.Quantile(0.99), 990e3, 990e3 * 0.07);
  EXPECT_NEAR(snapshot.MeanNs(), 500.5e3, 1);
  EXPECT_EQ(server::LatencyHistogram().Read().Quantile(0.5), 0.0);
}

}  // namespace
}  // namespace convnet::server_testing
