// Paging (AIP-158) of ListModels, GetModel's versions and ListTrainingJobs:
// walking every page returns every item exactly once and in order, for page
// sizes from 1 to above the total; page_size 0 is the server default; a page
// ends early rather than exceed --max_message_bytes; a token marks the last
// item, so items added between pages do not shift the walk; a token survives
// a restart; a token of another request is refused. The catalogue of bad
// page_size and page_token values is in bad_input_test.cc.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "api_fixture.h"
#include "core/model_file.h"
#include "core/parameters.h"
#include "gtest/gtest.h"
#include "server/paging.h"

namespace convnet::server_testing {
namespace {

using grpc::StatusCode;

constexpr int kVersions = 300;
constexpr int kJobs = 300;

class PagingTest : public ApiTest {
 protected:
  server::ServerOptions Options() const override {
    server::ServerOptions options = ApiTest::Options();
    options.max_message_bytes = 1 << 20;
    options.max_queued_jobs = kJobs + 10;
    return options;
  }

  // Publishes `count` versions of `model` straight through the repository
  // (no training), K maps each, with `epochs` epochs of metadata.
  void Publish(const std::string& model, int count, int k = 1, int epochs = 0) {
    auto parameters = Parameters::Initialize(k, 3);
    ASSERT_TRUE(parameters.ok()) << parameters.status();
    ModelMetadata metadata;
    metadata.epochs.resize(epochs);
    for (int i = 0; i < epochs; ++i) {
      metadata.epochs[i] = EpochMetrics{.epoch = i + 1, .train_cost = 0.25, .test_accuracy = 0.9, .test_cost = 0.3,
                                        .test_examples = 10000, .seconds = 1.5};
    }
    for (int i = 0; i < count; ++i) {
      auto published = server_->server().repository().Publish(model, Model{*parameters, metadata});
      ASSERT_TRUE(published.ok()) << published.status();
    }
  }

  // Every page of `call(request)`, in order, following next_page_token; fails
  // the test on an error (and stops after kVersions + 1 pages).
  template <typename Request, typename Response, typename Call>
  std::vector<Response> Pages(Request request, Call call) {
    std::vector<Response> pages;
    do {
      Response page;
      const grpc::Status status = (stub().*call)(Context().get(), request, &page);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok() || pages.size() > kVersions) break;
      request.set_page_token(page.next_page_token());
      pages.push_back(std::move(page));
    } while (!request.page_token().empty());
    return pages;
  }

  std::vector<v1::GetModelResponse> ModelPages(const v1::GetModelRequest& request) {
    return Pages<v1::GetModelRequest, v1::GetModelResponse>(request, &v1::ConvNet::Stub::GetModel);
  }

  std::vector<v1::ListModelsResponse> ListModelsPages(const v1::ListModelsRequest& request) {
    return Pages<v1::ListModelsRequest, v1::ListModelsResponse>(request, &v1::ConvNet::Stub::ListModels);
  }

  // The ids of every page of ListTrainingJobs(`request`), in order; calls
  // `between_pages` after each page but the last.
  std::vector<std::string> JobIdsOfAllPages(v1::ListTrainingJobsRequest request, int* pages = nullptr,
                                            const std::function<void()>& between_pages = {}) {
    std::vector<std::string> ids;
    int count = 0;
    do {
      v1::ListTrainingJobsResponse page;
      const grpc::Status status = stub().ListTrainingJobs(Context().get(), request, &page);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok() || count > kJobs) break;
      ++count;
      if (request.page_size() > 0) {
        EXPECT_LE(page.jobs_size(), request.page_size());
      }
      for (const v1::TrainingJob& job : page.jobs()) ids.push_back(job.job_id());
      request.set_page_token(page.next_page_token());
      if (!request.page_token().empty() && between_pages) between_pages();
    } while (!request.page_token().empty());
    if (pages != nullptr) *pages = count;
    return ids;
  }

