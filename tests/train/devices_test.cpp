// The replica-device mapping is a pure function of the request, the local rank and the node's GPU
// count, so it is tested here without a GPU.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "dml/train/devices.h"
#include "dml/util/error.h"

namespace dml {
namespace {

std::vector<int> cuda_indices(const std::vector<c10::Device>& devices) {
  std::vector<int> out;
  for (const auto& d : devices) {
    EXPECT_TRUE(d.is_cuda());
    out.push_back(d.index());
  }
  return out;
}

DeviceRequest per_rank(int n) {
  DeviceRequest r;
  r.kind = DeviceRequest::Kind::kGpusPerRank;
  r.gpus_per_rank = n;
  return r;
}

TEST(Devices, GpusPerRankGivesEachLocalRankItsOwnBlock) {
  // 8 GPUs, 4 ranks per node, 2 GPUs each: rank r drives 2r and 2r+1.
  EXPECT_EQ(cuda_indices(plan_replica_devices(per_rank(2), 0, 8)), (std::vector<int>{0, 1}));
  EXPECT_EQ(cuda_indices(plan_replica_devices(per_rank(2), 1, 8)), (std::vector<int>{2, 3}));
  EXPECT_EQ(cuda_indices(plan_replica_devices(per_rank(2), 3, 8)), (std::vector<int>{6, 7}));
  EXPECT_EQ(cuda_indices(plan_replica_devices(per_rank(3), 1, 6)), (std::vector<int>{3, 4, 5}));
  EXPECT_EQ(cuda_indices(plan_replica_devices(per_rank(1), 5, 8)), (std::vector<int>{5}));
  // Every GPU of the node used exactly once across the local ranks.
  std::vector<int> all;
  for (int r = 0; r < 4; ++r) {
    for (int g : cuda_indices(plan_replica_devices(per_rank(2), r, 8))) all.push_back(g);
  }
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}));
}

TEST(Devices, GpusPerRankBeyondTheNodeIsAnError) {
  try {
    plan_replica_devices(per_rank(2), 2, 4);  // would need GPUs 4 and 5
    FAIL() << "expected an error";
  } catch (const OptionError& e) {
    EXPECT_EQ(e.field(), "gpus_per_rank");
    EXPECT_NE(std::string(e.what()).find("local rank 2 would drive GPU 4, but this node has 4 GPUs"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(plan_replica_devices(per_rank(0), 0, 4), OptionError);
  EXPECT_THROW(plan_replica_devices(per_rank(1), 0, 0), OptionError);  // no GPU at all
}

TEST(Devices, AutoListAndCpu) {
  DeviceRequest automatic;
  EXPECT_EQ(cuda_indices(plan_replica_devices(automatic, 5, 4)), (std::vector<int>{1}));  // local rank % GPUs
  automatic.cpu_replicas = 3;
  const auto cpu = plan_replica_devices(automatic, 0, 0);  // no GPU: the CPU, cpu_replicas times
  ASSERT_EQ(cpu.size(), 3u);
  EXPECT_TRUE(cpu[0].is_cpu());

  DeviceRequest list;
  list.kind = DeviceRequest::Kind::kGpuList;
  list.gpus = {2, 0};
  EXPECT_EQ(cuda_indices(plan_replica_devices(list, 7, 4)), (std::vector<int>{2, 0}));  // the list, for any rank
  list.gpus = {1, 1};
  EXPECT_THROW(plan_replica_devices(list, 0, 4), OptionError);
  list.gpus = {4};
  EXPECT_THROW(plan_replica_devices(list, 0, 4), OptionError);

  DeviceRequest cpu_only;
  cpu_only.kind = DeviceRequest::Kind::kCpu;
  EXPECT_TRUE(plan_replica_devices(cpu_only, 0, 8).front().is_cpu());  // even on a GPU node
  cpu_only.cpu_replicas = 0;
  EXPECT_THROW(plan_replica_devices(cpu_only, 0, 8), OptionError);
}

TEST(Devices, ThreadCount) {
  EXPECT_EQ(resolve_thread_count(3, 8), 3);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  EXPECT_EQ(resolve_thread_count(0, 1), cores);
  EXPECT_EQ(resolve_thread_count(0, 1000), 1);
}

}  // namespace
}  // namespace dml
