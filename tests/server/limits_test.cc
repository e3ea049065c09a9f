// The server's limits at their exact boundaries: a request at the limit is
// served, one over is refused with its code and a message naming the limit's
// flag. Message size (requests, checked by gRPC; responses, checked by the
// service), images per Predict, examples per GetGradients, examples per inline
// training or evaluation set, the job limit (running + queued), and client
// deadlines: a long Predict or GetGradients stops on the server when its
// deadline passes instead of computing a result nobody waits for.
//
// Elsewhere: bad_input_test.cc has the over-the-limit cases of the catalogue
// (9 images or examples for --max_batch=8, a request far over
// --max_message_bytes, deltas over it); jobs_test.cc has the queue of
// --max_concurrent_jobs=1 + --max_queued_jobs=2 filling and freeing a slot.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "api_fixture.h"
#include "core/model_file.h"
#include "core/parameters.h"
#include "gtest/gtest.h"
#include "server/server.h"

namespace convnet::server_testing {
namespace {

using grpc::StatusCode;

constexpr int kMaxBatch = 8;
constexpr size_t kMaxMessageBytes = 1 << 20;
constexpr int kMaxInlineExamples = 30;

// Expects `status` to carry `code` and a message containing `fragment`.
void ExpectRefused(const grpc::Status& status, StatusCode code, const std::string& fragment) {
  EXPECT_EQ(status.error_code(), code) << status.error_message();
  EXPECT_NE(status.error_message().find(fragment), std::string::npos)
      << "expected \"" << fragment << "\" in \"" << status.error_message() << "\"";
}

size_t VarintSize(size_t value) {
  size_t size = 1;
  while (value >= 0x80) {
    value >>= 7;
    ++size;
  }
  return size;
}

// `request` grown to exactly `bytes` serialized bytes with an unknown
// length-delimited field (number 999), which protobuf keeps and the service
// does not look at: the request is served exactly as without it.
template <typename Request>
Request PaddedTo(const Request& request, size_t bytes) {
  constexpr uint32_t kTag = (999 << 3) | 2;
  std::string serialized = request.SerializeAsString();
  const size_t fixed = serialized.size() + VarintSize(kTag);
  size_t padding = bytes - fixed - VarintSize(bytes - fixed);
  while (fixed + VarintSize(padding) + padding > bytes) --padding;
  EXPECT_EQ(fixed + VarintSize(padding) + padding, bytes) << "no padding gives exactly " << bytes << " bytes";
  auto append_varint = [&serialized](size_t value) {
    while (value >= 0x80) {
      serialized.push_back(static_cast<char>((value & 0x7f) | 0x80));
      value >>= 7;
    }
    serialized.push_back(static_cast<char>(value));
  };
  append_varint(kTag);
  append_varint(padding);
  serialized.append(padding, 'x');
  Request padded;
  EXPECT_TRUE(padded.ParseFromString(serialized));
  EXPECT_EQ(padded.ByteSizeLong(), bytes);
  return padded;
}

class LimitsTest : public ApiTest {
 protected:
  server::ServerOptions Options() const override {
    server::ServerOptions options = ApiTest::Options();
    options.max_batch = kMaxBatch;
    options.max_message_bytes = kMaxMessageBytes;
    options.max_inline_examples = kMaxInlineExamples;
    return options;
  }

  // Publishes a fresh network of K maps as the next version of `model`.
  int64_t Publish(const std::string& model, int k) {
    auto parameters = Parameters::Initialize(k, 3);
    EXPECT_TRUE(parameters.ok()) << parameters.status();
    auto published = server_->server().repository().Publish(model, Model{*std::move(parameters), ModelMetadata{}});
    EXPECT_TRUE(published.ok()) << published.status();
    return published.ok() ? published->version : 0;
  }

  static v1::PredictRequest PredictOf(const std::string& model, size_t images) {
    v1::PredictRequest request;
    request.set_model_name(model);
    for (size_t i = 0; i < images; ++i) *request.add_images() = PixelImage(Mnist().test.image(i));
    return request;
  }