  // Keeps the single job slot busy and queues `count` cheap jobs (1 epoch on
  // two inline examples) behind it; returns the ids newest first, as listed.
  std::vector<std::string> QueueJobs(int count) {
    // Running before the others are queued, so that a filter by state sees it
    // as RUNNING and every other job as QUEUED.
    WaitUntilRunning(SubmitBlockingJob());
    std::vector<std::string> ids;
    v1::TrainRequest request = FreshTrainRequest("queued", 1, "tiny", 1, 1);
    AddExamples(Mnist().train, 2, request.mutable_train_examples()->mutable_examples());
    for (int i = 0; i < count; ++i) ids.insert(ids.begin(), SubmitJob(stub(), request));
    return ids;
  }

  // The newest job first: the blocker submitted by QueueJobs is the oldest.
  std::vector<std::string> AllJobIds() {
    std::vector<std::string> ids;
    v1::ListTrainingJobsRequest request;
    request.set_page_size(server::kMaxPageSize);
    return JobIdsOfAllPages(request);
  }
};

std::vector<int64_t> Sequence(int64_t first, int64_t last) {
  std::vector<int64_t> values;
  for (int64_t v = first; v <= last; ++v) values.push_back(v);
  return values;
}

// --- GetModel's versions -------------------------------------------------------

// Page size 0 is the default, 100 versions.
TEST_F(PagingTest, GetModelPagesReturnEveryVersionOnceInOrderForEveryPageSize) {
  Publish("many", kVersions);
  for (const int requested : {1, 7, 100, 299, 300, 301, 1000, 0}) {
    SCOPED_TRACE(testing::Message() << "page_size " << requested);
    const int page_size = requested == 0 ? 100 : requested;
    v1::GetModelRequest request;
    request.set_model_name("many");
    request.set_page_size(requested);
    std::vector<int64_t> versions;
    const std::vector<v1::GetModelResponse> pages = ModelPages(request);
    for (const v1::GetModelResponse& page : pages) {
      EXPECT_LE(page.model().versions_size(), page_size);
      EXPECT_EQ(page.model().latest_version(), kVersions) << "every page names the model's true latest version";
      for (const v1::ModelVersion& version : page.model().versions()) versions.push_back(version.version());
    }
    EXPECT_EQ(versions, Sequence(1, kVersions));
    EXPECT_EQ(pages.size(), static_cast<size_t>((kVersions + page_size - 1) / page_size));
  }
}

