// A model directory on a real full filesystem (a 256 KiB tmpfs): a job that
// cannot be recorded is refused and never exists, and a job whose RUNNING
// record cannot be written fails before it trains. Needs root for the mount;
// skipped (saying so) otherwise.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_support.h"

namespace convnet::server_testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class FullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::mount("tmpfs", mount_dir_.path().c_str(), "tmpfs", 0, "size=256k") != 0) {
      const int error = errno;
      if (error == EPERM || error == EACCES) {
        GTEST_SKIP() << "cannot mount a tmpfs without root: " << std::strerror(error);
      }
      FAIL() << "mount tmpfs on " << mount_dir_.path() << ": " << std::strerror(error);
    }
    mounted_ = true;
    server::ServerOptions options;
    options.model_dir = mount_dir_.Join("models");
    options.threads = 1;
    options.max_concurrent_jobs = 1;
    server_ = TestServer::Start(options);
    ASSERT_NE(server_, nullptr);
  }

  void TearDown() override {
    server_.reset();
    if (mounted_) {
      EXPECT_EQ(::umount2(mount_dir_.path().c_str(), MNT_DETACH), 0) << std::strerror(errno);
    }
  }

  // Writes a filler file until the filesystem is full (ENOSPC).
  void FillTheDisk() {
    const int fd = ::open(Filler().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << std::strerror(errno);
    const std::string chunk(4096, 'x');
    int error = 0;
    while (error == 0) {
      if (::write(fd, chunk.data(), chunk.size()) < 0) error = errno;
    }
    ::close(fd);
    ASSERT_EQ(error, ENOSPC) << std::strerror(error);
  }
  void FreeTheDisk() { std::filesystem::remove(Filler()); }
  std::string Filler() const { return mount_dir_.Join("filler"); }

  // A small inline training request for model `model`.
  static v1::TrainRequest InlineRequest(const std::string& model, int examples, int epochs) {
    v1::TrainRequest request;
    request.set_model_name(model);
    request.set_feature_maps(1);
    AddExamples(BundledMnist().train, examples, request.mutable_train_examples()->mutable_examples());
    *request.mutable_hyperparameters() = TestHyperparameters(epochs, 1);
    return request;
  }

  int ListedJobs() {
    v1::ListTrainingJobsResponse listed;
    EXPECT_TRUE(server_->stub().ListTrainingJobs(Context().get(), v1::ListTrainingJobsRequest(), &listed).ok());
    return listed.jobs_size();
  }

  TempDir mount_dir_;
  bool mounted_ = false;
  std::unique_ptr<TestServer> server_;
};

TEST_F(FullDiskTest, ATrainThatCannotBeRecordedIsRefusedAndLeavesNoJob) {
  FillTheDisk();
  v1::TrainResponse response;
  const grpc::Status status = server_->stub().Train(Context().get(), InlineRequest("digits", 10, 1), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(status.error_message(), AllOf(HasSubstr("cannot record the job: "), HasSubstr("/models/.jobs/"),
                                            HasSubstr("No space left on device")));
  EXPECT_EQ(ListedJobs(), 0);
  EXPECT_EQ(server_->server().jobs().ActiveJobs(), 0);

  FreeTheDisk();
  const v1::TrainingJob job = WaitForJob(server_->stub(), SubmitJob(server_->stub(), InlineRequest("digits", 10, 1)));
  EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED) << job.error();
  EXPECT_EQ(ListedJobs(), 1);
}

TEST_F(FullDiskTest, AJobWhoseRunningRecordCannotBeWrittenFailsBeforeItTrains) {
  // The blocker holds the only job slot while the second job is recorded as
  // QUEUED; the disk fills before the second job starts.
  const std::string blocker = SubmitJob(server_->stub(), InlineRequest("blocker", 1000, 1000));
  const std::string queued = SubmitJob(server_->stub(), InlineRequest("digits", 10, 5));
  ASSERT_FALSE(blocker.empty());
  ASSERT_FALSE(queued.empty());
  FillTheDisk();
  v1::CancelTrainingJobRequest cancel;
  cancel.set_job_id(blocker);
  v1::TrainingJob cancelled;
  ASSERT_TRUE(server_->stub().CancelTrainingJob(Context().get(), cancel, &cancelled).ok());

  const v1::TrainingJob job = WaitForJob(server_->stub(), queued);
  EXPECT_EQ(job.state(), v1::JOB_STATE_FAILED);
  EXPECT_THAT(job.error(), AllOf(HasSubstr("cannot record the job in the model directory"),
                                 HasSubstr("No space left on device")));
  EXPECT_EQ(job.epochs_size(), 0);
  EXPECT_FALSE(std::filesystem::exists(mount_dir_.Join("models/digits")));
}

}  // namespace
}  // namespace convnet::server_testing