  grpc::Status Predict(const v1::PredictRequest& request, v1::PredictResponse* response) {
    return stub().Predict(Context().get(), request, response);
  }

  // GetGradients on `examples` test examples with inline parameters of K maps.
  grpc::Status Gradients(size_t examples, int k, bool include_deltas, v1::GetGradientsResponse* response) {
    v1::GetGradientsRequest request;
    AddExamples(Mnist().test, examples, request.mutable_examples());
    auto parameters = Parameters::Initialize(k, 5);
    EXPECT_TRUE(parameters.ok()) << parameters.status();
    request.mutable_parameters()->set_feature_maps(k);
    request.mutable_parameters()->mutable_values()->Assign(parameters->flat().begin(), parameters->flat().end());
    request.set_cost(v1::COST_QUADRATIC);
    request.set_include_deltas(include_deltas);
    return stub().GetGradients(Context().get(), request, response);
  }

  grpc::Status Train(const v1::TrainRequest& request, v1::TrainResponse* response) {
    return stub().Train(Context().get(), request, response);
  }
};

// --- --max_message_bytes ------------------------------------------------------

TEST_F(LimitsTest, ARequestOfExactlyMaxMessageBytesIsServedAndOneByteMoreIsRefusedByGrpc) {
  Publish("digits", 1);
  const v1::PredictRequest request = PredictOf("digits", 1);
  v1::PredictResponse response;
  const grpc::Status at_limit = Predict(PaddedTo(request, kMaxMessageBytes), &response);
  ASSERT_TRUE(at_limit.ok()) << at_limit.error_message();
  EXPECT_EQ(response.predictions_size(), 1);

  const grpc::Status over = Predict(PaddedTo(request, kMaxMessageBytes + 1), &response);
  ExpectRefused(over, StatusCode::RESOURCE_EXHAUSTED, "larger than max (1048577 vs. 1048576)");
}

// GetModel exporting every version of a K = 64 model (about 367 KiB of
// parameters each): two fit in 1 MiB and make the last page; with a third
// the page still holds two and the third follows on the next page.
TEST_F(LimitsTest, APageOfExportedVersionsHoldsWhatFitsAndTheRestFollowsOnTheNextPage) {
  Publish("wide", 64);
  Publish("wide", 64);
  v1::GetModelRequest request;
  request.set_model_name("wide");
  request.set_include_parameters(true);
  v1::GetModelResponse response;
  const grpc::Status fits = stub().GetModel(Context().get(), request, &response);
  ASSERT_TRUE(fits.ok()) << fits.error_message();
  EXPECT_EQ(response.model().versions_size(), 2);
  EXPECT_TRUE(response.next_page_token().empty());
  EXPECT_LE(response.ByteSizeLong(), kMaxMessageBytes);

  Publish("wide", 64);
  const grpc::Status first = stub().GetModel(Context().get(), request, &response);
  ASSERT_TRUE(first.ok()) << first.error_message();
  EXPECT_EQ(response.model().versions_size(), 2);
  ASSERT_FALSE(response.next_page_token().empty());
  request.set_page_token(response.next_page_token());
  const grpc::Status second = stub().GetModel(Context().get(), request, &response);
  ASSERT_TRUE(second.ok()) << second.error_message();
  ASSERT_EQ(response.model().versions_size(), 1);
  EXPECT_EQ(response.model().versions(0).version(), 3);
  EXPECT_TRUE(response.next_page_token().empty());
}

// With deltas, an example of K = 64 adds about 180 KiB to the response: three
// fit in 1 MiB beside the gradient, four are refused before any work.
TEST_F(LimitsTest, GradientsWithDeltasUpToTheMessageLimitAreServedAndOneExampleMoreIsRefused) {
  v1::GetGradientsResponse response;
  const grpc::Status fits = Gradients(3, 64, /*include_deltas=*/true, &response);
  ASSERT_TRUE(fits.ok()) << fits.error_message();
  EXPECT_EQ(response.deltas_size(), 3);
  EXPECT_LE(response.ByteSizeLong(), kMaxMessageBytes);

  const grpc::Status over = Gradients(4, 64, /*include_deltas=*/true, &response);
  ExpectRefused(over, StatusCode::RESOURCE_EXHAUSTED,
                "include_deltas: the response for 4 examples with feature_maps 64");
  EXPECT_NE(over.error_message().find("(--max_message_bytes)"), std::string::npos) << over.error_message();
}

// --- --max_concurrent_gradients -------------------------------------------------

// Holds every call that reaches Pass() until Open(), and counts them.
class Gate {
 public:
  void Pass() {
    absl::MutexLock lock(&mu_);
    ++arrived_;
    mu_.AwaitWithTimeout(absl::Condition(&open_), absl::Seconds(120));
  }
  // True once `count` calls have reached Pass(); false after `timeout`.
  bool AwaitArrivals(int count, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto arrived = [this, count]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return arrived_ >= count; };
    return mu_.AwaitWithTimeout(absl::Condition(&arrived), timeout);
  }
  void Open() {
    absl::MutexLock lock(&mu_);
    open_ = true;
  }