TEST(PageSizeTest, APageSizeAboveTheMaximumIsClampedToIt) {
  EXPECT_EQ(server::kMaxPageSize, 1000);
  EXPECT_EQ(*server::ResolvePageSize("page_size", 1000), 1000);
  EXPECT_EQ(*server::ResolvePageSize("page_size", 1001), 1000);
  EXPECT_EQ(*server::ResolvePageSize("page_size", 0), 100);
  EXPECT_EQ(server::ResolvePageSize("page_size", -1).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(PagingTest, VersionsPublishedBetweenPagesDoNotShiftTheWalk) {
  Publish("growing", 10);
  v1::GetModelRequest request;
  request.set_model_name("growing");
  request.set_page_size(4);
  std::vector<int64_t> versions;
  do {
    v1::GetModelResponse page;
    ASSERT_TRUE(stub().GetModel(Context().get(), request, &page).ok());
    for (const v1::ModelVersion& version : page.model().versions()) versions.push_back(version.version());
    request.set_page_token(page.next_page_token());
    if (versions.size() == 4) Publish("growing", 2);  // after the first page
  } while (!request.page_token().empty());
  EXPECT_EQ(versions, Sequence(1, 12));
}

// K = 64 versions exported with their parameters are about 367 KiB each: a
// page of 1 MiB holds two, and ends there instead of failing.
TEST_F(PagingTest, APageOfExportedVersionsEndsEarlyRatherThanExceedTheMessageLimit) {
  Publish("wide", 5, /*k=*/64);
  v1::GetModelRequest request;
  request.set_model_name("wide");
  request.set_include_parameters(true);
  std::vector<int64_t> versions;
  for (const v1::GetModelResponse& page : ModelPages(request)) {
    EXPECT_GE(page.model().versions_size(), 1);
    EXPECT_LE(page.ByteSizeLong(), 1u << 20);
    for (const v1::ModelVersion& version : page.model().versions()) {
      versions.push_back(version.version());
      EXPECT_EQ(version.parameters().values_size(), static_cast<int>(ParameterCount(64)));
    }
  }
  EXPECT_EQ(versions, Sequence(1, 5));
}

TEST_F(PagingTest, AGetModelPageTokenStaysValidAfterARestart) {
  Publish("many", 10);
  v1::GetModelRequest request;
  request.set_model_name("many");
  request.set_page_size(6);
  v1::GetModelResponse first;
  ASSERT_TRUE(stub().GetModel(Context().get(), request, &first).ok());
  ASSERT_FALSE(first.next_page_token().empty());
  StartServer(Options());
  request.set_page_token(first.next_page_token());
  v1::GetModelResponse second;
  const grpc::Status status = stub().GetModel(Context().get(), request, &second);
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<int64_t> versions;
  for (const v1::ModelVersion& version : second.model().versions()) versions.push_back(version.version());
  EXPECT_EQ(versions, Sequence(7, 10));
  EXPECT_TRUE(second.next_page_token().empty());
}

// --- ListModels ------------------------------------------------------------------

TEST_F(PagingTest, ListModelsPagesReturnEveryModelOnceByNameForEveryPageSize) {
  std::vector<std::string> names;
  for (int i = 0; i < 12; ++i) {
    names.push_back(absl::StrCat("m", i < 10 ? "0" : "", i));
    Publish(names.back(), 1 + i % 3);
  }
  for (const int page_size : {1, 5, 12, 0}) {
    SCOPED_TRACE(testing::Message() << "page_size " << page_size);
    v1::ListModelsRequest request;
    request.set_page_size(page_size);
    std::vector<std::string> listed;
    for (const v1::ListModelsResponse& page : ListModelsPages(request)) {
      if (page_size > 0) {
        EXPECT_LE(page.models_size(), page_size);
      }
      for (const v1::Model& model : page.models()) {
        listed.push_back(model.name());
        EXPECT_EQ(model.versions_size(), model.latest_version());
      }
    }
    EXPECT_EQ(listed, names);
  }
}

// Versions with 1000 epochs of metadata are about 30 KiB each: 100 of them do
// not fit in 1 MiB, so the model continues on the next pages, each a
// consecutive run of its versions, every one exactly once.
TEST_F(PagingTest, AModelWhoseVersionsExceedTheMessageLimitIsSplitAcrossPages) {
  Publish("a-small", 1);
  Publish("huge", 100, /*k=*/1, /*epochs=*/1000);
  Publish("z-small", 2);
  std::vector<std::pair<std::string, int64_t>> listed;
  const std::vector<v1::ListModelsResponse> pages = ListModelsPages(v1::ListModelsRequest());
  EXPECT_GT(pages.size(), 2u);
  for (const v1::ListModelsResponse& page : pages) {
    EXPECT_LE(page.ByteSizeLong(), 1u << 20);
    for (const v1::Model& model : page.models()) {
      EXPECT_EQ(model.latest_version(), model.name() == "huge" ? 100 : model.name() == "z-small" ? 2 : 1);
      for (const v1::ModelVersion& version : model.versions()) listed.emplace_back(model.name(), version.version());
    }
  }
  std::vector<std::pair<std::string, int64_t>> expected = {{"a-small", 1}};
  for (int64_t v = 1; v <= 100; ++v) expected.emplace_back("huge", v);
  expected.insert(expected.end(), {{"z-small", 1}, {"z-small", 2}});
  EXPECT_EQ(listed, expected);
}

// --- ListTrainingJobs ----------------------------------------------------------------

TEST_F(PagingTest, ListTrainingJobsPagesReturnEveryJobOnceNewestFirstForEveryPageSize) {
  const std::vector<std::string> queued = QueueJobs(kJobs);
  const std::vector<std::string> all = AllJobIds();
  ASSERT_EQ(all.size(), static_cast<size_t>(kJobs + 1));
  EXPECT_EQ(std::vector<std::string>(all.begin(), all.end() - 1), queued);
  for (const int page_size : {1, 7, 100, 301, 1000}) {
    SCOPED_TRACE(testing::Message() << "page_size " << page_size);
    v1::ListTrainingJobsRequest request;
    request.set_page_size(page_size);
    int pages = 0;
    EXPECT_EQ(JobIdsOfAllPages(request, &pages), all);
    EXPECT_EQ(pages, (kJobs + 1 + page_size - 1) / page_size);
  }
  // Filtered by state: the queued jobs only, the running blocker left out.
  v1::ListTrainingJobsRequest queued_only;
  queued_only.set_state(v1::JOB_STATE_QUEUED);
  queued_only.set_page_size(13);
  EXPECT_EQ(JobIdsOfAllPages(queued_only), queued);
}

TEST_F(PagingTest, ListTrainingJobsWithPageSizeZeroReturnsTheDefaultOfOneHundredJobs) {
  QueueJobs(150);
  v1::ListTrainingJobsResponse page;
  ASSERT_TRUE(stub().ListTrainingJobs(Context().get(), v1::ListTrainingJobsRequest(), &page).ok());
  EXPECT_EQ(page.jobs_size(), server::kDefaultPageSize);
  EXPECT_FALSE(page.next_page_token().empty());
}

// Jobs submitted during the walk are newer than every page's last job: they
// do not appear, and no job is repeated or skipped.
TEST_F(PagingTest, JobsSubmittedBetweenPagesDoNotShiftTheWalk) {
  QueueJobs(30);
  const std::vector<std::string> before = AllJobIds();
  v1::TrainRequest more = FreshTrainRequest("later", 1, "tiny", 1, 1);
  AddExamples(Mnist().train, 2, more.mutable_train_examples()->mutable_examples());
  v1::ListTrainingJobsRequest request;
  request.set_page_size(4);
  EXPECT_EQ(JobIdsOfAllPages(request, nullptr, [&] { SubmitJob(stub(), more); }), before);
}

// --- Tokens of another request ---------------------------------------------------------

TEST_F(PagingTest, APageTokenOfAnotherRequestIsRefused) {
  Publish("alpha", 3);
  Publish("beta", 3);
  QueueJobs(3);
  const std::string fragment = "page_token: the token belongs to a different request";

  v1::GetModelRequest alpha;
  alpha.set_model_name("alpha");
  alpha.set_page_size(1);
  v1::GetModelResponse model_page;
  ASSERT_TRUE(stub().GetModel(Context().get(), alpha, &model_page).ok());
  v1::GetModelRequest beta = alpha;
  beta.set_model_name("beta");
  beta.set_page_token(model_page.next_page_token());
  grpc::Status status = stub().GetModel(Context().get(), beta, &model_page);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find(fragment), std::string::npos) << status.error_message();

  v1::ListTrainingJobsRequest jobs;
  jobs.set_page_size(1);
  v1::ListTrainingJobsResponse jobs_page;
  ASSERT_TRUE(stub().ListTrainingJobs(Context().get(), jobs, &jobs_page).ok());
  jobs.set_state(v1::JOB_STATE_QUEUED);
  jobs.set_page_token(jobs_page.next_page_token());
  status = stub().ListTrainingJobs(Context().get(), jobs, &jobs_page);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find(fragment), std::string::npos) << status.error_message();

  v1::ListModelsRequest models;
  models.set_page_size(1);
  v1::ListModelsResponse models_page;
  ASSERT_TRUE(stub().ListModels(Context().get(), models, &models_page).ok());
  v1::ListTrainingJobsRequest jobs_with_models_token;
  jobs_with_models_token.set_page_token(models_page.next_page_token());
  status = stub().ListTrainingJobs(Context().get(), jobs_with_models_token, &jobs_page);
  EXPECT_EQ(status.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find(fragment), std::string::npos) << status.error_message();
}

}  // namespace
}  // namespace convnet::server_testing