 private:
  absl::Mutex mu_;
  int arrived_ ABSL_GUARDED_BY(mu_) = 0;
  bool open_ ABSL_GUARDED_BY(mu_) = false;
};

// One GetGradients with deltas held in its handler (by a test hook, after it
// took the one slot): a second is refused at once naming the flag, one
// without deltas is still served; once the first has finished the next one
// with deltas is accepted.
TEST_F(LimitsTest, GetGradientsWithDeltasBeyondMaxConcurrentGradientsIsRefusedAtOnce) {
  Gate gate;
  server::ServerOptions options = Options();
  options.max_concurrent_gradients = 1;
  options.test_hooks.gradients_admitted = [&gate] { gate.Pass(); };
  StartServer(options);

  grpc::Status held;
  std::thread first([&] {
    v1::GetGradientsResponse response;
    held = Gradients(3, 64, /*include_deltas=*/true, &response);
  });
  ASSERT_TRUE(gate.AwaitArrivals(1, absl::Seconds(60))) << "the first call never reached its handler";

  v1::GetGradientsResponse response;
  ExpectRefused(Gradients(1, 1, /*include_deltas=*/true, &response), StatusCode::RESOURCE_EXHAUSTED,
                "include_deltas: the server already computes 1 GetGradients calls with deltas, its limit "
                "(--max_concurrent_gradients=1)");
  const grpc::Status without_deltas = Gradients(1, 1, /*include_deltas=*/false, &response);
  EXPECT_TRUE(without_deltas.ok()) << without_deltas.error_message();

  gate.Open();
  first.join();
  ASSERT_TRUE(held.ok()) << held.error_message();
  const grpc::Status after = Gradients(1, 1, /*include_deltas=*/true, &response);
  ASSERT_TRUE(after.ok()) << after.error_message();
  EXPECT_EQ(response.deltas_size(), 1);
}

TEST(LimitsOptionsTest, MaxConcurrentGradientsMustBeAtLeastOne) {
  server::ServerOptions options;
  EXPECT_EQ(options.max_concurrent_gradients, 2);
  options.max_concurrent_gradients = 1;
  EXPECT_TRUE(server::ValidateServerOptions(options).ok());
  options.max_concurrent_gradients = 0;
  const absl::Status status = server::ValidateServerOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "--max_concurrent_gradients must be >= 1, got 0");
}

// --- --max_batch ---------------------------------------------------------------

TEST_F(LimitsTest, PredictTakesMaxBatchImagesAndRefusesOneMore) {
  Publish("digits", 1);
  v1::PredictResponse response;
  const grpc::Status at_limit = Predict(PredictOf("digits", kMaxBatch), &response);
  ASSERT_TRUE(at_limit.ok()) << at_limit.error_message();
  EXPECT_EQ(response.predictions_size(), kMaxBatch);

  ExpectRefused(Predict(PredictOf("digits", kMaxBatch + 1), &response), StatusCode::RESOURCE_EXHAUSTED,
                "images: 9 images exceed the server's limit of 8 per request (--max_batch)");
}

TEST_F(LimitsTest, GetGradientsTakesMaxBatchExamplesAndRefusesOneMore) {
  v1::GetGradientsResponse response;
  const grpc::Status at_limit = Gradients(kMaxBatch, 1, /*include_deltas=*/false, &response);
  ASSERT_TRUE(at_limit.ok()) << at_limit.error_message();
  EXPECT_EQ(response.costs_size(), kMaxBatch);

  ExpectRefused(Gradients(kMaxBatch + 1, 1, /*include_deltas=*/false, &response), StatusCode::RESOURCE_EXHAUSTED,
                "examples: 9 examples exceed the server's limit of 8 per request (--max_batch)");
}

// --- --max_inline_examples -------------------------------------------------------

TEST_F(LimitsTest, AnInlineTrainingSetOfMaxInlineExamplesIsTrainedAndOneMoreIsRefused) {
  v1::TrainRequest request = FreshTrainRequest("inline", 1, "tiny", 1, 10);
  AddExamples(Mnist().train, kMaxInlineExamples, request.mutable_train_examples()->mutable_examples());
  v1::TrainResponse response;
  const grpc::Status at_limit = Train(request, &response);
  ASSERT_TRUE(at_limit.ok()) << at_limit.error_message();
  EXPECT_EQ(WaitForJob(stub(), response.job_id()).state(), v1::JOB_STATE_SUCCEEDED);

  AddExample(Mnist().train, kMaxInlineExamples, request.mutable_train_examples()->mutable_examples());
  ExpectRefused(Train(request, &response), StatusCode::RESOURCE_EXHAUSTED,
                "train_examples.examples: 31 examples exceed the server's limit of 30 per request "
                "(--max_inline_examples)");
}

TEST_F(LimitsTest, AnInlineEvaluationSetOfMaxInlineExamplesIsAcceptedAndOneMoreIsRefused) {
  v1::TrainRequest request = FreshTrainRequest("inline", 1, "tiny", 1, 10);
  AddExamples(Mnist().test, kMaxInlineExamples, request.mutable_eval_examples()->mutable_examples());
  v1::TrainResponse response;
  const grpc::Status at_limit = Train(request, &response);
  ASSERT_TRUE(at_limit.ok()) << at_limit.error_message();
  EXPECT_EQ(WaitForJob(stub(), response.job_id()).state(), v1::JOB_STATE_SUCCEEDED);

  AddExample(Mnist().test, kMaxInlineExamples, request.mutable_eval_examples()->mutable_examples());
  ExpectRefused(Train(request, &response), StatusCode::RESOURCE_EXHAUSTED,
                "eval_examples.examples: 31 examples exceed the server's limit of 30 per request "
                "(--max_inline_examples)");
}

TEST(LimitsOptionsTest, MaxInlineExamplesMustBeAtLeastOne) {
  server::ServerOptions options;
  options.max_inline_examples = 1;
  EXPECT_TRUE(server::ValidateServerOptions(options).ok());
  options.max_inline_examples = 0;
  const absl::Status status = server::ValidateServerOptions(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(status.message(), "--max_inline_examples must be >= 1, got 0");
}

// --- --max_concurrent_jobs + --max_queued_jobs -------------------------------------

// The limit is on running and queued jobs together: with two slots and no
// queue, two jobs run, a third is refused, and a freed slot takes one again.
TEST_F(LimitsTest, TwoRunningJobsFillTwoSlotsWithoutAQueue) {
  server::ServerOptions options = Options();
  options.max_concurrent_jobs = 2;
  options.max_queued_jobs = 0;
  StartServer(options);
  const std::string first = SubmitBlockingJob("first");
  const std::string second = SubmitBlockingJob("second");
  // Both taken by a runner, so the refusal below counts them as running.
  WaitUntilRunning(first);
  WaitUntilRunning(second);

  v1::TrainResponse response;
  ExpectRefused(Train(FreshTrainRequest("third", 1, "tiny", 1, 10), &response), StatusCode::RESOURCE_EXHAUSTED,
                "training job queue is full: 2 running and 0 queued (--max_concurrent_jobs=2, --max_queued_jobs=0)");

  v1::TrainingJob job;
  ASSERT_TRUE(Cancel(first, &job).ok());
  EXPECT_EQ(job.state(), v1::JOB_STATE_CANCELLED);
  // The runner gives its slot back just after the job turns CANCELLED, so the
  // slot may take a moment to free.
  grpc::Status accepted;
  for (const absl::Time give_up = absl::Now() + absl::Seconds(60); absl::Now() < give_up;) {
    accepted = Train(FreshTrainRequest("third", 1, "small", 1000, 10), &response);
    if (accepted.error_code() != StatusCode::RESOURCE_EXHAUSTED) break;
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_TRUE(accepted.ok()) << accepted.error_message();
  ASSERT_TRUE(Cancel(second, &job).ok());
  ASSERT_TRUE(Cancel(response.job_id(), &job).ok());
}

// --- Client deadlines ----------------------------------------------------------------

// A server with one core thread and room for large batches, and a K = 64
// network: a Predict of kDeadlineBatch images, or a GetGradients, is seconds
// of work there. The client gives it a deadline of tens of milliseconds; the
// server must then stop the work at the next task of 16 images, or at the
// latest before it answers, and answer DEADLINE_EXCEEDED itself, which
// GetServerStats shows (a handler that answered would be counted OK). So
// that the outcome never depends on how fast the machine is, the deadline
// tests hold every handler that finished its work before its deadline (a
// test hook) until that deadline has passed on the server's clock.
constexpr int kDeadlineMaps = 64;
constexpr int kDeadlineBatch = 8192;

class DeadlineTest : public LimitsTest {
 protected:
  server::ServerOptions Options() const override {
    server::ServerOptions options = LimitsTest::Options();
    options.threads = 1;
    options.max_batch = kDeadlineBatch;
    options.max_message_bytes = 64 << 20;
    return options;
  }

  // Options() with every Predict and GetGradients that finishes its work held
  // until its deadline has passed.
  server::ServerOptions HoldingAnswersPastTheDeadline() const {
    server::ServerOptions options = Options();
    options.test_hooks.before_answer = [](absl::Time deadline) {
      if (deadline == absl::InfiniteFuture()) return;
      while (absl::Now() <= deadline) absl::SleepFor(deadline - absl::Now() + absl::Milliseconds(1));
    };
    return options;
  }

  // Waits until no call but the stats call is in flight, then returns the
  // statistics of `method`.
  v1::MethodStats StatsWhenIdle(const std::string& method) {
    v1::GetServerStatsResponse stats;
    for (const absl::Time give_up = absl::Now() + absl::Seconds(120); absl::Now() < give_up;) {
      stats.Clear();
      const grpc::Status status = stub().GetServerStats(Context().get(), v1::GetServerStatsRequest(), &stats);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (stats.calls_in_flight() <= 1) break;
      absl::SleepFor(absl::Milliseconds(5));
    }
    EXPECT_LE(stats.calls_in_flight(), 1) << "the server is still busy 120 s after the deadline";
    for (const v1::MethodStats& m : stats.methods()) {
      if (m.method() == method) return m;
    }
    ADD_FAILURE() << "no statistics for " << method;
    return v1::MethodStats();
  }

  static std::map<std::string, int64_t> ErrorsByCode(const v1::MethodStats& method) {
    std::map<std::string, int64_t> errors;
    for (const v1::StatusCodeCount& code : method.errors_by_code()) errors[code.code_name()] = code.count();
    return errors;
  }

  // Makes `call` with a deadline of 50 ms, and again with 100 and 200 ms while
  // no call has reached `method`'s handler: a deadline that passes while the
  // request is still in transit (megabytes, on a loaded machine) ends the call
  // in gRPC before any handler runs. Every call that reached the handler must
  // have been stopped there (DEADLINE_EXCEEDED, none OK).
  void ExpectStoppedOnTheServer(const std::string& method,
                                const std::function<grpc::Status(std::unique_ptr<grpc::ClientContext>)>& call) {
    v1::MethodStats stats;
    for (const int ms : {50, 100, 200}) {
      const grpc::Status status = call(Context(absl::Milliseconds(ms)));
      EXPECT_EQ(status.error_code(), StatusCode::DEADLINE_EXCEEDED) << status.error_message();
      // The handler may start only after the client has given up.
      for (const absl::Time settle = absl::Now() + absl::Seconds(2);;) {
        stats = StatsWhenIdle(method);
        if (stats.count() > 0 || absl::Now() >= settle) break;
        absl::SleepFor(absl::Milliseconds(20));
      }
      if (stats.count() > 0) break;
    }
    ASSERT_GE(stats.count(), 1) << "no " << method << " call reached the server before its deadline, even at 200 ms";
    EXPECT_EQ(ErrorsByCode(stats)["DEADLINE_EXCEEDED"], stats.count())
        << "every call that reached the handler must have been stopped there: " << stats.DebugString();
  }
};

TEST_F(DeadlineTest, APredictOfMaxBatchImagesStopsOnTheServerWhenItsDeadlinePasses) {
  StartServer(HoldingAnswersPastTheDeadline());
  Publish("wide", kDeadlineMaps);
  v1::PredictRequest request;
  request.set_model_name("wide");
  const Dataset& test = Mnist().test;
  for (int i = 0; i < kDeadlineBatch; ++i) *request.add_images() = PixelImage(test.image(i % test.size()));
  ExpectStoppedOnTheServer("Predict", [&](std::unique_ptr<grpc::ClientContext> context) {
    v1::PredictResponse response;
    return stub().Predict(context.get(), request, &response);
  });
}

TEST_F(DeadlineTest, AGetGradientsOfMaxBatchExamplesStopsOnTheServerWhenItsDeadlinePasses) {
  for (const bool include_deltas : {false, true}) {
    SCOPED_TRACE(include_deltas ? "with deltas" : "without deltas");
    StartServer(HoldingAnswersPastTheDeadline());  // fresh statistics
    v1::GetGradientsRequest request;
    const size_t examples = include_deltas ? 256 : kDeadlineBatch;  // deltas: about 45 MiB of response
    const Dataset& test = Mnist().test;
    for (size_t i = 0; i < examples; ++i) AddExample(test, i % test.size(), request.mutable_examples());
    auto parameters = Parameters::Initialize(kDeadlineMaps, 5);
    ASSERT_TRUE(parameters.ok()) << parameters.status();
    request.mutable_parameters()->set_feature_maps(kDeadlineMaps);
    request.mutable_parameters()->mutable_values()->Assign(parameters->flat().begin(), parameters->flat().end());
    request.set_cost(v1::COST_CROSS_ENTROPY);
    request.set_include_deltas(include_deltas);
    ExpectStoppedOnTheServer("GetGradients", [&](std::unique_ptr<grpc::ClientContext> context) {
      v1::GetGradientsResponse response;
      return stub().GetGradients(context.get(), request, &response);
    });
  }
}

// A call whose work is done long before its deadline (one example, K = 1)
// but which is held (test hook) until the deadline has passed: the handler
// sees that nobody waits for the answer and answers DEADLINE_EXCEEDED instead
// of OK.
TEST_F(DeadlineTest, ACallWhoseDeadlinePassesAfterItsWorkIsAnsweredDeadlineExceeded) {
  StartServer(HoldingAnswersPastTheDeadline());
  Publish("narrow", 1);
  const absl::Duration deadline = absl::Milliseconds(500);
  for (const bool include_deltas : {false, true}) {
    SCOPED_TRACE(include_deltas ? "GetGradients with deltas" : "GetGradients");
    v1::GetGradientsRequest request;
    AddExamples(Mnist().test, 1, request.mutable_examples());
    request.mutable_model()->set_model_name("narrow");
    request.set_cost(v1::COST_QUADRATIC);
    request.set_include_deltas(include_deltas);
    v1::GetGradientsResponse response;
    EXPECT_EQ(stub().GetGradients(Context(deadline).get(), request, &response).error_code(),
              StatusCode::DEADLINE_EXCEEDED);
  }
  v1::PredictResponse response;
  EXPECT_EQ(stub().Predict(Context(deadline).get(), PredictOf("narrow", 1), &response).error_code(),
            StatusCode::DEADLINE_EXCEEDED);

  const v1::MethodStats gradients = StatsWhenIdle("GetGradients");
  EXPECT_EQ(gradients.count(), 2);
  EXPECT_EQ(ErrorsByCode(gradients)["DEADLINE_EXCEEDED"], 2) << gradients.DebugString();
  const v1::MethodStats predict = StatsWhenIdle("Predict");
  EXPECT_EQ(predict.count(), 1);
  EXPECT_EQ(ErrorsByCode(predict)["DEADLINE_EXCEEDED"], 1) << predict.DebugString();
}

// A client that cancels its GetGradients (ClientContext::TryCancel) while
// the handler computes a batch of seconds: the handler stops at its next task
// and answers CANCELLED itself, which GetServerStats shows (a handler that ran
// to completion would be counted OK).
TEST_F(DeadlineTest, AGetGradientsCancelledByItsClientStopsOnTheServer) {
  v1::GetGradientsRequest request;
  const Dataset& test = Mnist().test;
  for (int i = 0; i < kDeadlineBatch; ++i) AddExample(test, i % test.size(), request.mutable_examples());
  auto parameters = Parameters::Initialize(kDeadlineMaps, 5);
  ASSERT_TRUE(parameters.ok()) << parameters.status();
  request.mutable_parameters()->set_feature_maps(kDeadlineMaps);
  request.mutable_parameters()->mutable_values()->Assign(parameters->flat().begin(), parameters->flat().end());
  request.set_cost(v1::COST_CROSS_ENTROPY);

  std::unique_ptr<grpc::ClientContext> context = Context();
  grpc::Status status;
  std::thread call([&] {
    v1::GetGradientsResponse response;
    status = stub().GetGradients(context.get(), request, &response);
  });
  // Cancels once the handler runs: two calls in flight, it and the stats call.
  bool running = false;
  for (const absl::Time give_up = absl::Now() + absl::Seconds(60); !running && absl::Now() < give_up;) {
    v1::GetServerStatsResponse stats;
    ASSERT_TRUE(stub().GetServerStats(Context().get(), v1::GetServerStatsRequest(), &stats).ok());
    running = stats.calls_in_flight() >= 2;
    if (!running) absl::SleepFor(absl::Milliseconds(2));
  }
  context->TryCancel();
  call.join();
  ASSERT_TRUE(running) << "the GetGradients handler never started";
  EXPECT_EQ(status.error_code(), StatusCode::CANCELLED) << status.error_message();
  const v1::MethodStats stats = StatsWhenIdle("GetGradients");
  EXPECT_EQ(stats.count(), 1);
  EXPECT_EQ(ErrorsByCode(stats)["CANCELLED"], 1)
      << "the handler must stop when its client cancels: " << stats.DebugString();
}

// A call without a deadline (gRPC's infinite one) or with one far away is
// answered in full.
TEST_F(DeadlineTest, ACallWithoutADeadlineOrWithAFarOneIsAnsweredInFull) {
  Publish("wide", kDeadlineMaps);
  const v1::PredictRequest request = PredictOf("wide", 64);
  v1::PredictResponse response;
  grpc::ClientContext no_deadline;
  const grpc::Status unbounded = stub().Predict(&no_deadline, request, &response);
  ASSERT_TRUE(unbounded.ok()) << unbounded.error_message();
  EXPECT_EQ(response.predictions_size(), 64);
  const grpc::Status far = stub().Predict(Context(absl::Seconds(300)).get(), request, &response);
  ASSERT_TRUE(far.ok()) << far.error_message();
  EXPECT_EQ(response.predictions_size(), 64);
}

}  // namespace
}  // namespace convnet::server_testing
